"""Stores, products and the stock snapshot of the synthetic chain, plus samplers over them."""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import accumulate
from typing import Any

from tsunagu.demo.names import STORE_SITES

BRAND = "つなぐ"
COLOURS = (
    "ブラック",
    "ホワイト",
    "ネイビー",
    "ベージュ",
    "グレー",
    "カーキ",
    "ブラウン",
    "アイボリー",
    "チャコール",
    "ボルドー",
    "ライトブルー",
    "ピンク",
)
_FASHION_BRANDS = (
    "TSUNAGU",
    "つなぐ LABEL",
    "KOMOREBI",
    "AOZORA",
    "SHIRO&KURO",
    "MINATO WORKS",
    "NAGI",
    "YUKI ATELIER",
)

# name, code, share of the range, repeat purchase, brands, variants,
# subcategories as (name, lowest price, highest price, adjectives).
CATEGORIES: tuple[
    tuple[
        str,
        str,
        float,
        bool,
        tuple[str, ...],
        tuple[str, ...],
        tuple[tuple[str, int, int, tuple[str, ...]], ...],
    ],
    ...,
] = (
    (
        "トップス",
        "TOP",
        0.19,
        False,
        _FASHION_BRANDS,
        COLOURS,
        (
            (
                "Tシャツ",
                1900,
                4900,
                ("コットン", "オーバーサイズ", "ドライ", "ベーシック", "ポケット付き"),
            ),
            (
                "シャツ",
                3900,
                8900,
                ("オックスフォード", "リネン", "バンドカラー", "ストライプ", "形態安定"),
            ),
            ("ブラウス", 3900, 9900, ("とろみ", "フリル", "ボウタイ", "シアー", "ウォッシャブル")),
            (
                "ニット",
                4900,
                12900,
                ("メリノウール", "ケーブル", "ハイゲージ", "モックネック", "カシミヤタッチ"),
            ),
            (
                "スウェット",
                3900,
                7900,
                ("裏毛", "クルーネック", "オーバーサイズ", "ヴィンテージ加工"),
            ),
            ("パーカー", 4900, 9900, ("裏起毛", "ジップアップ", "ヘビーウェイト", "ロゴ刺繍")),
            ("カーディガン", 4900, 11900, ("コットン", "ショート丈", "Vネック", "ウォッシャブル")),
        ),
    ),
    (
        "ボトムス",
        "BTM",
        0.13,
        False,
        _FASHION_BRANDS + ("SORA DENIM",),
        COLOURS,
        (
            (
                "デニムパンツ",
                4900,
                12900,
                ("ストレート", "スリム", "ワイド", "ストレッチ", "ハイウエスト"),
            ),
            (
                "テーパードパンツ",
                3900,
                8900,
                ("センタープレス", "イージー", "ストレッチ", "ウール調"),
            ),
            ("ワイドパンツ", 3900, 9900, ("リネンブレンド", "タック", "イージー", "サテン")),
            ("スカート", 4900, 10900, ("プリーツ", "ナロー", "マーメイド", "ティアード", "デニム")),
            ("チノパンツ", 3900, 7900, ("スリム", "レギュラー", "ストレッチ", "ウォッシュ")),
        ),
    ),
    (
        "アウター",
        "OUT",
        0.08,
        False,
        _FASHION_BRANDS,
        COLOURS,
        (
            (
                "チェスターコート",
                16900,
                39000,
                ("ウールブレンド", "ロング", "ダブル", "オーバーサイズ"),
            ),
            ("ダウンジャケット", 14900, 36000, ("ライト", "フード付き", "撥水", "ショート丈")),
            ("トレンチコート", 14900, 32000, ("撥水", "ライナー付き", "ロング", "ベーシック")),
            ("ブルゾン", 9900, 19900, ("MA-1", "コーチ", "ボア", "リバーシブル")),
            ("ノーカラーコート", 12900, 29900, ("ウール", "ツイード", "ショート", "ロング")),
        ),
    ),
    (
        "靴",
        "SHO",
        0.10,
        False,
        _FASHION_BRANDS + ("TOKIWA LEATHER",),
        COLOURS,
        (
            ("スニーカー", 5900, 16900, ("レザー", "キャンバス", "厚底", "軽量", "ローカット")),
            ("パンプス", 4900, 14900, ("ポインテッド", "スクエアトゥ", "ローヒール", "痛くない")),
            ("ショートブーツ", 8900, 24900, ("サイドゴア", "レースアップ", "スエード", "撥水")),
            ("ローファー", 7900, 19900, ("レザー", "厚底", "ビット", "コイン")),
            ("サンダル", 3900, 9900, ("スポーツ", "レザー", "フラット", "厚底")),
        ),
    ),
    (
        "バッグ",
        "BAG",
        0.09,
        False,
        _FASHION_BRANDS + ("TOKIWA LEATHER",),
        COLOURS,
        (
            ("トートバッグ", 3900, 14900, ("キャンバス", "A4対応", "レザー", "ナイロン", "2WAY")),
            ("ショルダーバッグ", 4900, 19900, ("ミニ", "レザー", "サコッシュ型", "2WAY")),
            ("リュック", 5900, 16900, ("撥水", "PC収納", "ナイロン", "スクエア")),
            ("ハンドバッグ", 7900, 29000, ("レザー", "ミニ", "がま口", "フォーマル")),
            ("ボストンバッグ", 8900, 24900, ("旅行用", "レザー", "キャンバス", "2WAY")),
        ),
    ),
    (
        "アクセサリー",
        "ACC",
        0.08,
        False,
        _FASHION_BRANDS,
        COLOURS,
        (
            ("ネックレス", 2900, 14900, ("シルバー", "ゴールド", "パール", "チェーン")),
            ("ピアス", 1900, 9900, ("フープ", "パール", "シルバー", "ノンホール")),
            ("キャップ", 2900, 5900, ("コットン", "ロゴ刺繍", "ウォッシュ", "コーデュロイ")),
            ("マフラー", 3900, 12900, ("カシミヤタッチ", "ウール", "大判", "チェック")),
            ("ベルト", 2900, 8900, ("レザー", "メッシュ", "リバーシブル", "細")),
            ("腕時計", 9900, 19000, ("ミニマル", "レザーベルト", "メタル", "ソーラー")),
        ),
    ),
    (
        "コスメ",
        "COS",
        0.13,
        True,
        ("HINOKI APOTHECARY", "SAKURA LAB", "つなぐ BEAUTY", "MIZU SKIN"),
        ("30mL", "50mL", "120mL", "200mL", "詰め替え用", "ローズ", "シトラス", "無香料"),
        (
            ("化粧水", 1500, 4800, ("モイスト", "ブライト", "薬用", "敏感肌用", "オーガニック")),
            ("乳液", 1800, 5200, ("モイスト", "さっぱり", "薬用", "エイジングケア")),
            ("美容液", 3500, 8000, ("ビタミンC", "エイジングケア", "ブライト", "集中")),
            ("リップ", 1500, 3800, ("ティント", "バーム", "マット", "グロス")),
            ("ファンデーション", 2800, 6500, ("クッション", "リキッド", "パウダー", "ミネラル")),
            ("ハンドクリーム", 1500, 2800, ("シアバター", "ハーブ", "薬用", "ギフト")),
        ),
    ),
    (
        "食品",
        "FOD",
        0.11,
        True,
        ("つなぐ 食堂", "MUGI & CO.", "KOHI ROASTERS", "CHAYA"),
        ("100g", "200g", "12個入", "ギフトボックス", "缶入り", "お徳用"),
        (
            ("コーヒー豆", 980, 2800, ("深煎り", "中煎り", "エチオピア", "ブレンド", "デカフェ")),
            ("紅茶", 650, 2400, ("ダージリン", "アールグレイ", "ほうじ", "季節限定")),
            ("チョコレート", 500, 3200, ("カカオ70%", "生", "ギフト", "季節限定")),
            ("クッキー", 600, 2800, ("バター", "アソート", "全粒粉", "抹茶")),
            ("オリーブオイル", 1200, 3500, ("エキストラバージン", "有機", "小豆島産")),
            ("グラノーラ", 600, 1800, ("有機", "ナッツ", "フルーツ", "低糖質")),
        ),
    ),
    (
        "雑貨",
        "LIF",
        0.09,
        False,
        ("つなぐ HOME", "KURASHI", "AMAGASA"),
        COLOURS,
        (
            ("マグカップ", 1200, 3200, ("有田焼", "北欧調", "耐熱", "琺瑯")),
            ("タオル", 800, 3900, ("今治", "ガーゼ", "ホテル仕様", "速乾")),
            ("ルームフレグランス", 2200, 5800, ("ヒノキ", "ユズ", "サンダルウッド", "ラベンダー")),
            ("傘", 2400, 6900, ("晴雨兼用", "折りたたみ", "軽量", "自動開閉")),
            ("ノート", 500, 1500, ("方眼", "ドット", "A5", "手帳型")),
        ),
    ),
)
CATEGORY_NAMES: tuple[str, ...] = tuple(c[0] for c in CATEGORIES)
# How a category's demand moves through the year (Jan..Dec).
CATEGORY_MONTH = {
    "アウター": (1.6, 1.1, 0.8, 0.6, 0.3, 0.2, 0.2, 0.3, 0.8, 1.4, 1.7, 1.8),
    "靴": (1.1, 0.9, 1.0, 1.1, 1.1, 1.0, 1.2, 1.0, 0.9, 1.0, 1.0, 1.1),
    "食品": (1.0, 1.3, 0.9, 0.9, 0.9, 0.9, 1.0, 1.0, 0.9, 1.0, 1.1, 1.6),
    "コスメ": (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.1, 1.4),
}
STORE_TYPE_WEIGHT = {"flagship": 3.0, "standard": 1.5, "outlet": 0.8, "popup": 0.3}
STORE_CARRY = {"flagship": 0.92, "standard": 0.62, "outlet": 0.45, "popup": 0.2}


@dataclass(frozen=True, slots=True)
class Store:
    store_id: str
    name: str
    prefecture: str
    city: str
    address: str
    postcode: str
    lat: float
    lon: float
    store_type: str
    opened_on: date
    metro: str


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    name: str
    category: str
    subcategory: str
    brand: str
    price: int
    repeat_purchase: bool
    launched_on: date


def scale(customers: int, low: int, high: int, low_at: int, high_at: int) -> int:
    """Grow from ``low`` to ``high`` on a log scale between ``low_at`` and ``high_at`` customers."""
    if customers <= low_at:
        return low
    if customers >= high_at:
        return high
    f = math.log(customers / low_at) / math.log(high_at / low_at)
    return round(low + (high - low) * f)


def nice_price(rng: random.Random, low: int, high: int) -> int:
    """A shelf price between ``low`` and ``high`` ending like Japanese price tags (4,990 / 12,900)."""
    raw = low * (high / low) ** rng.random()
    if raw < 1000:
        price = int(raw / 10) * 10
    else:
        r = rng.random()
        if r < 0.5:
            price = int(raw / 1000) * 1000 + 900
        elif r < 0.75:
            price = int(raw / 1000) * 1000 + 990
        else:
            price = int(raw / 100) * 100
    return max(low, min(high, price))


def _build_stores(rng: random.Random, count: int, start: date) -> list[Store]:
    stores = []
    for i, site in enumerate(STORE_SITES[:count]):
        label, pref, city, town, postcode, lat, lon, metro, kind = site
        suffix = "店" if kind != "popup" else ""
        name = f"{BRAND} {label}{suffix}"
        building = rng.choice(("", "", " つなぐビル1F", " 2F", " B1F", " 1-2F"))
        address = (
            f"{city}{town}{rng.randint(1, 4)}-{rng.randint(1, 30)}-{rng.randint(1, 20)}{building}"
        )
        if kind == "popup":
            opened = start - timedelta(days=rng.randint(30, 120))
        else:
            opened = date(2008 + rng.randint(0, 14), rng.randint(1, 12), 1)
            opened = min(opened, start - timedelta(days=200))
        stores.append(
            Store(
                f"S{i + 1:03d}",
                name,
                pref,
                city,
                address,
                postcode,
                round(lat + rng.uniform(-0.002, 0.002), 6),
                round(lon + rng.uniform(-0.002, 0.002), 6),
                kind,
                opened,
                metro,
            )
        )
    return stores


def _build_products(rng: random.Random, count: int, start: date) -> list[Product]:
    products = []
    for cat, code, share, repeat, brands, variants, subs in CATEGORIES:
        for n in range(max(len(subs), round(count * share))):
            sub, low, high, adjectives = subs[n % len(subs)] if n < len(subs) else rng.choice(subs)
            variant = rng.choice(variants)
            name = f"{rng.choice(adjectives)}{sub}（{variant}）"
            launched = start - timedelta(days=rng.randint(7, 3 * 365))
            products.append(
                Product(
                    f"{code}-{n + 1:05d}",
                    name,
                    cat,
                    sub,
                    rng.choice(brands),
                    nice_price(rng, low, high),
                    repeat,
                    launched,
                )
            )
    return products


class Catalog:
    """The chain's stores, products and stock, with the samplers the behaviour model needs."""

    def __init__(self, *, seed: int, customers: int, start: date, end: date) -> None:
        rng = random.Random(f"tsunagu-demo:{seed}:catalog")
        self.stores = _build_stores(rng, scale(customers, 20, 60, 10_000, 1_000_000), start)
        self.products = _build_products(rng, scale(customers, 300, 3000, 5_000, 1_000_000), start)
        self.cat_index = {name: i for i, name in enumerate(CATEGORY_NAMES)}
        self.by_cat: list[list[int]] = [[] for _ in CATEGORY_NAMES]
        for i, p in enumerate(self.products):
            self.by_cat[self.cat_index[p.category]].append(i)
        # Popularity falls off along each category list (a Zipf-like tail).
        self.by_cat_cum = [
            list(accumulate(1.0 / (r + 5) ** 0.9 for r in range(len(ix)))) for ix in self.by_cat
        ]
        shares = [c[2] for c in CATEGORIES]
        self.month_cat_cum = [
            list(
                accumulate(
                    s * CATEGORY_MONTH.get(name, (1.0,) * 12)[m]
                    for s, name in zip(shares, CATEGORY_NAMES, strict=True)
                )
            )
            for m in range(12)
        ]
        self.store_cum = list(accumulate(STORE_TYPE_WEIGHT[s.store_type] for s in self.stores))
        self.metro_stores: dict[str, list[int]] = {}
        for i, s in enumerate(self.stores):
            self.metro_stores.setdefault(s.metro, []).append(i)
        self.props: list[dict[str, Any]] = [
            {
                "product_id": p.sku,
                "sku": p.sku,
                "category": p.category,
                "name": p.name,
                "brand": p.brand,
                "price": p.price,
            }
            for p in self.products
        ]
        self._build_inventory(rng, end)

    def _build_inventory(self, rng: random.Random, end: date) -> None:
        self.inventory: list[tuple[str, str, int, str]] = []
        self.carried: list[set[int]] = []
        self.carried_by_cat: list[list[list[int]]] = []
        for s in self.stores:
            share = STORE_CARRY[s.store_type]
            carried = sorted(i for i in range(len(self.products)) if rng.random() < share)
            by_cat: list[list[int]] = [[] for _ in CATEGORY_NAMES]
            for i in carried:
                by_cat[self.cat_index[self.products[i].category]].append(i)
            for c, ix in enumerate(by_cat):
                if not ix:  # every store has at least something in every category
                    ix.append(self.by_cat[c][0])
            self.carried.append(set(carried))
            self.carried_by_cat.append(by_cat)
            counted = f"{end.isoformat()} {rng.randint(21, 22)}:{rng.randint(0, 59):02d}:00"
            for i in sorted(set(carried) | {ix[0] for ix in by_cat}):
                qty = 0 if rng.random() < 0.07 else min(60, 1 + int(rng.expovariate(1 / 8)))
                self.inventory.append((s.store_id, self.products[i].sku, qty, counted))

    def pick_category(self, rng: random.Random, month: int) -> int:
        cum = self.month_cat_cum[month - 1]
        return bisect.bisect_right(cum, rng.random() * cum[-1])

    def pick_product(self, rng: random.Random, cat: int) -> int:
        cum = self.by_cat_cum[cat]
        return self.by_cat[cat][bisect.bisect_right(cum, rng.random() * cum[-1])]

    def pick_in_store(self, rng: random.Random, store: int, cat: int) -> int:
        """A product of ``cat`` the store carries, favouring the popular ones."""
        ix = self.carried_by_cat[store][cat]
        n = len(ix)
        return ix[min(int(rng.random() * n), int(rng.random() * n))]

    def pick_store(self, rng: random.Random) -> int:
        return bisect.bisect_right(self.store_cum, rng.random() * self.store_cum[-1])

    def store_for(self, rng: random.Random, home: int, product: int) -> int:
        """Where a customer living near ``home`` goes to buy ``product``."""
        if product in self.carried[home]:
            return home
        near = self.metro_stores[self.stores[home].metro]
        for _ in range(3):
            s = near[int(rng.random() * len(near))]
            if product in self.carried[s]:
                return s
        return home

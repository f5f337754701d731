"""Japanese first, English on request (`?lang=en`, then remembered in a cookie); times in
Asia/Tokyo, money as ¥12,345."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

JST = ZoneInfo("Asia/Tokyo")
LANGS = ("ja", "en")
LANG_COOKIE = "tsunagu_lang"

TEXT: dict[str, tuple[str, str]] = {
    # (日本語, English)
    "title": ("つなぐ ダッシュボード", "tsunagu dashboard"),
    "brand": ("つなぐ", "tsunagu"),
    "tagline": (
        "オンラインと店舗をひとりのお客さまでつなぐ",
        "One customer across online and stores",
    ),
    "switch": ("English", "日本語"),
    "api": ("API ドキュメント", "API docs"),
    "sign_in": ("ログイン", "Sign in"),
    "sign_out": ("ログアウト", "Sign out"),
    "login": ("ログイン ID", "Login"),
    "password": ("パスワード", "Password"),
    "wrong_login": ("ログイン ID またはパスワードが違います", "Wrong login or password"),
    "too_many": (
        "失敗が続いたため、しばらくお待ちください",
        "Too many failed attempts; please wait",
    ),
    "expired_form": (
        "画面の有効期限が切れました。もう一度お試しください",
        "The form expired; please try again",
    ),
    "denied": ("この画面を表示する権限がありません", "You may not open this screen"),
    "denied_staff": (
        "店舗スタッフの方は店舗画面をお使いください",
        "Store staff use the store screen",
    ),
    "go_staff": ("店舗画面へ", "To the store screen"),
    "go_home": ("ダッシュボードへ", "To the dashboard"),
    "role_admin": ("管理者", "Admin"),
    "role_marketer": ("マーケター", "Marketer"),
    "role_analyst": ("アナリスト", "Analyst"),
    "role_staff": ("店舗スタッフ", "Store staff"),
    # navigation
    "nav_home": ("ホーム", "Home"),
    "nav_staff": ("店舗画面", "Store screen"),
    "nav_analysis": ("分析", "Analysis"),
    "nav_funnel": ("ファネル", "Funnels"),
    "nav_retention": ("リテンション", "Retention"),
    "nav_paths": ("行動経路", "Paths"),
    "nav_channels": ("チャネル横断", "Across channels"),
    "nav_fans": ("ファンレベル", "Fan levels"),
    "nav_ltv": ("LTV", "LTV"),
    "nav_assortment": ("品揃え", "Assortment"),
    "nav_activation": ("施策", "Activation"),
    "nav_segments": ("セグメント", "Segments"),
    "nav_journeys": ("ジャーニー", "Journeys"),
    "nav_campaigns": ("キャンペーン", "Campaigns"),
    "nav_coupons": ("クーポン", "Coupons"),
    "nav_profiles": ("顧客検索", "Customers"),
    # home
    "period": ("期間", "Period"),
    "from": ("開始日", "From"),
    "to": ("終了日", "To"),
    "grain": ("集計単位", "Grain"),
    "day": ("日", "Day"),
    "week": ("週", "Week"),
    "month": ("月", "Month"),
    "all_stores": ("全店舗", "All stores"),
    "store_select": ("店舗", "Store"),
    "apply": ("表示", "Show"),
    "kpi_active_customers": ("アクティブ顧客", "Active customers"),
    "kpi_revenue_online": ("オンライン売上", "Online revenue"),
    "kpi_revenue_store": ("店舗売上", "Store revenue"),
    "kpi_aov": ("平均購入単価", "Average order value"),
    "kpi_repeat_rate": ("リピート率", "Repeat rate"),
    "kpi_omni": ("オムニチャネル購入者比率", "Omnichannel buyers"),
    "kpi_o2o": ("O2O リフト", "O2O lift"),
    "kpi_o2o_note": (
        "オムニチャネル購入者の購入額 ÷ 単一チャネル購入者",
        "spend per omnichannel buyer ÷ single-channel",
    ),
    "vs_previous": ("前期比", "vs previous"),
    "chart_customers": ("チャネル別アクティブ顧客", "Active customers by channel"),
    "chart_revenue": ("売上（オンライン / 店舗）", "Revenue (online / store)"),
    "online": ("オンライン", "Online"),
    "in_store": ("店舗", "Store"),
    "none": ("まだデータがありません", "No data yet"),
    "last_event": ("最新イベント", "Latest event"),
    "members": ("会員数", "Members"),
    "stores": ("店舗数", "Stores"),
    "products": ("商品数", "Products"),
    "events": ("イベント数", "Events"),
    "by_channel": ("チャネル別イベント", "Events by channel"),
    "channel": ("チャネル", "Channel"),
    "count": ("件数", "Count"),
    # channels
    "web": ("EC サイト", "Web"),
    "app": ("アプリ", "App"),
    "line": ("LINE", "LINE"),
    "store": ("店舗", "Store"),
    "call_center": ("コールセンター", "Call centre"),
    "catalog": ("カタログ", "Catalogue"),
    "email": ("メール", "Email"),
    "server": ("サーバー", "Server"),
    # staff screen
    "staff_title": ("店舗画面", "Store screen"),
    "lookup": ("お客さまを探す", "Find the customer"),
    "lookup_hint": (
        "会員カード・アプリの QR・電話番号・メールアドレス",
        "Member card, app QR code, phone or e-mail",
    ),
    "search": ("検索", "Search"),
    "scan": ("カメラで読み取る", "Scan with the camera"),
    "stop_scan": ("読み取りをやめる", "Stop scanning"),
    "not_found": ("該当するお客さまが見つかりません", "No customer found"),
    "fan_level": ("ファンレベル", "Fan level"),
    "ltv": ("予測 LTV（1 年）", "Predicted LTV (1 year)"),
    "member_id": ("会員番号", "Member id"),
    "recent_online": ("最近のオンライン行動", "Recent online activity"),
    "favourites_here": ("お気に入りで当店在庫あり", "Favourites in stock here"),
    "recommend_here": ("当店在庫からのおすすめ", "To recommend from stock here"),
    "coupons": ("使えるクーポン", "Coupons to use"),
    "redeem": ("利用する", "Redeem"),
    "receipt": ("レシート番号", "Receipt number"),
    "amount": ("お買上金額（円）", "Purchase (yen)"),
    "redeemed": ("クーポンを利用しました", "Coupon redeemed"),
    "holds": ("お取り置き（受け取り待ち）", "Holds to pick up"),
    "pick_up": ("お渡し済みにする", "Mark picked up"),
    "picked_up": ("お渡ししました", "Handed over"),
    "until": ("期限", "Until"),
    "quantity": ("数量", "Qty"),
    "available": ("在庫", "In stock"),
    "nothing": ("ありません", "None"),
    "min_purchase": ("以上のお買上で", "purchase or more"),
    "off": ("引き", "off"),
    "Product Viewed": ("閲覧", "Viewed"),
    "Product Added": ("カート追加", "Added to cart"),
    "Product Added to Wishlist": ("お気に入り", "Favourited"),
    "Cart Viewed": ("カート確認", "Viewed cart"),
    "Order Completed": ("購入", "Order completed"),
    "Checkout Started": ("購入手続き", "Checkout started"),
    "Store Visited": ("来店", "Store visited"),
    "Products Searched": ("商品検索", "Products searched"),
    "Page Viewed": ("ページ閲覧", "Page viewed"),
    "Screen Viewed": ("画面閲覧", "Screen viewed"),
    "Coupon Issued": ("クーポン発行", "Coupon issued"),
    "Coupon Redeemed": ("クーポン利用", "Coupon redeemed"),
    "Message Sent": ("メッセージ送信", "Message sent"),
    "Message Opened": ("メッセージ開封", "Message opened"),
    "Message Clicked": ("メッセージのリンク", "Message clicked"),
    "Catalog Sent": ("カタログ送付", "Catalogue sent"),
    "Segment Entered": ("セグメント加入", "Entered a segment"),
    "Segment Exited": ("セグメント離脱", "Left a segment"),
}


def words(entries: dict[str, tuple[str, str]]) -> None:
    """Add a screen's own labels (each screen's module keeps those only it uses)."""
    for key, entry in entries.items():
        if TEXT.get(key, entry) != entry:
            raise ValueError(f"label {key!r} is already {TEXT[key]!r}")
        TEXT[key] = entry


def lang_of(value: str | None) -> str:
    return value if value in LANGS else "ja"


def translator(lang: str) -> Callable[[str], str]:
    index = LANGS.index(lang_of(lang))

    def t(key: str) -> str:
        entry = TEXT.get(key)
        return entry[index] if entry else key

    return t


def yen(value: float | int | None) -> str:
    """¥12,345 (yen have no minor unit)."""
    if value is None:
        return "–"
    amount = round(value)
    return f"-¥{-amount:,}" if amount < 0 else f"¥{amount:,}"


def jst(value: datetime | date | str | None, *, seconds: bool = False) -> str:
    """A stored (naive UTC) time, or an API's ISO 8601 one, in Japan time: 2026-03-01 12:00."""
    if value is None:
        return "–"
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        return value.isoformat()
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(JST).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def duration(seconds: float | None, lang: str = "ja") -> str:
    """A time to convert in its two largest units: 2日 3時間 / 2d 3h, 45秒 / 45s."""
    if seconds is None:
        return "–"
    units = ((86400, "日", "d"), (3600, "時間", "h"), (60, "分", "m"), (1, "秒", "s"))
    left, parts = round(seconds), list[str]()
    for size, ja, en in units:
        if left >= size or (size == 1 and not parts):
            parts.append(f"{left // size}{ja if lang == 'ja' else en}")
            left %= size
        if len(parts) == 2:
            break
    return " ".join(parts)


def percent(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}%"

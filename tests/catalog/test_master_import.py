from __future__ import annotations

import csv
from pathlib import Path

import orjson

from tsunagu.catalog.imports import import_master
from tsunagu.store import Store

STORES = (
    "store_id,name,prefecture,city,address,postcode,lat,lon,store_type,opened_on,floor_m2\n"
    "S001,つなぐ 渋谷店,東京都,渋谷区,神南1-1-1,150-0041,35.6618,139.7041,flagship,2019-04-01,820\n"
    "S002,つなぐ 梅田店,大阪府,大阪市北区,梅田2-2-2,530-0001,34.7025,135.4959,standard,2020-10-15,410\n"
    "S003,bad,東京都,,,,135.0,139.0,standard,,\n"
)


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_stores_import_keeps_unknown_columns_and_rejects_bad_coordinates(
    store: Store, tmp_path: Path
) -> None:
    result = import_master(store=store, kind="stores", path=write(tmp_path / "stores.csv", STORES))
    assert (result.read, result.imported, result.rejected) == (3, 2, 1)
    name, lat, attrs = store.query(
        "SELECT name, lat, attributes FROM stores WHERE store_id = 'S001'"
    )[0]
    assert (name, lat) == ("つなぐ 渋谷店", 35.6618)
    assert orjson.loads(attrs) == {"floor_m2": "820"}
    with open(result.rejects_file or "", encoding="utf-8") as fh:
        (reject,) = list(csv.DictReader(fh))
    assert reject["row"] == "4" and reject["reason"].startswith("lat: not a latitude")


def test_reimport_updates_changed_rows_only(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "stores.csv", STORES)
    import_master(store=store, kind="stores", path=path)
    again = import_master(store=store, kind="stores", path=path)
    assert (again.imported, again.duplicates) == (0, 2)
    changed = write(
        tmp_path / "stores2.csv", STORES.replace("つなぐ 梅田店", "つなぐ 梅田茶屋町店")
    )
    third = import_master(store=store, kind="stores", path=changed)
    assert (third.imported, third.duplicates) == (1, 1)
    assert store.scalar("SELECT name FROM stores WHERE store_id = 'S002'") == "つなぐ 梅田茶屋町店"
    assert store.scalar("SELECT count(*) FROM stores") == 2


def test_members_with_japanese_headers_in_cp932_and_mixed_formats(
    store: Store, tmp_path: Path
) -> None:
    text = (
        "会員ID,会員番号,氏名,フリガナ,メールアドレス,電話番号,生年月日,入会日,メール配信\n"
        "M1,2000000000011,山田 太郎,ﾔﾏﾀﾞ ﾀﾛｳ,taro@example.jp,０９０-１２３４-５６７８,1985/04/01,2024-01-05 10:00:00,はい\n"
        "M2,2000000000028,佐藤　花子,サトウ ハナコ,hanako@example.jp,09011112222,19900315,2024-02-01,false\n"
        "M3,2000000000035,鈴木 一郎,スズキ イチロウ,,,1990-13-45,,\n"
    )
    result = import_master(
        store=store, kind="members", path=write(tmp_path / "members.csv", text, "cp932")
    )
    assert (result.imported, result.rejected) == (2, 1)
    m1 = store.query(
        "SELECT name_kana, phone, birth_date::VARCHAR, registered_at::VARCHAR, email_opt_in FROM members WHERE member_id = 'M1'"
    )[0]
    # Kept as entered (normalising is identity resolution's job); times stored in UTC.
    assert m1 == ("ﾔﾏﾀﾞ ﾀﾛｳ", "０９０-１２３４-５６７８", "1985-04-01", "2024-01-05 01:00:00", True)
    assert (
        store.scalar("SELECT birth_date::VARCHAR FROM members WHERE member_id = 'M2'")
        == "1990-03-15"
    )
    with open(result.rejects_file or "", encoding="utf-8") as fh:
        (reject,) = list(csv.DictReader(fh))
    assert reject["reason"].startswith("birth_date: not a date")


def test_duplicate_keys_in_one_file_the_later_row_wins(store: Store, tmp_path: Path) -> None:
    text = "sku,name,price\nP1,シャツ,3900\nP1,シャツ（改定）,4200\nP2,靴下,990\n"
    result = import_master(store=store, kind="products", path=write(tmp_path / "p.csv", text))
    assert (result.read, result.imported, result.rejected, result.duplicates) == (3, 2, 0, 1)
    assert store.query("SELECT name, price FROM products WHERE sku = 'P1'") == [
        ("シャツ（改定）", 4200)
    ]


def test_inventory_counts_must_be_whole_and_not_negative(store: Store, tmp_path: Path) -> None:
    text = 'store_id,sku,quantity,updated_at\nS1,P1,5,2026-03-01T00:00:00Z\nS1,P2,-1,\nS1,P3,2.5,\nS1,P4,"1,200",\n'
    result = import_master(store=store, kind="inventory", path=write(tmp_path / "inv.csv", text))
    assert (result.imported, result.rejected) == (2, 2)
    assert store.query("SELECT sku, quantity FROM inventory ORDER BY sku") == [
        ("P1", 5),
        ("P4", 1200),
    ]


def test_parquet_import(store: Store, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "products.parquet"
    pq.write_table(
        pa.table({"sku": ["A", "B", None], "name": ["靴", "鞄", "x"], "price": [5000, 12000, 1]}),
        path,
    )
    result = import_master(store=store, kind="products", path=path)
    assert (result.imported, result.rejected) == (2, 1)
    with open(result.rejects_file or "", encoding="utf-8") as fh:
        (reject,) = list(csv.DictReader(fh))
    assert (reject["row"], reject["reason"]) == ("4", "sku: required")

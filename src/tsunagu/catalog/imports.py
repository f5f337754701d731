"""Master data imports: stores, products, members, inventory (CSV or Parquet).

Rows are upserted by their key, so importing a newer export updates what changed and importing
the same file twice changes nothing. Columns the spec does not know are kept in `attributes`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb

from tsunagu.catalog.history import record_changes
from tsunagu.store import Store, columns, count, utcnow
from tsunagu.store.files import (
    Column,
    ImportResult,
    TableSpec,
    record_import,
    rejects_path,
    stage,
    write_rejects,
)
from tsunagu.store.identifiers import MEMBER_IDENTIFIER_COLUMNS, normalize_macros

_LAT = "{v} BETWEEN -90 AND 90"
_LON = "{v} BETWEEN -180 AND 180"

SPECS: dict[str, tuple[TableSpec, tuple[str, ...]]] = {
    "stores": (
        TableSpec(
            "stores",
            (
                Column(
                    "store_id",
                    required=True,
                    aliases=columns.STORE_ID,
                ),
                Column("name", required=True, aliases=("store_name", "店舗名")),
                Column("prefecture", aliases=columns.PREFECTURE),
                Column("city", aliases=("市区町村",)),
                Column("address", aliases=columns.ADDRESS),
                Column("postcode", aliases=columns.POSTCODE),
                Column(
                    "lat",
                    "float",
                    aliases=("latitude", "緯度"),
                    check=_LAT,
                    check_reason="not a latitude",
                ),
                Column(
                    "lon",
                    "float",
                    aliases=("lng", "longitude", "経度"),
                    check=_LON,
                    check_reason="not a longitude",
                ),
                Column("store_type", aliases=("type", "format", "業態")),
                Column("opened_on", "date", aliases=("opened", "open_date", "開店日")),
            ),
        ),
        ("store_id",),
    ),
    "products": (
        TableSpec(
            "products",
            (
                Column(
                    "sku",
                    required=True,
                    aliases=columns.SKU,
                ),
                Column(
                    "name",
                    required=True,
                    aliases=("product_name", "item_name", "description", "商品名"),
                ),
                Column("category", aliases=("カテゴリ", "カテゴリー", "部門")),
                Column("subcategory", aliases=("sub_category", "サブカテゴリ", "サブカテゴリー")),
                Column("brand", aliases=("ブランド",)),
                Column(
                    "price",
                    "int",
                    aliases=("list_price", "unit_price", "価格", "売価", "定価"),
                    check="{v} >= 0",
                    check_reason="must not be negative",
                ),
                Column("repeat_purchase", "bool", aliases=("consumable", "リピート商材")),
                Column("launched_on", "date", aliases=("launch_date", "発売日")),
            ),
        ),
        ("sku",),
    ),
    "members": (
        TableSpec(
            "members",
            (
                Column(
                    "member_id",
                    required=True,
                    aliases=("user_id", "userid", "customer_id", "会員ID"),
                ),
                Column(
                    "member_card",
                    aliases=columns.MEMBER_CARD,
                ),
                Column("name", aliases=columns.NAME),
                Column("name_kana", aliases=columns.NAME_KANA),
                Column("email", aliases=columns.EMAIL),
                Column("phone", aliases=columns.PHONE),
                Column("line_user_id", aliases=("line_id", "LINE ID", "LINEユーザーID")),
                Column("birth_date", "date", aliases=columns.BIRTH_DATE),
                Column("gender", aliases=("sex", "性別")),
                Column("postcode", aliases=columns.POSTCODE),
                Column("prefecture", aliases=columns.PREFECTURE),
                Column("address", aliases=columns.ADDRESS),
                Column(
                    "home_store_id", aliases=("home_store", "store_id", "登録店舗", "よく行く店舗")
                ),
                Column(
                    "registered_at",
                    "timestamp",
                    aliases=("created_at", "signup_at", "入会日", "登録日"),
                ),
                Column("email_opt_in", "bool", aliases=("email_consent", "メール配信")),
                Column("line_opt_in", "bool", aliases=("line_consent",)),
                Column("push_opt_in", "bool", aliases=("push_consent",)),
                Column("dm_opt_in", "bool", aliases=("dm_consent", "DM送付")),
            ),
        ),
        ("member_id",),
    ),
    "inventory": (
        TableSpec(
            "inventory",
            (
                Column(
                    "store_id",
                    required=True,
                    aliases=columns.STORE_ID,
                ),
                Column(
                    "sku",
                    required=True,
                    aliases=columns.SKU,
                ),
                Column(
                    "quantity",
                    "int",
                    required=True,
                    aliases=("qty", "stock", "on_hand", "在庫数", "在庫", "数量"),
                    check="{v} >= 0",
                    check_reason="must not be negative",
                ),
                Column(
                    "updated_at",
                    "timestamp",
                    aliases=("as_of", "counted_at", "timestamp", "更新日時", "棚卸日時"),
                ),
            ),
            keep_extra=False,
        ),
        ("store_id", "sku"),
    ),
}


def import_master(
    *,
    store: Store,
    kind: str,
    path: Path,
    encoding: str | None = None,
    timezone: str = "Asia/Tokyo",
    progress: Callable[[str], None] | None = None,
) -> ImportResult:
    """Upsert the rows of `path` into the `kind` table; rejects go to `FILE.rejects.csv`."""
    spec, key = SPECS[kind]
    if progress is not None:
        progress(f"reading {path.name}")
    started = now = utcnow()
    result = ImportResult(kind=kind, file=str(path))
    names = [c.name for c in spec.columns]
    key_list = ", ".join(key)
    with store.transaction() as cur:
        staged = stage(
            cur, path, spec, encoding=encoding, timezone=timezone, workdir=store.path.parent / "tmp"
        )
        # Two rows with the same key in one file: the later one is the newer record.
        cur.execute(
            "UPDATE _in SET _reason = 'duplicate key in this file (a later row wins)' "
            "WHERE _reason IS NULL AND _row < (SELECT max(b._row) FROM _in b WHERE b._reason IS NULL AND "
            + " AND ".join(f"b.{k} = _in.{k}" for k in key)
            + ")"
        )
        in_file_dupes = count(cur, "SELECT count(*) FROM _in WHERE _reason LIKE 'duplicate key%'")
        if kind == "members":
            result.suppressed = _leave_out_erased_members(cur, store.country)
        # Rows identical to what is stored are duplicates: nothing to write.
        compare = " AND ".join(
            # A count without a time is the same count as the stored one.
            "(i.updated_at IS NULL OR t.updated_at = i.updated_at)"
            if (kind, n) == ("inventory", "updated_at")
            else f"t.{n} IS NOT DISTINCT FROM i.{n}"
            for n in names
        )
        unchanged = count(
            cur,
            f"SELECT count(*) FROM _in i JOIN {kind} t USING ({key_list}) "
            f"WHERE i._reason IS NULL AND {compare}",
        )
        extra = "" if kind == "inventory" else ", attributes"
        extra_value = "" if kind == "inventory" else ", _extra"
        updated_value = "coalesce(updated_at, ?)" if kind == "inventory" else "?"
        cols = [n for n in names if not (kind == "inventory" and n == "updated_at")]
        select_cols = ", ".join(cols)
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE _changed AS "
            f"SELECT {select_cols}{extra_value}, {updated_value} AS updated_at FROM _in i "
            f"WHERE _reason IS NULL AND NOT EXISTS (SELECT 1 FROM {kind} t WHERE "
            + " AND ".join(f"t.{k} = i.{k}" for k in key)
            + f" AND {compare})",
            [now],
        )
        cur.execute(
            f"INSERT OR REPLACE INTO {kind} ({select_cols}{extra}, updated_at) "
            f"SELECT {select_cols}{extra_value}, updated_at FROM _changed"
        )
        record_changes(cur, kind, "_changed", source="import")
        cur.execute("DROP TABLE _changed")
        result.read = staged.rows + len(staged.malformed)
        result.rejected = write_rejects(
            cur,
            rejects_path(path),
            malformed=staged.malformed,
            where="_reason IS NOT NULL AND _reason NOT LIKE 'duplicate key%' AND _reason <> '~erased'",
            columns={n: staged.raw_refs[n] for n in names if n in staged.mapping},
        )
        result.duplicates = unchanged + in_file_dupes
        result.imported = result.read - result.rejected - result.duplicates - result.suppressed
        if result.suppressed:
            result.warnings.append(f"left out {result.suppressed:,} rows of erased people")
        result.rejects_file = str(rejects_path(path)) if result.rejected else None
        if staged.extra and spec.keep_extra:
            result.warnings.append(f"kept unknown columns in attributes: {', '.join(staged.extra)}")
        cur.execute("DROP TABLE _in")
        record_import(cur, result, started)
    if staged.temp_file is not None:
        staged.temp_file.unlink(missing_ok=True)
    return result


def _leave_out_erased_members(cur: duckdb.DuckDBPyConnection, country: str) -> int:
    """Mark member rows of erased people (suppression list) so they are not imported."""
    if not count(cur, "SELECT count(*) FROM suppressed_identifiers"):
        return 0
    cur.execute(normalize_macros(country))
    checks = " OR ".join(
        f"sha256('{kind}:' || tg_clean('{kind}', {column})) IN "
        f"(SELECT value_hash FROM suppressed_identifiers WHERE type = '{kind}')"
        for kind, column in MEMBER_IDENTIFIER_COLUMNS
    )
    cur.execute(f"UPDATE _in SET _reason = '~erased' WHERE _reason IS NULL AND ({checks})")
    return count(cur, "SELECT count(*) FROM _in WHERE _reason = '~erased'")

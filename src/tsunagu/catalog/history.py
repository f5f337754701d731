"""What changed in the master data, and when: every channel reads today's rows, analytics can
ask what was true on a day (`master_history`, `inventory_history`).

`record_changes` runs in the writer's transaction, after the rows of a temp table (the rows
just written, with their `updated_at`) went into their table; products also get their search
keys (catalog/search.py) there.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from tsunagu.catalog.search import keys

_KEYS = {"products": "sku", "stores": "store_id"}


def record_changes(cur: duckdb.DuckDBPyConnection, kind: str, changed: str, *, source: str) -> None:
    """History rows for the rows of `changed` (just written to `kind`)."""
    if kind in _KEYS:
        key = _KEYS[kind]
        cur.execute(
            f"INSERT INTO master_history SELECT '{kind}', t.{key}, t.updated_at, to_json(t) "
            f"FROM {kind} t WHERE t.{key} IN (SELECT {key} FROM {changed})"
        )
        if kind == "products":
            _search_keys(cur, changed)
    elif kind == "inventory":
        cur.execute(
            "INSERT INTO inventory_history SELECT store_id, sku, quantity, NULL, updated_at, ? "
            f"FROM {changed}",
            [source],
        )


def _search_keys(cur: duckdb.DuckDBPyConnection, changed: str) -> None:
    rows = cur.execute(f"SELECT sku, name FROM {changed}").fetchall()
    if not rows:
        return
    folded = [keys(name or "") for _, name in rows]
    table = pa.table(
        {
            "sku": [sku for sku, _ in rows],
            "norm": [f for f, _ in folded],
            "reading": [r for _, r in folded],
        }
    )
    cur.register("_search_rows", table)
    cur.execute("INSERT OR REPLACE INTO product_search SELECT sku, norm, reading FROM _search_rows")
    cur.unregister("_search_rows")

"""The POS import under generated files: any cells (hostile text, kana, huge or negative
numbers, odd dates, quotes and line breaks inside cells) end as imported or rejected rows,
every row counted once, every rejection with a reason; nothing else escapes."""

from __future__ import annotations

import csv
import io
import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tsunagu.events.pos import import_pos
from tsunagu.exceptions import InvalidInput
from tsunagu.store import Store

COLUMNS = ("receipt_id", "line_no", "store_id", "sold_at", "member_card", "sku", "quantity",
           "unit_price", "discount", "payment_method", "coupon_code")  # fmt: skip
HOSTILE = st.sampled_from([
    "", " ", "'; DROP TABLE events; --", '"quoted, with comma"', "line\nbreak", "１２００",
    "1,200", "¥1,200", "-5", "0", "1e308", "99999999999999999999", "NaN", "2026-02-30 10:00",
    "2026/03/01 14:05", "令和8年3月1日", "3026-01-01 00:00:00", "\u0000", "ｶｰﾄﾞ", "null",
])  # fmt: skip
GOOD = {
    "receipt_id": st.sampled_from(["R1", "R2", "R3", "レシート4"]),
    "line_no": st.integers(1, 4).map(str),
    "store_id": st.sampled_from(["S001", "S002"]),
    "sold_at": st.sampled_from(["2026-03-01 14:05:09", "2026-03-02T10:00:00+09:00"]),
    "member_card": st.sampled_from(["", "1234567890123"]),
    "sku": st.sampled_from(["P001", "P002", "靴-01"]),
    "quantity": st.integers(1, 5).map(str),
    "unit_price": st.integers(0, 50_000).map(str),
    "discount": st.integers(0, 500).map(str),
    "payment_method": st.sampled_from(["cash", "credit_card", "現金"]),
    "coupon_code": st.sampled_from(["", "CP10"]),
}
ROW = st.fixed_dictionaries({c: st.one_of(GOOD[c], HOSTILE, st.text(max_size=12)) for c in COLUMNS})
_files = itertools.count()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Path]:
    folder = tmp_path_factory.mktemp("posfuzz")
    with Store(folder / "t.duckdb") as store:
        yield store, folder


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
@given(rows=st.lists(ROW, min_size=1, max_size=12))
def test_every_row_is_imported_or_rejected_with_a_reason(
    shop: tuple[Store, Path], rows: list[dict[str, str]]
) -> None:
    store, folder = shop
    text = io.StringIO()
    # CR LF, as Excel and most tills write: then a cell's line breaks are quoted (with LF
    # lines, the csv module leaves a CR in a cell bare, and a bare CR ends a row)
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    path = folder / f"pos-{next(_files)}.csv"
    path.write_bytes(text.getvalue().encode("utf-8"))
    try:
        result = import_pos(store=store, path=path)
    except InvalidInput as exc:  # a file it cannot read at all: named
        assert exc.field, exc.message
        return
    assert result.read == len(rows)
    assert result.imported + result.rejected + result.duplicates + result.suppressed == len(rows)
    if result.rejected:
        with open(result.rejects_file or "", encoding="utf-8", newline="") as fh:
            rejects = list(csv.DictReader(fh))
        assert len(rejects) == result.rejected
        assert all(r["reason"] for r in rejects)


def test_a_carriage_return_inside_a_quoted_cell_of_a_file_with_lf_lines(
    shop: tuple[Store, Path],
) -> None:
    """DuckDB's strict reader refused the whole file (a traceback, a 500 over HTTP)."""
    store, folder = shop
    path = folder / "cr.csv"
    path.write_bytes(
        (",".join(COLUMNS) + "\n"
         + 'CR1,1,S001,2026-03-01 14:05:09,,"靴\r01",1,1200,0,cash,\n'
         + "CR2,1,S001,2026-03-01 15:00:00,,P001,1,1200,0,cash,\n").encode()
    )  # fmt: skip
    result = import_pos(store=store, path=path)
    assert (result.read, result.imported, result.rejected) == (2, 2, 0)
    # the cell's line break is kept, as a line feed (JSON writes it \n)
    assert (
        store.scalar("SELECT count(*) FROM events WHERE contains(raw::VARCHAR, ?)", ['"靴\\n01"'])
        == 1
    )

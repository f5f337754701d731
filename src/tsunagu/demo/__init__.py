"""The synthetic retailer: a Japanese fashion and lifestyle chain with stores, an EC site, an app
and LINE, written as the files ``tsunagu import`` reads (see docs/data-formats.md).

Example:
    >>> from pathlib import Path
    >>> from tsunagu.demo import generate
    >>> summary = generate(out_dir=Path("demo-data"), customers=2000, days=90, seed=7)
    >>> summary.files["events.jsonl"] > 0
    True
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

from tsunagu.demo.writer import GenerateSummary, default_workers, write_all

DEFAULT_END = date(2026, 10, 31)
"""The last day of the window unless told otherwise, so output never depends on today's date."""

__all__ = ["DEFAULT_END", "GenerateSummary", "generate"]


def generate(
    *,
    out_dir: Path,
    customers: int,
    days: int,
    seed: int,
    end: date | None = None,
    progress: Callable[[int], None] | None = None,
) -> GenerateSummary:
    """Write a synthetic retailer to ``out_dir``.

    Writes stores.csv, products.csv, inventory.csv, members.csv, events.jsonl,
    pos_transactions.csv and truth.csv for ``customers`` people over the ``days`` days ending at
    ``end`` (default 2026-10-31). The same arguments always give byte-identical files.

    Args:
        out_dir: directory to write into (created if missing; files in it are replaced).
        customers: number of people (members, anonymous visitors, walk-in shoppers ...).
        days: length of the window in days.
        seed: seed of every random choice.
        end: last day of the window (Japan time).
        progress: called with the number of customers finished so far.

    Returns:
        The number of data rows written per file.
    """
    return write_all(
        out_dir=Path(out_dir),
        customers=customers,
        days=days,
        seed=seed,
        end=end or DEFAULT_END,
        progress=progress,
        workers=default_workers(customers),
    )

"""The embedded DuckDB store."""

from __future__ import annotations

from tsunagu.store import columns
from tsunagu.store.db import Store, count, utcnow

__all__ = ["Store", "columns", "count", "utcnow"]

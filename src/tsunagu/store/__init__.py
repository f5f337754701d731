"""The embedded DuckDB store."""

from __future__ import annotations

from tsunagu.store.db import Store, count, utcnow

__all__ = ["Store", "count", "utcnow"]

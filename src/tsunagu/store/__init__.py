"""The embedded DuckDB store."""

from __future__ import annotations

from tsunagu.store.db import Store, count, insert_new_events, utcnow

__all__ = ["Store", "count", "insert_new_events", "utcnow"]

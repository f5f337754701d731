"""The embedded DuckDB store."""

from __future__ import annotations

from tsunagu.store.db import Store, insert_new_events, utcnow

__all__ = ["Store", "insert_new_events", "utcnow"]

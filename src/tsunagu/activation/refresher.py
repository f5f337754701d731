"""Segments kept current inside `tsunagu serve`: a segment whose rule reads events is refreshed
as soon as events arrived since its last refresh (within `interval` seconds, not at night), and
every segment at least every `every` seconds, since windows ("in the last 30 days") move with
time."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from tsunagu.activation.membership import Refresh, list_segments, refresh_segment
from tsunagu.analytics.facts import fresh_engine
from tsunagu.identity.rules import load_rules
from tsunagu.store import Store, utcnow

log = logging.getLogger("tsunagu.segments")


def reads_events(rule: Any) -> bool:
    """Whether a rule (its JSON) depends on events: an event rule, or a last location."""
    if isinstance(rule, dict):
        by = rule.get("by", "either")
        if "event" in rule or ("near_store" in rule and by in ("last_location", "either")):
            return True
        return any(reads_events(v) for v in rule.values())
    if isinstance(rule, list):
        return any(reads_events(v) for v in rule)
    return False


class SegmentRefresher:
    def __init__(
        self, store: Store, *, data_dir: Path, timezone: str, interval: float, every: float
    ) -> None:
        self.store = store
        self.data_dir = data_dir
        self.timezone = timezone
        self.interval = interval
        self.every = timedelta(seconds=every)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="segment-refresher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def tick(self) -> list[Refresh]:
        """Refresh the segments that are due; what each refresh did."""
        segments = list_segments(store=self.store)
        if not segments:
            return []
        # Events of tsunagu's own (entries and exits) do not make a segment due.
        arrived = self.store.scalar("SELECT max(stored_at) FROM events WHERE source <> 'tsunagu'")
        now = utcnow()
        due = [
            s
            for s in segments
            if s.refreshed_at is None
            or now - s.refreshed_at >= self.every
            or (arrived is not None and arrived > s.refreshed_at and reads_events(s.definition))
        ]
        if not due:
            return []
        fresh_engine(store=self.store, data_dir=self.data_dir, timezone=self.timezone)
        rules = load_rules(self.data_dir)
        return [
            refresh_segment(store=self.store, segment_id=s.segment_id, rules=rules) for s in due
        ]

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:  # a failed pass is tried again at the next tick
                log.exception("segment refresh failed")

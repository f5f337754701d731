"""Segments kept current inside `tsunagu serve`: a segment whose rule reads events looks again
at the customers whose events arrived since it last did (within `interval` seconds, not at
night, and only those customers), and every segment is recomputed whole at least every `every`
seconds, since windows ("in the last 30 days") move with time."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from tsunagu.activation.arrivals import CUSTOMERS
from tsunagu.activation.membership import Refresh, list_segments, refresh_segment
from tsunagu.analytics.facts import fresh_engine
from tsunagu.identity.rules import load_rules
from tsunagu.store import Store, utcnow
from tsunagu.store.identifiers import normalize_macros

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

    @property
    def alive(self) -> bool:
        """Whether its thread runs (GET /readyz)."""
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def tick(self) -> list[Refresh]:
        """Refresh the segments that are due; what each refresh did. A segment whose rule reads
        events looks again at the customers whose events arrived since it last did (not the
        whole segment); every segment is recomputed whole every `every` (windows move)."""
        segments = list_segments(store=self.store)
        if not segments:
            return []
        # Events of tsunagu's own (entries and exits) do not make a segment due.
        arrived = self.store.scalar("SELECT max(stored_at) FROM events WHERE source <> 'tsunagu'")
        read_to = dict(self.store.query("SELECT segment_id, events_to FROM segments"))
        now = utcnow()
        whole = [
            s for s in segments if s.refreshed_at is None or now - s.refreshed_at >= self.every
        ]
        since = {
            s.segment_id: read_to.get(s.segment_id) or s.refreshed_at
            for s in segments
            if s not in whole and reads_events(s.definition) and arrived is not None
        }
        since = {k: v for k, v in since.items() if v is not None and arrived > v}
        if not whole and not since:
            return []
        fresh_engine(store=self.store, data_dir=self.data_dir, timezone=self.timezone)
        rules = load_rules(self.data_dir)
        done = [
            refresh_segment(
                store=self.store, segment_id=s.segment_id, rules=rules, events_to=arrived
            )
            for s in whole
        ]
        for segment_id, moment in since.items():
            who = self._customers_since(moment, arrived)
            done.append(refresh_segment(store=self.store, segment_id=segment_id, rules=rules,
                                        only=who, events_to=arrived))  # fmt: skip
        return done

    def _customers_since(self, moment: Any, upto: Any) -> list[str]:
        """The customers of the events stored in (moment, upto]: their profiles, and the names
        analytics gives customers the graph does not know yet (TYPE:VALUE)."""
        cur = self.store.cursor()
        try:
            cur.execute(normalize_macros(self.store.country))
            rows = cur.execute(CUSTOMERS, [moment, upto]).fetchall()
        finally:
            cur.close()
        return [r[0] for r in rows if r[0] is not None]

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:  # a failed pass is tried again at the next tick
                log.exception("segment refresh failed")

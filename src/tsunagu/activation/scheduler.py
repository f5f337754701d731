"""What `tsunagu serve` does on its own: when new events are committed (`nudge`), and at least
every `journey_tick_seconds`, it takes in journeys' triggers and moves customers along
(journey_runner.py); every `send_interval_seconds` it sends
what waited for the end of quiet hours and what a crash left half sent (sends.send_due). Its
state is the store's, so a restart picks up where the last process stopped."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping

from tsunagu.activation.channels import Channel
from tsunagu.activation.journey_runner import JourneyRunner
from tsunagu.activation.sends import send_due
from tsunagu.config import Settings
from tsunagu.identity.rules import load_rules
from tsunagu.store import Store

log = logging.getLogger("tsunagu.scheduler")

MIN_GAP = 0.02
"""Seconds between the start of one tick and the next however often it is woken, so a stream
of small commits leaves the writer its share of the cores."""


class Scheduler:
    def __init__(self, store: Store, settings: Settings, channels: Mapping[str, Channel]) -> None:
        self.store, self.settings, self.channels = store, settings, channels
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether its thread runs (GET /readyz)."""
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)

    def nudge(self) -> None:
        """New events are stored: look for journeys' triggers now rather than at the tick."""
        self._wake.set()

    def journeys(self) -> None:
        rules = load_rules(self.settings.data_dir)
        JourneyRunner(self.store, self.settings, self.channels, rules).tick()

    def sends(self) -> None:
        rules = load_rules(self.settings.data_dir)
        send_due(store=self.store, settings=self.settings, channels=self.channels, rules=rules)

    def _run(self) -> None:
        # What a previous process left half done goes first.
        last_sends = 0.0
        while not self._stop.is_set():
            started = time.monotonic()
            self._wake.clear()  # what commits from here on is read by this tick or wakes the next
            try:
                if time.monotonic() - last_sends >= self.settings.send_interval_seconds:
                    last_sends = time.monotonic()
                    self.sends()
                self.journeys()
            except Exception:  # tried again at the next tick
                log.exception("scheduled work failed")
            self._wake.wait(self.settings.journey_tick_seconds)
            self._stop.wait(max(0.0, MIN_GAP - (time.monotonic() - started)))

"""The generation window: which days are busy, at what hours, and how times are written.

Times are kept as integer milliseconds since the Unix epoch (UTC). Days are Japan days: day 0
starts at 00:00 JST on the first day of the window.
"""

from __future__ import annotations

import bisect
import math
import random
from datetime import date, timedelta
from itertools import accumulate

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
JST_MS = 9 * HOUR_MS
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

# Month multipliers (Jan..Dec): winter sale, summer sale, Black Friday, the December peak.
MONTH_ONLINE = (1.25, 0.80, 0.90, 0.95, 0.95, 0.90, 1.20, 0.95, 0.85, 0.95, 1.15, 1.50)
MONTH_STORE = (1.30, 0.80, 0.95, 1.00, 1.05, 0.90, 1.20, 1.00, 0.85, 0.95, 1.05, 1.55)
# Weekday multipliers (Mon..Sun): stores are busiest at weekends, online a little on Sunday.
WEEKDAY_ONLINE = (1.05, 0.95, 0.95, 0.95, 0.95, 1.00, 1.15)
WEEKDAY_STORE = (0.80, 0.80, 0.85, 0.90, 1.05, 1.65, 1.50)
# Hour-of-day weights in Japan time: online peaks in the evening, stores open 10:00-21:00.
HOUR_ONLINE = (
    2.0,
    1.2,
    0.6,
    0.3,
    0.2,
    0.3,
    0.8,
    1.5,
    2.0,
    2.0,
    2.2,
    2.5,
    3.2,
    2.8,
    2.4,
    2.4,
    2.6,
    3.0,
    3.6,
    4.4,
    5.2,
    5.6,
    5.0,
    3.6,
)
HOUR_STORE = (
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0.6,
    1.0,
    1.4,
    1.6,
    1.8,
    1.9,
    1.8,
    1.6,
    1.4,
    1.1,
    0.6,
    0,
    0,
    0,
)


def _special(day: date) -> float:
    """Extra traffic around Golden Week and Black Friday / year-end shopping."""
    if (day.month == 4 and day.day >= 29) or (day.month == 5 and day.day <= 5):
        return 1.25
    if day.month == 11 and day.day >= 20:
        return 1.3
    if day.month == 12 and 20 <= day.day <= 30:
        return 1.3
    return 1.0


class Window:
    """The ``days`` Japan days ending at ``end`` (inclusive) and samplers over them."""

    def __init__(self, *, end: date, days: int) -> None:
        if days < 1:
            raise ValueError("days: must be at least 1")
        self.end = end
        self.days = days
        self.start = end - timedelta(days=days - 1)
        self.start_ms = (self.start.toordinal() - _EPOCH_ORDINAL) * DAY_MS - JST_MS
        self.end_ms = self.start_ms + days * DAY_MS
        self.dates = [self.start + timedelta(days=i) for i in range(days)]
        self.months = [d.month for d in self.dates]
        online = [
            MONTH_ONLINE[d.month - 1] * WEEKDAY_ONLINE[d.weekday()] * _special(d)
            for d in self.dates
        ]
        store = [
            MONTH_STORE[d.month - 1] * WEEKDAY_STORE[d.weekday()] * _special(d) for d in self.dates
        ]
        self._online = list(accumulate(online))
        self._store = list(accumulate(store))
        self._hour_online = list(accumulate(HOUR_ONLINE))
        self._hour_store = list(accumulate(HOUR_STORE))
        self._day_text: dict[int, str] = {}

    def day_ms(self, day: int) -> int:
        """UTC epoch ms of 00:00 JST on window day ``day``."""
        return self.start_ms + day * DAY_MS

    def day_of(self, ms: int) -> int:
        """Window day index of a time (may fall outside 0..days-1)."""
        return (ms - self.start_ms) // DAY_MS

    def online_day(self, rng: random.Random) -> int:
        return bisect.bisect_right(self._online, rng.random() * self._online[-1])

    def store_day(self, rng: random.Random) -> int:
        return bisect.bisect_right(self._store, rng.random() * self._store[-1])

    def online_time(self, rng: random.Random, day: int) -> int:
        hour = bisect.bisect_right(self._hour_online, rng.random() * self._hour_online[-1])
        return self.day_ms(day) + hour * HOUR_MS + int(rng.random() * HOUR_MS)

    def store_time(self, rng: random.Random, day: int) -> int:
        hour = bisect.bisect_right(self._hour_store, rng.random() * self._hour_store[-1])
        return self.day_ms(day) + hour * HOUR_MS + int(rng.random() * (HOUR_MS - 120_000))

    def time_of_day(self, rng: random.Random, *, store: bool) -> int:
        """Milliseconds after midnight JST: store opening hours, or when people shop online."""
        cum = self._hour_store if store else self._hour_online
        hour = bisect.bisect_right(cum, rng.random() * cum[-1])
        return hour * HOUR_MS + int(rng.random() * (HOUR_MS - 120_000))

    def _date_text(self, day_number: int) -> str:
        text = self._day_text.get(day_number)
        if text is None:
            text = date.fromordinal(day_number + _EPOCH_ORDINAL).isoformat()
            self._day_text[day_number] = text
        return text

    def utc(self, ms: int) -> str:
        """``2026-03-01T05:12:00.123Z``."""
        day, rest = divmod(ms, DAY_MS)
        sec, milli = divmod(rest, 1000)
        hour, sec = divmod(sec, 3600)
        minute, sec = divmod(sec, 60)
        return f"{self._date_text(day)}T{hour:02d}:{minute:02d}:{sec:02d}.{milli:03d}Z"

    def jst(self, ms: int) -> str:
        """``2026-03-01 14:05:09``: Japan time without an offset, as tills write it."""
        day, rest = divmod(ms + JST_MS, DAY_MS)
        sec = rest // 1000
        hour, sec = divmod(sec, 3600)
        minute, sec = divmod(sec, 60)
        return f"{self._date_text(day)} {hour:02d}:{minute:02d}:{sec:02d}"

    def jst_date(self, ms: int) -> str:
        return self._date_text((ms + JST_MS) // DAY_MS)


def poisson(rng: random.Random, lam: float) -> int:
    """How many times something with mean ``lam`` happens (Knuth's method; small ``lam``)."""
    if lam <= 0:
        return 0
    limit, k, prod = math.exp(-lam), 0, rng.random()
    while prod > limit:
        k += 1
        prod *= rng.random()
    return k

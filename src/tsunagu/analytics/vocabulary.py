"""What an analysis can be asked about: the event names in the data with the channels each
came from, the channels, the stores and the product categories (the screens' pickers)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from tsunagu.analytics.engine import Engine


@dataclass(frozen=True, slots=True)
class EventName:
    event: str
    events: int
    channels: tuple[str, ...]
    """The channels it came from, the most frequent first."""


@dataclass(frozen=True, slots=True)
class Vocabulary:
    events: list[EventName]
    """The most frequent first."""
    channels: list[str]
    stores: list[tuple[str, str]]
    """(store_id, name), by id."""
    categories: list[str]
    first_day: date | None
    last_day: date | None


def vocabulary(*, engine: Engine) -> Vocabulary:
    rows = engine.rows(
        "SELECT event, channel, count(*) AS n, min(day), max(day) FROM analytics_events "
        "WHERE event IS NOT NULL GROUP BY event, channel"
    )
    per_event: dict[str, list[tuple[int, str]]] = {}
    by_channel: dict[str, int] = {}
    for event, channel, n, _, _ in rows:
        per_event.setdefault(event, []).append((-n, channel))
        by_channel[channel] = by_channel.get(channel, 0) + n
    events = sorted(
        (
            EventName(
                event=event,
                events=-sum(n for n, _ in counts),
                channels=tuple(c for _, c in sorted(counts)),
            )
            for event, counts in per_event.items()
        ),
        key=lambda e: (-e.events, e.event),
    )
    first = min((r[3] for r in rows), default=None)
    last = max((r[4] for r in rows), default=None)
    stores = engine.rows("SELECT store_id, name FROM stores ORDER BY store_id")
    categories = engine.rows(
        "SELECT DISTINCT category FROM products WHERE category IS NOT NULL ORDER BY 1"
    )
    return Vocabulary(
        events=events,
        channels=sorted(by_channel, key=lambda c: (-by_channel[c], c)),
        stores=[(s, n or s) for s, n in stores],
        categories=[c for (c,) in categories],
        first_day=first,
        last_day=last,
    )


def last_day(*, engine: Engine) -> date | None:
    """The last local day with an event (where a report's period ends by default)."""
    return engine.rows("SELECT max(day) FROM analytics_events")[0][0]

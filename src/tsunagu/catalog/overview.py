"""What the store holds, in counts: the landing page and `tsunagu status` show it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from tsunagu.store import Store


@dataclass(frozen=True, slots=True)
class Overview:
    members: int
    stores: int
    products: int
    events: int
    events_by_channel: list[tuple[str, int]]
    last_event_at: datetime | None  # aware, UTC


def overview(*, store: Store) -> Overview:
    members, stores, products = store.query(
        "SELECT (SELECT count(*) FROM members), (SELECT count(*) FROM stores),"
        " (SELECT count(*) FROM products)"
    )[0]
    by_channel = store.query(
        "SELECT channel, count(*) AS n FROM events GROUP BY channel ORDER BY n DESC, channel"
    )
    last = store.scalar("SELECT max(timestamp) FROM events")
    return Overview(
        members=members,
        stores=stores,
        products=products,
        events=sum(n for _, n in by_channel),
        events_by_channel=[(c, n) for c, n in by_channel],
        last_event_at=last.replace(tzinfo=UTC) if last else None,
    )


def store_names(*, store: Store) -> list[tuple[str, str]]:
    """(store_id, name) of every store, by id (the screens' store pickers and labels)."""
    return [(s, n or s) for s, n in store.query("SELECT store_id, name FROM stores ORDER BY 1")]

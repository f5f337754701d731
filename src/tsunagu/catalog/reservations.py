"""Click-and-collect: stock held at a store for a customer for some hours.

A hold is taken only if what is on hand, less what others hold, covers it; holds are taken one
at a time (the store's writer lock), so concurrent requests never hold more than there is. A
hold is picked up (the stock goes down), cancelled, or expires. Each step is an event of the
customer on the store channel ("Reservation Created", "Reservation Picked Up", "Reservation
Cancelled", "Reservation Expired"), so analytics and journeys see it like any other.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tsunagu.events.normalize import normalize
from tsunagu.exceptions import Conflict, NotFound
from tsunagu.store import Store, utcnow

Status = Literal["held", "picked_up", "cancelled", "expired"]
MAX_HOURS = 14 * 24


class ReservationCreate(BaseModel):
    """`POST /v1/reservations`."""

    model_config = ConfigDict(extra="forbid")

    store_id: str = Field(min_length=1, max_length=200)
    sku: str = Field(min_length=1, max_length=200)
    quantity: int = Field(default=1, ge=1, le=1000)
    hours: int = Field(default=48, ge=1, le=MAX_HOURS, description="how long the stock is held")
    user_id: str | None = Field(default=None, max_length=200, description="the member id")
    profile_id: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _someone(self) -> ReservationCreate:
        if not self.user_id and not self.profile_id:
            raise ValueError("user_id: name the customer (user_id or profile_id)")
        return self


class Reservation(BaseModel):
    reservation_id: str
    profile_id: str | None
    user_id: str | None
    store_id: str
    sku: str
    quantity: int
    status: Status
    created_at: datetime
    expires_at: datetime
    closed_at: datetime | None


_COLUMNS = (
    "reservation_id, profile_id, user_id, store_id, sku, quantity, status, created_at, "
    "expires_at, closed_at"
)


def _row(row: tuple[Any, ...]) -> Reservation:
    return Reservation.model_validate(dict(zip(_COLUMNS.split(", "), row, strict=True)))


def get_reservation(*, store: Store, reservation_id: str) -> Reservation:
    rows = store.query(
        f"SELECT {_COLUMNS} FROM reservations WHERE reservation_id = ?", [reservation_id]
    )
    if not rows:
        raise NotFound(f"no reservation {reservation_id!r}", field="reservation_id")
    return _row(rows[0])


def holds_at(*, store: Store, store_id: str, profile_id: str | None = None) -> list[Reservation]:
    """Holds waiting to be picked up at `store_id` (of one customer, with `profile_id`)."""
    who = "AND profile_id = ? " if profile_id is not None else ""
    rows = store.query(
        f"SELECT {_COLUMNS} FROM reservations WHERE store_id = ? AND status = 'held' "
        f"AND expires_at > ? {who}ORDER BY expires_at",
        [store_id, utcnow(), *([profile_id] if profile_id is not None else [])],
    )
    return [_row(r) for r in rows]


def reserve(
    *, store: Store, request: ReservationCreate, now: datetime | None = None
) -> Reservation:
    """Hold stock, or raise Conflict when there is not enough."""
    now = now or utcnow()
    with store.transaction() as cur:
        _expire(store, cur, now)
        found = cur.execute(
            "SELECT s.store_id, v.quantity FROM stores s LEFT JOIN inventory v "
            "ON v.store_id = s.store_id AND v.sku = ? WHERE s.store_id = ?",
            [request.sku, request.store_id],
        ).fetchall()
        if not found:
            raise NotFound(f"store_id: no store {request.store_id!r}", field="store_id")
        on_hand = int(found[0][1] or 0)
        held = int(
            cur.execute(
                "SELECT coalesce(sum(quantity), 0) FROM reservations WHERE store_id = ? AND sku = ? "
                "AND status = 'held' AND expires_at > ?",
                [request.store_id, request.sku, now],
            ).fetchall()[0][0]
        )
        if on_hand - held < request.quantity:
            raise Conflict(
                f"quantity: {max(on_hand - held, 0)} of {request.sku} available at "
                f"{request.store_id}, {request.quantity} asked for",
                field="quantity",
            )
        profile_id = request.profile_id or _profile_of(cur, request.user_id)
        user_id = request.user_id or _member_of(cur, profile_id)
        reservation = Reservation(
            reservation_id="rsv_" + uuid.uuid4().hex[:20],
            profile_id=profile_id,
            user_id=user_id,
            store_id=request.store_id,
            sku=request.sku,
            quantity=request.quantity,
            status="held",
            created_at=now,
            expires_at=now + timedelta(hours=request.hours),
            closed_at=None,
        )
        cur.execute(
            f"INSERT INTO reservations ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [getattr(reservation, c) for c in _COLUMNS.split(", ")],
        )
        _events(store, cur, [(reservation, "Reservation Created", now)])
    return reservation


def pick_up(*, store: Store, reservation_id: str, now: datetime | None = None) -> Reservation:
    """The customer collected it: the stock goes down by the quantity held."""
    return _close(store, reservation_id, "picked_up", "Reservation Picked Up", now or utcnow())


def cancel(*, store: Store, reservation_id: str, now: datetime | None = None) -> Reservation:
    return _close(store, reservation_id, "cancelled", "Reservation Cancelled", now or utcnow())


def expire(*, store: Store, now: datetime | None = None) -> int:
    """Mark holds past their time as expired (with their events); how many there were."""
    with store.transaction() as cur:
        return _expire(store, cur, now or utcnow())


def _close(
    store: Store, reservation_id: str, status: str, event: str, now: datetime
) -> Reservation:
    with store.transaction() as cur:
        _expire(store, cur, now)
        rows = cur.execute(
            f"SELECT {_COLUMNS} FROM reservations WHERE reservation_id = ?", [reservation_id]
        ).fetchall()
        if not rows:
            raise NotFound(f"no reservation {reservation_id!r}", field="reservation_id")
        reservation = _row(rows[0])
        if reservation.status != "held":
            raise Conflict(
                f"reservation_id: {reservation_id} is {reservation.status.replace('_', ' ')}",
                field="reservation_id",
            )
        if status == "picked_up":
            left = cur.execute(
                "UPDATE inventory SET quantity = quantity - ?, updated_at = ? "
                "WHERE store_id = ? AND sku = ? AND quantity >= ? RETURNING quantity",
                [
                    reservation.quantity,
                    now,
                    reservation.store_id,
                    reservation.sku,
                    reservation.quantity,
                ],
            ).fetchall()
            if not left:
                raise Conflict(
                    f"reservation_id: the stock of {reservation.sku} at {reservation.store_id} is "
                    "below what was held (counted since?)",
                    field="reservation_id",
                )
            cur.execute(
                "INSERT INTO inventory_history VALUES (?, ?, ?, ?, ?, 'pickup')",
                [reservation.store_id, reservation.sku, left[0][0], -reservation.quantity, now],
            )
        cur.execute(
            "UPDATE reservations SET status = ?, closed_at = ? WHERE reservation_id = ?",
            [status, now, reservation_id],
        )
        reservation = reservation.model_copy(update={"status": status, "closed_at": now})
        _events(store, cur, [(reservation, event, now)])
    return reservation


def _expire(store: Store, cur: Any, now: datetime) -> int:
    rows = cur.execute(
        f"UPDATE reservations SET status = 'expired', closed_at = expires_at "
        f"WHERE status = 'held' AND expires_at <= ? RETURNING {_COLUMNS}",
        [now],
    ).fetchall()
    if rows:
        _events(store, cur, [(_row(r), "Reservation Expired", _row(r).expires_at) for r in rows])
    return len(rows)


def _profile_of(cur: Any, user_id: str | None) -> str | None:
    rows = cur.execute(
        "SELECT profile_id FROM identity_nodes WHERE type = 'user_id' AND value = ?", [user_id]
    ).fetchall()
    return rows[0][0] if rows else None


def _member_of(cur: Any, profile_id: str | None) -> str | None:
    rows = cur.execute(
        "SELECT min(value) FROM identity_nodes WHERE type = 'user_id' AND profile_id = ?",
        [profile_id],
    ).fetchall()
    return rows[0][0] if rows else None


def _events(store: Store, cur: Any, items: list[tuple[Reservation, str, datetime]]) -> None:
    """The reservation steps as the customer's events on the store channel (messageId derived
    from the reservation and the step, so a step is never stored twice)."""
    rows = []
    for r, event, at in items:
        who: dict[str, str] = (
            {"userId": r.user_id} if r.user_id else {"anonymousId": f"profile:{r.profile_id}"}
        )
        rows.append(
            normalize(
                {
                    "type": "track",
                    "event": event,
                    **who,
                    "messageId": f"{r.reservation_id}:{event}",
                    "timestamp": at.replace(tzinfo=UTC).isoformat(),
                    "context": {"channel": "store"},
                    "properties": {
                        "reservation_id": r.reservation_id,
                        "store_id": r.store_id,
                        "sku": r.sku,
                        "quantity": r.quantity,
                        "expires_at": r.expires_at.replace(tzinfo=UTC).isoformat(),
                    },
                },
                received_at=utcnow().replace(tzinfo=UTC),
                source="reservations",
            )
        )
    store.add_events(cur, rows)


class HoldSweeper:
    """Marks holds past their time as expired every `interval` seconds, so that their events
    are written when they happen rather than at the next reservation call (the server runs
    one)."""

    def __init__(self, store: Store, *, interval: float) -> None:
        self.store = store
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hold-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether its thread runs (GET /readyz)."""
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                due = self.store.query(
                    "SELECT 1 FROM reservations WHERE status = 'held' AND expires_at <= ? LIMIT 1",
                    [utcnow()],
                )
                if due:
                    expire(store=self.store)
            except Exception:  # noqa: BLE001 - a failed sweep is retried at the next tick
                continue

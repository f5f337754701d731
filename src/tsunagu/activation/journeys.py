"""Journeys: a trigger, then steps (waits, conditions checked at the moment, sends, a coupon,
direct mail, waiting for an event with a timeout and branching on it), until the goal happens.

A journey is defined as data (JSON, `JourneyCreate`), directly or from a built-in template
(templates.py). It is backed by a campaign of its own, so every customer who enters is assigned
a variant (its control group enters and is measured but gets nothing) and the campaign report
measures the journey.

State is in the store: `journey_runs` holds each customer's run (its key: journey, customer,
trigger), the step it is at (a path into the steps: `[2, "then", 0]`), when it is due and what
it waits for. Every move is written before the next step's effect, and each effect is
idempotent by a key (a send's key names the run and the step; a coupon is looked up before one
is issued), so a restart, even after `kill -9`, neither repeats nor misses a step. The server
advances journeys on its scheduler (scheduler.py).

The goal (e.g. any "Order Completed", in a store too) is checked before every step: a
customer who reached it leaves the journey before the next send.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tsunagu.activation.campaigns import (
    CampaignCreate,
    CouponTerms,
    Message,
    create_campaign,
)
from tsunagu.activation.segments import Rule
from tsunagu.analytics.filters import Step, window_seconds
from tsunagu.catalog.products import distance_sql
from tsunagu.exceptions import InvalidInput, NotFound
from tsunagu.store import Store, utcnow
from tsunagu.store.sql import literal

_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def _clock(text: str, field: str) -> str:
    if not _CLOCK.match(text):
        raise ValueError(f"{field}: {text!r} is not a time of day (HH:MM)")
    return text


class Schedule(BaseModel):
    """Every day at `at` (local time), the members of `segment` enter."""

    model_config = ConfigDict(extra="forbid")
    at: str = "10:00"
    segment: str = Field(min_length=1)

    @model_validator(mode="after")
    def _at(self) -> Schedule:
        _clock(self.at, "trigger.schedule.at")
        return self


class DateTrait(BaseModel):
    """Every day at `at`, the customers whose date trait (a birthday) is `days_before` ahead
    enter, once a year."""

    model_config = ConfigDict(extra="forbid")
    trait: str = Field(default="birth_date", pattern=r"^[A-Za-z0-9_]{1,64}$")
    days_before: int = Field(default=0, ge=0, le=60)
    at: str = "10:00"

    @model_validator(mode="after")
    def _at(self) -> DateTrait:
        _clock(self.at, "trigger.date_trait.at")
        return self


class NearStore(BaseModel):
    """An event trigger's location test: the event's own location (an app's GPS,
    `context.location`) within `km` of a store (one of `stores`, or any)."""

    model_config = ConfigDict(extra="forbid")
    km: float = Field(gt=0, le=50)
    stores: list[str] | None = Field(default=None, min_length=1, max_length=1000)

    def sql(self) -> str:
        """The condition on the arrivals' `lat`, `lon` (arrivals.EVENTS, named `arrived`)."""
        among = (
            " AND s.store_id IN (" + ", ".join(literal(s) for s in self.stores) + ")"
            if self.stores
            else ""
        )
        return (
            "EXISTS (SELECT 1 FROM stores s WHERE s.lat IS NOT NULL AND s.lon IS NOT NULL"
            f"{among} AND {distance_sql('arrived.lat', 'arrived.lon', 's.lat', 's.lon')} <= {self.km!r})"
        )


class Trigger(BaseModel):
    """One of: an event (any channel, a store's too, with filters; near a store, maybe),
    entering a segment, a daily schedule, a date trait."""

    model_config = ConfigDict(extra="forbid")
    event: Step | None = None
    near_store: NearStore | None = None
    """With `event`: only an event whose location is near a store."""
    segment_entered: str | None = None
    schedule: Schedule | None = None
    date_trait: DateTrait | None = None

    @model_validator(mode="after")
    def _one(self) -> Trigger:
        given = [
            k for k in ("event", "segment_entered", "schedule", "date_trait") if getattr(self, k)
        ]
        if len(given) != 1:
            raise ValueError(
                "trigger: give one of event, segment_entered, schedule, date_trait"
                + (f" (not {', '.join(given)})" if given else "")
            )
        if self.near_store is not None and self.event is None:
            raise ValueError("trigger.near_store: only with an event trigger")
        return self


class Wait(BaseModel):
    model_config = ConfigDict(extra="forbid")
    wait: str

    @model_validator(mode="after")
    def _duration(self) -> Wait:
        window_seconds(self.wait)
        return self


class SendAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: str | None = None
    message: Message | None = None


class Send(BaseModel):
    """Send on a channel (the journey's, or this one's); `{product}`, `{store}` and
    `{coupon_code}` in the text are filled from the run."""

    model_config = ConfigDict(extra="forbid")
    send: SendAction = Field(default_factory=SendAction)


class IssueCoupon(BaseModel):
    """Issue the journey's coupon to the customer (`{coupon_code}` in later messages)."""

    model_config = ConfigDict(extra="forbid")
    coupon: dict[str, Any] = Field(default_factory=dict)


class DirectMail(BaseModel):
    """Add the customer to the journey's direct-mail file for the print house."""

    model_config = ConfigDict(extra="forbid")
    direct_mail: dict[str, Any] = Field(default_factory=dict)


class InStock(BaseModel):
    model_config = ConfigDict(extra="forbid")
    radius_km: float = Field(default=10, gt=0, le=500)


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rule: Rule | None = None
    """A segment rule the customer must meet now."""
    favourite_in_stock: InStock | None = None
    """A favourite of the customer's in stock at a store within radius_km of them."""

    @model_validator(mode="after")
    def _one(self) -> Condition:
        if (self.rule is None) == (self.favourite_in_stock is None):
            raise ValueError("if: give rule or favourite_in_stock")
        return self


class If(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    if_: Condition = Field(alias="if")
    then: list[JourneyStep] = Field(default_factory=list)
    else_: list[JourneyStep] = Field(default_factory=list, alias="else")


class WaitFor(BaseModel):
    """Wait up to `within` for the event; then the `then` steps if it came, `else` if not."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    wait_for: Step
    within: str
    then: list[JourneyStep] = Field(default_factory=list)
    else_: list[JourneyStep] = Field(default_factory=list, alias="else")

    @model_validator(mode="after")
    def _duration(self) -> WaitFor:
        window_seconds(self.within)
        return self


class Exit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    exit: dict[str, Any] = Field(default_factory=dict)


JourneyStep = Wait | Send | IssueCoupon | DirectMail | If | WaitFor | Exit
If.model_rebuild()
WaitFor.model_rebuild()


class JourneyCreate(BaseModel):
    """`POST /v1/journeys` and `tsunagu journey create`: a template and its params, or a
    trigger and steps (given fields override the template's)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    template: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    trigger: Trigger | None = None
    steps: list[JourneyStep] | None = None
    goal: Step | None = None
    channel: str | None = None
    message: Message | None = None
    coupon: CouponTerms | None = None
    control_share: float = Field(default=0.1, ge=0, lt=1)
    window: str = "14d"
    purpose: Literal["marketing", "service"] = "marketing"
    """What its sends are (see CampaignCreate.purpose)."""
    reentry: Literal["after_exit", "once", "always"] = "after_exit"
    """A customer enters again only once their last run ended, never again, or at every
    trigger."""

    @model_validator(mode="after")
    def _complete(self) -> JourneyCreate:
        if self.template is None and (self.trigger is None or not self.steps):
            raise ValueError("trigger: give a template, or a trigger and steps")
        window_seconds(self.window)
        return self


@dataclass(frozen=True, slots=True)
class Journey:
    journey_id: str
    name: str
    status: str
    campaign_id: str
    definition: dict[str, Any]
    created_at: datetime
    runs: dict[str, int] = field(default_factory=dict)
    """Customers' runs by status: active, waiting, done, converted (reached the goal),
    control, exited."""

    def parsed(self) -> JourneyCreate:
        return JourneyCreate.model_validate(self.definition)


def resolve(body: JourneyCreate) -> JourneyCreate:
    """The definition with its template's trigger, steps and goal filled in."""
    if body.template is None:
        return body
    from tsunagu.activation.templates import build

    made = build(body.template, body.params)
    given = body.model_dump(exclude_unset=True, by_alias=True)
    given.pop("template", None)
    merged = {**made, **{k: v for k, v in given.items() if k != "params"}}
    merged["params"] = body.params
    merged["template"] = body.template
    return JourneyCreate.model_validate(merged)


def create_journey(*, store: Store, body: JourneyCreate, timezone: str = "Asia/Tokyo") -> Journey:
    definition = resolve(body)
    if definition.trigger is None or not definition.steps:
        raise InvalidInput("steps: the journey has nothing to do", field="steps")
    channel = definition.channel or _first_channel(definition.steps)
    campaign = create_campaign(
        store=store,
        body=CampaignCreate(
            name=f"journey: {definition.name}",
            channel=channel,
            window=definition.window,
            control_share=definition.control_share,
            message=definition.message,
            coupon=definition.coupon,
            purpose=definition.purpose,
        ),
        timezone=timezone,
    )
    now = utcnow()
    journey = Journey(
        journey_id="jny_" + secrets.token_hex(6),
        name=definition.name,
        status="active",
        campaign_id=campaign.campaign_id,
        definition=definition.model_dump(mode="json", by_alias=True, exclude_none=True),
        created_at=now,
    )
    with store.transaction() as cur:
        cur.execute(
            "INSERT INTO journeys VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)",
            [journey.journey_id, journey.name, journey.status, journey.campaign_id,
             orjson.dumps(journey.definition).decode(), now, now, now],
        )  # fmt: skip
    _changed(store)
    return journey


def _first_channel(steps: list[Any]) -> str | None:
    for step in steps:
        if isinstance(step, Send) and step.send.channel:
            return step.send.channel
        if isinstance(step, DirectMail):
            return "dm"
        for branch in (getattr(step, "then", []), getattr(step, "else_", [])):
            if found := _first_channel(branch):
                return found
    return None


_COLUMNS = "journey_id, name, status, campaign_id, definition, created_at"


def list_journeys(*, store: Store) -> list[Journey]:
    """Every journey, with its customers' runs by status."""
    runs: dict[str, dict[str, int]] = {}
    for jid, status, n in store.query(
        "SELECT journey_id, status, count(*) FROM journey_runs GROUP BY ALL"
    ):
        runs.setdefault(jid, {})[status] = n
    rows = store.query(f"SELECT {_COLUMNS} FROM journeys ORDER BY created_at")
    return [_journey(row, runs.get(row[0], {})) for row in rows]


def active_journeys(*, store: Store) -> list[Journey]:
    """The journeys that run (what a tick needs: no counts). That there are none is kept until
    a journey is created or resumed: the scheduler asks after every commit, and a stream of
    events should not cost a query each time when no journey waits for them."""
    changes = store.memo.get(_CHANGES, 0)
    if store.memo.get(_NONE_ACTIVE) == changes:
        return []
    rows = store.query(
        f"SELECT {_COLUMNS} FROM journeys WHERE status = 'active' ORDER BY created_at"
    )
    if not rows:
        store.memo[_NONE_ACTIVE] = changes  # as of `changes`: a change after it asks again
    return [_journey(row, {}) for row in rows]


_CHANGES = "journeys: changes"
_NONE_ACTIVE = "journeys: none active as of"


def _changed(store: Store) -> None:
    """After a commit that may make a journey active."""
    store.memo[_CHANGES] = store.memo.get(_CHANGES, 0) + 1


def get_journey(*, store: Store, journey_id: str) -> Journey:
    rows = store.query(
        f"SELECT {_COLUMNS} FROM journeys WHERE journey_id = ? OR name = ?",
        [journey_id, journey_id],
    )
    if not rows:
        raise NotFound(f"journey_id: no journey {journey_id!r}", field="journey_id")
    runs = dict(
        store.query(
            "SELECT status, count(*) FROM journey_runs WHERE journey_id = ? GROUP BY status",
            [rows[0][0]],
        )
    )
    return _journey(rows[0], runs)


def _journey(row: tuple[Any, ...], runs: dict[str, int]) -> Journey:
    jid, name, status, campaign_id, definition, created = row
    return Journey(jid, name, status, campaign_id, orjson.loads(definition), created, runs)


def set_status(*, store: Store, journey_id: str, status: Literal["active", "paused"]) -> Journey:
    """Pause (nothing moves: no one enters, no step runs) or resume (triggers count from now:
    what happened while paused does not flood in)."""
    journey = get_journey(store=store, journey_id=journey_id)
    now = utcnow()
    with store.transaction() as cur:
        cur.execute(
            "UPDATE journeys SET status = ?, "
            "cursor = CASE WHEN ? = 'active' AND status <> 'active' THEN ? ELSE cursor END, "
            "taken_from = CASE WHEN ? = 'active' AND status <> 'active' THEN ? ELSE taken_from END "
            "WHERE journey_id = ?",
            [status, status, now, status, now, journey.journey_id],
        )
    _changed(store)
    return get_journey(store=store, journey_id=journey.journey_id)


def send_key(journey_id: str, trigger_key: str, path: Sequence[int | str], profile_id: str) -> str:
    """The key of a journey's send: one per journey, trigger, step and customer (a retry
    finds it sent). journey_steps.py reads the step back from it."""
    return f"{journey_id}:{trigger_key}:{'/'.join(map(str, path))}:{profile_id}"


def local_day(moment: datetime, timezone: str) -> date:
    return moment.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(timezone)).date()


def local_clock(moment: datetime, timezone: str) -> str:
    return moment.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(timezone)).strftime("%H:%M")


def later(moment: datetime, duration: str) -> datetime:
    return moment + timedelta(seconds=window_seconds(duration))

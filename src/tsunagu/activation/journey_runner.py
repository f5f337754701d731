"""Moving customers through journeys (journeys.py), one tick at a time inside `tsunagu serve`.

A tick: each active journey takes in its triggers since its cursor (events stored since, a
segment's entries, the day's schedule or date trait), then advances every run that is due or
waiting. Each move is written to `journey_runs` before the next effect; effects are
idempotent by key, so a tick cut off anywhere is finished by the next one, in this process or
after a restart.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from tsunagu.activation import coupons, timeline
from tsunagu.activation.assignments import assign
from tsunagu.activation.campaigns import CONTROL, Campaign, get_campaign
from tsunagu.activation.channels import Channel
from tsunagu.activation.journeys import (
    DirectMail,
    Exit,
    If,
    IssueCoupon,
    Journey,
    JourneyCreate,
    Send,
    Wait,
    WaitFor,
    later,
    list_journeys,
    local_clock,
    local_day,
)
from tsunagu.activation.sends import send_campaign
from tsunagu.analytics.facts import ensure_fresh
from tsunagu.analytics.filters import Step
from tsunagu.config import Settings
from tsunagu.identity.rules import IdentityRules
from tsunagu.store import Store, utcnow
from tsunagu.store.identifiers import normalize_macros

log = logging.getLogger("tsunagu.journeys")

LAG = timedelta(seconds=1)
"""Triggers are read up to this long before now: a commit in flight lands before the cursor."""
MAX_MOVES = 100
"""Steps one run takes in one tick at most (a journey of conditions only cannot loop forever)."""

_EVENTS = """
SELECT e.message_id, e.timestamp AS ts, e.stored_at, coalesce(e.event, e.type) AS event,
       e.channel, e.store_id, json_extract(e.raw, '$.properties') AS properties,
       json_extract_string(e.raw, '$.properties.sku') AS sku,
       json_extract_string(e.raw, '$.properties.category') AS category,
       json_extract_string(e.raw, '$.properties.products[*].sku') AS skus,
       json_extract_string(e.raw, '$.properties.products[*].category') AS categories,
       TRY_CAST(json_extract_string(e.raw, '$.properties.revenue') AS DOUBLE) AS revenue,
       json_extract_string(e.raw, '$.properties.order_id') AS order_id,
       json_extract_string(e.raw, '$.name') AS name,
       coalesce(u.profile_id, a.profile_id, c.profile_id, l.profile_id, d.profile_id) AS profile_id
FROM events e
LEFT JOIN identity_nodes u ON u.type = 'user_id' AND u.value = e.user_id
LEFT JOIN identity_nodes a ON a.type = 'anonymous_id' AND a.value = e.anonymous_id
LEFT JOIN identity_nodes c ON c.type = 'member_card'
    AND c.value = tg_clean('member_card', json_extract_string(e.raw, '$.context.traits.member_card'))
LEFT JOIN identity_nodes l ON l.type = 'line_user_id'
    AND l.value = json_extract_string(e.raw, '$.context.traits.line_user_id')
LEFT JOIN identity_nodes d ON d.type = 'device_id'
    AND d.value = json_extract_string(e.raw, '$.context.device.id')
WHERE e.stored_at > ? AND e.stored_at <= ? AND e.source <> 'tsunagu'
"""


@dataclass(slots=True)
class TickResult:
    entered: int = 0
    moved: int = 0
    sent: int = 0
    converted: int = 0


@dataclass(slots=True)
class _Run:
    run_key: str
    profile_id: str
    trigger_key: str
    entered_at: datetime
    path: list[Any]
    status: str
    due_at: datetime | None
    wait_started: datetime | None
    context: dict[str, Any]


class JourneyRunner:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        channels: Mapping[str, Channel],
        rules: IdentityRules,
    ) -> None:
        self.store, self.settings, self.channels, self.rules = store, settings, channels, rules

    def tick(self, now: datetime | None = None) -> TickResult:
        moment = (now or utcnow()).replace(tzinfo=None)
        result = TickResult()
        journeys = [j for j in list_journeys(store=self.store) if j.status == "active"]
        if not journeys:
            return result
        fresh = False
        for journey in journeys:
            definition = journey.parsed()
            campaign = get_campaign(store=self.store, campaign_id=journey.campaign_id)
            result.entered += self._take_in(journey, definition, campaign, moment)
            runs = self._due(journey.journey_id, moment)
            if not runs:
                continue
            if not fresh:  # goals, waits and conditions read the analytics table
                ensure_fresh(store=self.store, rules=self.rules, timezone=self.settings.timezone)
                fresh = True
            for run in runs:
                try:
                    self._advance(journey, definition, campaign, run, moment, result)
                except Exception:  # the run stays where it was written; the next tick retries
                    log.exception("journey %s, run %s", journey.journey_id, run.run_key)
        return result

    # -- entering ---------------------------------------------------------------------------
    def _take_in(
        self, journey: Journey, definition: JourneyCreate, campaign: Campaign, moment: datetime
    ) -> int:
        trigger = definition.trigger
        assert trigger is not None
        entries: list[tuple[str, str, datetime]] = []  # (profile, trigger key, when)
        upper = moment - LAG
        cursor = self.store.scalar(
            "SELECT cursor FROM journeys WHERE journey_id = ?", [journey.journey_id]
        )
        if trigger.event is not None and cursor is not None and upper > cursor:
            cur = self.store.cursor()
            try:
                cur.execute(normalize_macros(self.store.country))  # tg_clean for member cards
                rows = cur.execute(
                    f"SELECT profile_id, message_id, ts FROM ({_EVENTS}) WHERE profile_id IS NOT NULL "
                    f"AND {trigger.event.sql()} ORDER BY stored_at",
                    [cursor, upper],
                ).fetchall()
            finally:
                cur.close()
            entries = [(p, f"event:{m}", t) for p, m, t in rows]
        elif trigger.segment_entered is not None and cursor is not None and upper > cursor:
            rows = self.store.query(
                "SELECT c.profile_id, c.changed_at FROM segment_changes c JOIN segments s "
                "USING (segment_id) WHERE (s.segment_id = ? OR s.name = ?) AND c.change = 'entered' "
                "AND c.changed_at > ? AND c.changed_at <= ?",
                [trigger.segment_entered, trigger.segment_entered, cursor, upper],
            )
            entries = [(p, f"segment:{t.isoformat()}", t) for p, t in rows]
        elif trigger.schedule is not None or trigger.date_trait is not None:
            entries = self._daily(journey, trigger, moment)
        if trigger.event is not None or trigger.segment_entered is not None:
            with self.store.transaction() as cur:
                cur.execute(
                    "UPDATE journeys SET cursor = ? WHERE journey_id = ? AND cursor < ?",
                    [upper, journey.journey_id, upper],
                )
        return self._enter(journey, definition, campaign, entries, moment)

    def _daily(
        self, journey: Journey, trigger: Any, moment: datetime
    ) -> list[tuple[str, str, datetime]]:
        zone = self.settings.timezone
        today = local_day(moment, zone)
        at = (trigger.schedule or trigger.date_trait).at
        last = self.store.scalar(
            "SELECT last_daily FROM journeys WHERE journey_id = ?", [journey.journey_id]
        )
        if last == today or local_clock(moment, zone) < at.zfill(5):
            return []
        if trigger.schedule is not None:
            rows = self.store.query(
                "SELECT m.profile_id FROM segment_members m JOIN segments s USING (segment_id) "
                "WHERE s.segment_id = ? OR s.name = ?",
                [trigger.schedule.segment, trigger.schedule.segment],
            )
            entries = [(p, f"day:{today}", moment) for (p,) in rows]
        else:
            target = today + timedelta(days=trigger.date_trait.days_before)
            path = f"$.{trigger.date_trait.trait}"
            rows = self.store.query(
                "SELECT profile_id FROM profile_traits WHERE "
                f"TRY_CAST(json_extract_string(traits, '{path}') AS DATE) IS NOT NULL AND "
                f"strftime(TRY_CAST(json_extract_string(traits, '{path}') AS DATE), '%m-%d') = ?",
                [target.strftime("%m-%d")],
            )
            entries = [(p, f"year:{target.year}", moment) for (p,) in rows]
        with self.store.transaction() as cur:
            cur.execute(
                "UPDATE journeys SET last_daily = ? WHERE journey_id = ?",
                [today, journey.journey_id],
            )
        return entries

    def _enter(
        self,
        journey: Journey,
        definition: JourneyCreate,
        campaign: Campaign,
        entries: list[tuple[str, str, datetime]],
        moment: datetime,
    ) -> int:
        if not entries:
            return 0
        jid = journey.journey_id
        seen: dict[str, str] = {}
        if definition.reentry != "always":
            statuses = ("active", "waiting") if definition.reentry == "after_exit" else None
            rows = self.store.query(
                "SELECT DISTINCT profile_id FROM journey_runs WHERE journey_id = ?"
                + (" AND status IN ('active', 'waiting')" if statuses else ""),
                [jid],
            )
            seen = {p: "in" for (p,) in rows}
        fresh: list[tuple[str, str, datetime]] = []
        for pid, key, when in entries:
            if definition.reentry != "always" and pid in seen:
                continue
            seen[pid] = "in"
            fresh.append((pid, key, when))
        if not fresh:
            return 0
        variants = assign(store=self.store, campaign=campaign, profile_ids=[p for p, _, _ in fresh],
                          at=moment, origin="journey")  # fmt: skip
        added = 0
        events = []
        with self.store.transaction() as cur:
            for pid, key, _ in fresh:
                control = variants.get(pid) == CONTROL
                inserted = cur.execute(
                    "INSERT INTO journey_runs VALUES (?, ?, ?, ?, ?, '[0]', ?, ?, NULL, '{}', ?) "
                    "ON CONFLICT DO NOTHING RETURNING 1",
                    [f"{jid}:{pid}:{key}", jid, pid, key, moment,
                     "control" if control else "active", moment, moment],
                ).fetchall()  # fmt: skip
                if inserted:
                    added += 1
                    events.append((pid, "Journey Entered", {
                        "messageId": f"journey-entered:{jid}:{pid}:{key}",
                        "properties": {"journey_id": jid, "journey": journey.name,
                                       "variant": variants.get(pid)},
                    }))  # fmt: skip
        timeline.record(self.store, events, moment, self.rules)
        return added

    # -- advancing --------------------------------------------------------------------------
    def _due(self, journey_id: str, moment: datetime) -> list[_Run]:
        rows = self.store.query(
            "SELECT run_key, profile_id, trigger_key, entered_at, path, status, due_at, "
            "wait_started, context FROM journey_runs WHERE journey_id = ? AND "
            "((status = 'active' AND due_at <= ?) OR status = 'waiting') ORDER BY due_at",
            [journey_id, moment],
        )
        return [
            _Run(k, p, t, e, orjson.loads(path), s, d, w, orjson.loads(c) if c else {})
            for k, p, t, e, path, s, d, w, c in rows
        ]

    def _advance(
        self,
        journey: Journey,
        definition: JourneyCreate,
        campaign: Campaign,
        run: _Run,
        moment: datetime,
        result: TickResult,
    ) -> None:
        steps = definition.steps or []
        for _ in range(MAX_MOVES):
            if definition.goal is not None and self._did(
                run.profile_id, definition.goal, run.entered_at
            ):
                self._end(journey, run, "converted", moment)
                result.converted += 1
                return
            step = step_at(steps, run.path)
            if step is None:
                self._end(journey, run, "done", moment)
                return
            result.moved += 1
            if isinstance(step, Wait):
                run.path, run.due_at = next_path(steps, run.path), later(moment, step.wait)
                self._save(run, moment)
                return
            if isinstance(step, WaitFor):
                if run.status != "waiting":
                    run.status, run.wait_started = "waiting", moment
                    run.due_at = later(moment, step.within)
                    self._save(run, moment)
                    return
                since = run.wait_started or run.entered_at
                if self._did(run.profile_id, step.wait_for, since):
                    run.path = into(steps, run.path, "then")
                elif run.due_at is not None and moment >= run.due_at:
                    run.path = into(steps, run.path, "else")
                else:
                    return  # still waiting
                run.status, run.wait_started = "active", None
            elif isinstance(step, If):
                run.path = into(
                    steps, run.path, "then" if self._holds(step, run, moment) else "else"
                )
            elif isinstance(step, Send | DirectMail):
                result.sent += self._send(journey, campaign, definition, step, run, moment)
                run.path = next_path(steps, run.path)
            elif isinstance(step, IssueCoupon):
                self._coupon(campaign, run, moment)
                run.path = next_path(steps, run.path)
            elif isinstance(step, Exit):
                self._end(journey, run, "exited", moment)
                return
            run.due_at = moment
            self._save(run, moment)

    def _did(self, profile_id: str, spec: Step, since: datetime) -> bool:
        return bool(
            self.store.scalar(
                "SELECT count(*) FROM analytics_events e JOIN analytics_profiles p USING (pid) "
                f"WHERE p.profile_id = ? AND e.ts >= ? AND {spec.sql()}",
                [profile_id, since],
            )
        )

    def _holds(self, step: If, run: _Run, moment: datetime) -> bool:
        condition = step.if_
        if condition.rule is not None:
            from tsunagu.activation.segments import members_sql

            sql = members_sql(condition.rule, store=self.store, as_of=moment)
            return bool(
                self.store.scalar(
                    f"SELECT count(*) FROM ({sql}) m WHERE m.profile_id = ?", [run.profile_id]
                )
            )
        from tsunagu.catalog.favourites import favourites_availability
        from tsunagu.exceptions import InvalidInput

        assert condition.favourite_in_stock is not None
        try:
            found = favourites_availability(
                store=self.store, profile_id=run.profile_id,
                radius_km=condition.favourite_in_stock.radius_km, stores_per_item=1,
            )  # fmt: skip
        except InvalidInput:  # where the customer is is not known
            return False
        for item in found.items:
            if item.stores:
                run.context.update(product=item.name or item.sku, sku=item.sku,
                                   store=item.stores[0].store.name,
                                   store_id=item.stores[0].store.store_id)  # fmt: skip
                return True
        return False

    def _send(
        self,
        journey: Journey,
        campaign: Campaign,
        definition: JourneyCreate,
        step: Send | DirectMail,
        run: _Run,
        moment: datetime,
    ) -> int:
        channel: str | None
        message: dict[str, Any] | None
        if isinstance(step, DirectMail):
            channel, message = "dm", {"text": journey.name}
        else:
            channel = step.send.channel or definition.channel or campaign.channel
            given = step.send.message or definition.message
            message = given.model_dump(exclude_none=True) if given else campaign.message
        if not message:
            message = {"text": journey.name}
        filled = {k: _fill(v, run.context) if isinstance(v, str) else v for k, v in message.items()}
        done = send_campaign(
            store=self.store, settings=self.settings, campaign=campaign,
            profile_ids=[run.profile_id], channels=self.channels, rules=self.rules, now=moment,
            trigger=f"{run.trigger_key}:{'/'.join(map(str, run.path))}",
            journey_id=journey.journey_id, message=filled, channel=channel,
        )  # fmt: skip
        return done.sent

    def _coupon(self, campaign: Campaign, run: _Run, moment: datetime) -> None:
        key = "coupon_code"
        if key in run.context:
            return
        made = coupons.issue(store=self.store, campaign_id=campaign.campaign_id,
                             profile_ids=[run.profile_id], rules=self.rules)  # fmt: skip
        if made:
            run.context[key] = coupons.shown(made[0].code)
            return
        # Issued before (a tick cut off after issuing): the same code.
        found = self.store.scalar(
            "SELECT arg_max(code, issued_at) FROM coupons WHERE campaign_id = ? AND profile_id = ?",
            [campaign.campaign_id, run.profile_id],
        )
        if found:
            run.context[key] = coupons.shown(found)

    def _save(self, run: _Run, moment: datetime) -> None:
        with self.store.transaction() as cur:
            cur.execute(
                "UPDATE journey_runs SET path = ?, status = ?, due_at = ?, wait_started = ?, "
                "context = ?, updated_at = ? WHERE run_key = ?",
                [orjson.dumps(run.path).decode(), run.status, run.due_at, run.wait_started,
                 orjson.dumps(run.context).decode(), moment, run.run_key],
            )  # fmt: skip

    def _end(self, journey: Journey, run: _Run, status: str, moment: datetime) -> None:
        run.status, run.due_at = status, None
        self._save(run, moment)
        timeline.record(self.store, [(run.profile_id, "Journey Exited", {
            "messageId": f"journey-exited:{run.run_key}",
            "properties": {"journey_id": journey.journey_id, "journey": journey.name,
                           "reason": status},
        })], moment, self.rules)  # fmt: skip


def _fill(text: str, context: dict[str, Any]) -> str:
    values: defaultdict[str, str] = defaultdict(str, {k: str(v) for k, v in context.items()})
    try:
        return text.format_map(values)
    except (ValueError, IndexError):  # braces that are not placeholders
        return text


def _list_at(steps: list[Any], path: list[Any]) -> list[Any]:
    """The list of steps the last index of `path` points into."""
    current = steps
    for i in range(0, len(path) - 1, 2):
        step = current[path[i]]
        current = step.then if path[i + 1] == "then" else step.else_
    return current


def step_at(steps: list[Any], path: list[Any]) -> Any:
    current = _list_at(steps, path)
    return current[path[-1]] if path[-1] < len(current) else None


def next_path(steps: list[Any], path: list[Any]) -> list[Any]:
    """The step after the one at `path`: the next in its list, or after the branching step
    whose branch ended (None past the last step: `step_at` answers None)."""
    path = [*path[:-1], path[-1] + 1]
    while len(path) > 1 and path[-1] >= len(_list_at(steps, path)):
        path = [*path[:-3], path[-3] + 1]
    return path


def into(steps: list[Any], path: list[Any], branch: str) -> list[Any]:
    step = step_at(steps, path)
    chosen = step.then if branch == "then" else step.else_
    return [*path, branch, 0] if chosen else next_path(steps, path)

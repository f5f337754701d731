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

import duckdb
import orjson
import pyarrow as pa

from tsunagu.activation import coupons, timeline
from tsunagu.activation.arrivals import EVENTS as _EVENTS
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
    active_journeys,
    later,
    local_clock,
    local_day,
    send_key,
)
from tsunagu.activation.sends import send_campaign
from tsunagu.analytics.facts import ensure_fresh
from tsunagu.analytics.filters import Step
from tsunagu.config import Settings
from tsunagu.identity.rules import IdentityRules
from tsunagu.store import Store, utcnow
from tsunagu.store.db import registered
from tsunagu.store.identifiers import normalize_macros

log = logging.getLogger("tsunagu.journeys")

OVERLAP = timedelta(seconds=2)
"""Each tick reads triggers again from this long before its cursor: an event whose commit was
in flight at the last tick is not missed (one already taken in is the same run's key)."""
MAX_MOVES = 100
"""Steps one run takes in one tick at most (a journey of conditions only cannot loop forever)."""


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
        journeys = active_journeys(store=self.store)
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
            if not fresh and _reads_facts(definition):
                ensure_fresh(store=self.store, rules=self.rules, timezone=self.settings.timezone)
                fresh = True
            try:
                self._advance(journey, definition, campaign, runs, moment, result)
            except Exception:  # the runs stay where they were written; the next tick retries
                log.exception("journey %s", journey.journey_id)
        return result

    # -- entering ---------------------------------------------------------------------------
    def _take_in(
        self, journey: Journey, definition: JourneyCreate, campaign: Campaign, moment: datetime
    ) -> int:
        trigger = definition.trigger
        assert trigger is not None
        entries: list[tuple[str, str, datetime]] = []  # (profile, trigger key, when)
        upper = moment
        cursor, taken_from = self.store.query(
            "SELECT cursor, taken_from FROM journeys WHERE journey_id = ?", [journey.journey_id]
        )[0]
        since = max(cursor - OVERLAP, taken_from) if cursor is not None else None
        if trigger.event is not None and cursor is not None and upper > cursor:
            cur = self.store.cursor()
            try:
                cur.execute(normalize_macros(self.store.country))  # tg_clean for member cards
                rows = cur.execute(
                    f"SELECT profile_id, message_id, ts FROM ({_EVENTS}) AS arrived "
                    "WHERE profile_id IS NOT NULL "
                    f"AND {trigger.event.sql()}"
                    + (f" AND {trigger.near_store.sql()}" if trigger.near_store else "")
                    + " ORDER BY stored_at",
                    [since, upper],
                ).fetchall()
            finally:
                cur.close()
            entries = [(p, f"event:{m}", t) for p, m, t in rows]
        elif trigger.segment_entered is not None and cursor is not None and upper > cursor:
            rows = self.store.query(
                "SELECT c.profile_id, c.changed_at FROM segment_changes c JOIN segments s "
                "USING (segment_id) WHERE (s.segment_id = ? OR s.name = ?) AND c.change = 'entered' "
                "AND c.changed_at > ? AND c.changed_at <= ?",
                [trigger.segment_entered, trigger.segment_entered, since, upper],
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
        table = pa.table({
            "run_key": [f"{jid}:{pid}:{key}" for pid, key, _ in fresh],
            "profile_id": [pid for pid, _, _ in fresh],
            "trigger_key": [key for _, key, _ in fresh],
            "status": ["control" if variants.get(pid) == CONTROL else "active" for pid, _, _ in fresh],
        })  # fmt: skip
        who = timeline.identifiers_of(self.store, [p for p, _, _ in fresh], self.rules)
        with self.store.transaction() as cur, registered(cur, "_entering", table):
            inserted = cur.execute(
                "INSERT INTO journey_runs SELECT run_key, ?, profile_id, trigger_key, ?, '[0]', "
                "status, ?, NULL, '{}', ? FROM _entering ON CONFLICT DO NOTHING "
                "RETURNING run_key, profile_id, trigger_key",
                [jid, moment, moment, moment],
            ).fetchall()
            timeline.write(self.store, cur, [(pid, "Journey Entered", {
                "messageId": f"journey-entered:{run_key}",
                "properties": {"journey_id": jid, "journey": journey.name,
                               "variant": variants.get(pid)},
            }) for run_key, pid, _ in inserted], moment, who)  # fmt: skip
        return len(inserted)

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
        runs: list[_Run],
        moment: datetime,
        result: TickResult,
    ) -> None:
        """Move the runs along together, step by step: the runs at one step take it in one go
        (one query for a goal or an awaited event, one send for all), and every move is written
        before the next step's effect."""
        steps = definition.steps or []
        pending = runs
        for _ in range(MAX_MOVES):
            if not pending:
                return
            if definition.goal is not None:
                reached = self._did(
                    definition.goal, [(r.profile_id, r.entered_at) for r in pending]
                )
                for run in [r for r in pending if r.profile_id in reached]:
                    run.status = "converted"
                    result.converted += 1
                self._end(journey, [r for r in pending if r.status == "converted"], moment)
                pending = [r for r in pending if r.status != "converted"]
            groups: dict[str, list[_Run]] = defaultdict(list)
            for run in pending:
                groups[orjson.dumps(run.path).decode()].append(run)
            moving: list[_Run] = []
            for group in groups.values():
                moving += self._step(journey, definition, campaign, steps, group, moment, result)
            pending = moving

    def _step(
        self,
        journey: Journey,
        definition: JourneyCreate,
        campaign: Campaign,
        steps: list[Any],
        runs: list[_Run],
        moment: datetime,
        result: TickResult,
    ) -> list[_Run]:
        """Take the step the runs are at; the runs that go on to another step at once."""
        step = step_at(steps, runs[0].path)
        if step is None or isinstance(step, Exit):
            for run in runs:
                run.status = "done" if step is None else "exited"
            self._end(journey, runs, moment)
            return []
        result.moved += len(runs)
        go: list[_Run] = runs
        if isinstance(step, Wait):
            for run in runs:
                run.path, run.due_at = next_path(steps, run.path), later(moment, step.wait)
            self._save(runs, moment)
            return []
        if isinstance(step, WaitFor):
            arriving = [r for r in runs if r.status != "waiting"]
            for run in arriving:
                run.status, run.wait_started = "waiting", moment
                run.due_at = later(moment, step.within)
            self._save(arriving, moment)
            waiting = [r for r in runs if r not in arriving]
            came = self._did(step.wait_for, [(r.profile_id, r.wait_started or r.entered_at)
                                             for r in waiting])  # fmt: skip
            go = []
            for run in waiting:
                if run.profile_id in came:
                    run.path = into(steps, run.path, "then")
                elif run.due_at is not None and moment >= run.due_at:
                    run.path = into(steps, run.path, "else")
                else:
                    continue
                run.status, run.wait_started = "active", None
                go.append(run)
        elif isinstance(step, If):
            holding = self._holds(step, runs, moment)
            for run in runs:
                run.path = into(steps, run.path, "then" if run.run_key in holding else "else")
        elif isinstance(step, Send | DirectMail):
            result.sent += self._send(journey, campaign, definition, step, runs, moment)
            for run in runs:
                run.path = next_path(steps, run.path)
        elif isinstance(step, IssueCoupon):
            self._coupon(campaign, runs)
            for run in runs:
                run.path = next_path(steps, run.path)
        for run in go:
            run.due_at = moment
        self._save(go, moment)
        return go

    def _did(self, spec: Step, who: list[tuple[str, datetime]]) -> set[str]:
        """The profiles of `who` with an event of `spec` since their moment."""
        if not who:
            return set()
        cur = self.store.cursor()
        try:
            cur.register("_since", pa.table({
                "profile_id": pa.array([p for p, _ in who], pa.string()),
                "since": pa.array([t for _, t in who], pa.timestamp("us")),
            }))  # fmt: skip
            rows = cur.execute(
                "SELECT DISTINCT s.profile_id FROM _since s JOIN analytics_profiles p "
                "ON p.profile_id = s.profile_id JOIN analytics_events e ON e.pid = p.pid "
                f"AND e.ts >= s.since WHERE {spec.sql()}"
            ).fetchall()
            cur.unregister("_since")
        finally:
            cur.close()
        return {r[0] for r in rows}

    def _holds(self, step: If, runs: list[_Run], moment: datetime) -> set[str]:
        """The run keys of those for whom the condition holds now."""
        condition = step.if_
        if condition.rule is not None:
            from tsunagu.activation.segments import members_sql

            sql = members_sql(condition.rule, store=self.store, as_of=moment)
            ids = [r.profile_id for r in runs]
            rows = self.store.query(
                f"SELECT DISTINCT m.profile_id FROM ({sql}) m "
                "WHERE m.profile_id IN (SELECT unnest(?::VARCHAR[]))",
                [ids],
            )
            meet = {r[0] for r in rows}
            return {r.run_key for r in runs if r.profile_id in meet}
        from tsunagu.catalog.favourites import favourites_availability
        from tsunagu.exceptions import InvalidInput

        assert condition.favourite_in_stock is not None
        holding: set[str] = set()
        for run in runs:
            try:
                found = favourites_availability(
                    store=self.store, profile_id=run.profile_id,
                    radius_km=condition.favourite_in_stock.radius_km, stores_per_item=1,
                )  # fmt: skip
            except InvalidInput:  # where the customer is is not known
                continue
            for item in found.items:
                if item.stores:
                    run.context.update(product=item.name or item.sku, sku=item.sku,
                                       store=item.stores[0].store.name,
                                       store_id=item.stores[0].store.store_id)  # fmt: skip
                    holding.add(run.run_key)
                    break
        return holding

    def _send(
        self,
        journey: Journey,
        campaign: Campaign,
        definition: JourneyCreate,
        step: Send | DirectMail,
        runs: list[_Run],
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
        base = message or {"text": journey.name}
        # One send per message text (the same for all unless it names the run's product...),
        # and per customer once in a batch (a customer may be in several runs).
        batches: dict[tuple[str, int], dict[str, str]] = defaultdict(dict)
        texts: dict[str, dict[str, Any]] = {}
        for run in runs:
            filled = {
                k: _fill(v, run.context) if isinstance(v, str) else v for k, v in base.items()
            }
            text = orjson.dumps(filled).decode()
            texts[text] = filled
            n = 0
            while run.profile_id in batches[(text, n)]:
                n += 1
            batches[(text, n)][run.profile_id] = send_key(
                journey.journey_id, run.trigger_key, run.path, run.profile_id
            )
        sent = 0
        for (text, _), keys in batches.items():
            done = send_campaign(
                store=self.store, settings=self.settings, campaign=campaign,
                profile_ids=list(keys), channels=self.channels, rules=self.rules, now=moment,
                journey_id=journey.journey_id, message=texts[text], channel=channel,
                send_keys=keys,
            )  # fmt: skip
            sent += done.sent
        return sent

    def _coupon(self, campaign: Campaign, runs: list[_Run]) -> None:
        key = "coupon_code"
        todo = [r for r in runs if key not in r.context]
        if not todo:
            return
        made = coupons.issue(store=self.store, campaign_id=campaign.campaign_id,
                             profile_ids=[r.profile_id for r in todo], rules=self.rules,
                             global_control_share=self.settings.global_control_share)  # fmt: skip
        codes = {c.profile_id: c.code for c in made}
        # Issued before (a tick cut off after issuing): the same code.
        missing = [r.profile_id for r in todo if r.profile_id not in codes]
        if missing:
            codes.update(self.store.query(
                "SELECT profile_id, arg_max(code, issued_at) FROM coupons WHERE campaign_id = ? "
                "AND profile_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY profile_id",
                [campaign.campaign_id, missing],
            ))  # fmt: skip
        for run in todo:
            if run.profile_id in codes:
                run.context[key] = coupons.shown(codes[run.profile_id])

    def _save(
        self, runs: list[_Run], moment: datetime, cur: duckdb.DuckDBPyConnection | None = None
    ) -> None:
        """Keep where `runs` are, in one statement (of `cur`'s transaction, if given)."""
        if not runs:
            return
        if cur is None:
            with self.store.transaction() as tx:
                self._save(runs, moment, tx)
            return
        table = pa.table({
            "run_key": [r.run_key for r in runs],
            "path": [orjson.dumps(r.path).decode() for r in runs],
            "status": [r.status for r in runs],
            "due_at": pa.array([r.due_at for r in runs], pa.timestamp("us")),
            "wait_started": pa.array([r.wait_started for r in runs], pa.timestamp("us")),
            "context": [orjson.dumps(r.context).decode() for r in runs],
        })  # fmt: skip
        with registered(cur, "_moves", table):
            cur.execute(
                "UPDATE journey_runs SET path = m.path::JSON, status = m.status, due_at = m.due_at, "
                "wait_started = m.wait_started, context = m.context::JSON, updated_at = ? "
                "FROM _moves m WHERE journey_runs.run_key = m.run_key",
                [moment],
            )

    def _end(self, journey: Journey, runs: list[_Run], moment: datetime) -> None:
        if not runs:
            return
        for run in runs:
            run.due_at = None
        who = timeline.identifiers_of(self.store, [run.profile_id for run in runs], self.rules)
        with self.store.transaction() as cur:
            self._save(runs, moment, cur)
            timeline.write(self.store, cur, [(run.profile_id, "Journey Exited", {
                "messageId": f"journey-exited:{run.run_key}",
                "properties": {"journey_id": journey.journey_id, "journey": journey.name,
                               "reason": run.status},
            }) for run in runs], moment, who)  # fmt: skip


def _reads_facts(definition: JourneyCreate) -> bool:
    """Whether moving runs reads the analytics table (a goal, a wait for an event, a
    condition): otherwise a tick need not bring it up to date."""
    if definition.goal is not None:
        return True

    def any_reading(steps: list[Any]) -> bool:
        return any(
            isinstance(s, WaitFor | If) or any_reading(getattr(s, "then", []))
            or any_reading(getattr(s, "else_", []))
            for s in steps
        )  # fmt: skip

    return any_reading(definition.steps or [])


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

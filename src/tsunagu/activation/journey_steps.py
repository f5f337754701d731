"""A journey's steps with their customers, read from the runs' state (`journey_runs`) and the
sends the steps made (`sends`: a journey's send key, `journeys.send_key`, names its run and
step).

For each step, in the order the definition lists them (a branch's steps after the step that
branches):
- reached: the runs that got to it (at it now, past it, or ended at it). A run that finished
  is known to have passed a branch only by a send it made there;
- due: the runs at it now, waiting for their time (after a wait) to take it;
- waiting: the runs waiting at it for an event (`wait_for`);
- sent / not sent: its sends delivered, and those held back (no consent, a cap, quiet hours,
  a failure);
- ended: the runs that left the journey at it (they reached the goal before it, or it is an
  exit).

The control group's runs never move and are left out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from tsunagu.activation.journeys import get_journey
from tsunagu.store import Store

Path = tuple[int | str, ...]
KINDS = ("wait", "send", "coupon", "direct_mail", "if", "wait_for", "exit")

_SENDS = """
SELECT r.run_key, s.status,
       substr(s.send_key, length(r.journey_id) + length(r.trigger_key) + 3,
              length(s.send_key) - length(r.journey_id) - length(r.trigger_key)
              - length(r.profile_id) - 3) AS place
FROM journey_runs r JOIN sends s ON s.journey_id = r.journey_id AND s.profile_id = r.profile_id
 AND starts_with(s.send_key, r.journey_id || ':' || r.trigger_key || ':')
 AND ends_with(s.send_key, ':' || r.profile_id)
WHERE r.journey_id = ? AND r.status <> 'control'
"""
_STEP_PATH = r"^[0-9]+(/(then|else)/[0-9]+)*$"
_AT_STEP = {"active": "due", "waiting": "waiting", "converted": "ended", "exited": "ended"}
"""A run's status as what it counts for at the step it is at."""


@dataclass(frozen=True, slots=True)
class StepCount:
    path: Path
    """Where the step is: (2,) the third step; (2, "then", 0) the first of its then-branch."""
    kind: str
    """One of KINDS."""
    step: dict[str, Any]
    """The step as defined (without its branches' steps)."""
    reached: int = 0
    due: int = 0
    waiting: int = 0
    sent: int = 0
    not_sent: int = 0
    ended: int = 0

    @property
    def depth(self) -> int:
        return len(self.path) // 2

    @property
    def branch(self) -> str | None:
        """then / else for the first step of a branch, None otherwise."""
        return str(self.path[-2]) if len(self.path) > 1 and self.path[-1] == 0 else None


def _walk(steps: list[dict[str, Any]], prefix: Path = ()) -> Iterator[tuple[Path, dict[str, Any]]]:
    for i, step in enumerate(steps):
        path = (*prefix, i)
        yield path, step
        for branch in ("then", "else"):
            yield from _walk(step.get(branch) or [], (*path, branch))


def _kind(step: dict[str, Any]) -> str:
    return next((k for k in KINDS if k in step), "exit")


def _reaches(position: Path, step: Path) -> bool:
    """Whether a run at `position` got to `step` on its way (is at it, or past it on the same
    branches)."""
    if len(position) < len(step):
        return False
    if position[: len(step) - 1] != step[:-1]:
        return False
    here, there = position[len(step) - 1], step[-1]
    assert isinstance(here, int) and isinstance(there, int)
    return here >= there


def _path(text: str) -> Path:
    return tuple(int(p) if p.isdigit() else p for p in text.split("/"))


def step_counts(*, store: Store, journey_id: str) -> list[StepCount]:
    """The journey's steps with their customers (see the module's docstring)."""
    journey = get_journey(store=store, journey_id=journey_id)
    jid = journey.journey_id
    sends = store.query(
        f"SELECT place, status, count(*) FROM ({_SENDS}) WHERE regexp_matches(place, ?) "
        "GROUP BY ALL",
        [jid, _STEP_PATH],
    )
    runs = store.query(
        "SELECT r.path::VARCHAR, r.status, s.places, count(*) FROM journey_runs r LEFT JOIN "
        f"(SELECT run_key, list(DISTINCT place ORDER BY place) AS places FROM ({_SENDS}) "
        "WHERE regexp_matches(place, ?) GROUP BY run_key) s USING (run_key) "
        "WHERE r.journey_id = ? AND r.status <> 'control' GROUP BY ALL",
        [jid, _STEP_PATH, jid],
    )
    counts: dict[Path, dict[str, int]] = {}
    for at, status, n in sends:
        entry = counts.setdefault(_path(at), {})
        key = "sent" if status == "sent" else "not_sent"
        entry[key] = entry.get(key, 0) + int(n)
    walked = list(_walk(journey.definition.get("steps") or []))
    for raw, status, places, n in runs:
        position: Path = tuple(orjson.loads(raw))
        known = [position, *(_path(p) for p in places or [])]
        at = counts.setdefault(position, {})
        if status in _AT_STEP:
            at[_AT_STEP[status]] = at.get(_AT_STEP[status], 0) + int(n)
        for path, _ in walked:
            if any(_reaches(k, path) for k in known):
                entry = counts.setdefault(path, {})
                entry["reached"] = entry.get("reached", 0) + int(n)
    return [
        StepCount(
            path=path,
            kind=_kind(step),
            step={k: v for k, v in step.items() if k not in ("then", "else")},
            **counts.get(path, {}),
        )
        for path, step in walked
    ]

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tests.analytics import reference
from tests.conftest import serve_app
from tsunagu.analytics.engine import Engine
from tsunagu.analytics.fans import FanRules, compute_fan_levels, fan_report, load_fan_rules
from tsunagu.analytics.filters import parse
from tsunagu.analytics.funnels import FunnelQuery, run_funnel
from tsunagu.analytics.kpis import SENT_BY_RETAILER
from tsunagu.api import create_app
from tsunagu.cli import app
from tsunagu.config import Settings
from tsunagu.exceptions import InvalidInput
from tsunagu.keys import create_key
from tsunagu.store import Store


def points(rows: list[list[float]], value: float, *, at_most: bool = False) -> int:
    for threshold, p in rows:
        if (value <= threshold) if at_most else (value >= threshold):
            return int(p)
    return 0


def by_hand(
    hist: dict[int, list[reference.Ev]], rules: FanRules, as_of: date, *, seen: bool = False
) -> dict[int, tuple[int, int]]:
    """pid -> (score, level), read from the definitions in analytics/fans.py; with `seen`,
    only the customers with an event by `as_of`."""
    first = as_of - timedelta(days=rules.window_days - 1)
    out = {}
    for pid, evs in hist.items():
        if seen and not any(e.day <= as_of for e in evs):
            continue
        window = [e for e in evs if first <= e.day <= as_of]
        orders = [e for e in window if e.event == "Order Completed"]
        score = 0
        if orders:
            score += points(rules.recency, (as_of - max(o.day for o in orders)).days, at_most=True)
        score += points(rules.frequency, len(orders))
        score += points(rules.monetary, sum(o.revenue or 0 for o in orders))
        if any(o.channel in ("web", "app") for o in orders) and any(
            o.channel == "store" for o in orders
        ):
            score += rules.omnichannel_points
        engaged = {
            e.day
            for e in window
            if e.channel in ("app", "line") and e.event not in SENT_BY_RETAILER
        }
        score += points(rules.engagement, len(engaged))
        level = max(
            (lv for lv in rules.levels if score >= lv.min_score), key=lambda lv: lv.min_score
        )
        out[pid] = (score, level.level)
    return out


@pytest.fixture(scope="module")
def hist(sample: tuple[Path, Store]) -> dict[int, list[reference.Ev]]:
    return reference.histories(sample[1])


def stored(store: Store) -> dict[int, tuple[int, int]]:
    return {
        pid: (score, level)
        for pid, score, level in store.query(
            "SELECT ap.pid, f.score, f.level FROM fan_levels f JOIN analytics_profiles ap USING (profile_id)"
        )
    }


def test_every_profile_gets_the_level_its_points_give(sample_copy: Store, hist: Any) -> None:
    rules = FanRules()
    done = compute_fan_levels(store=sample_copy, rules=rules)
    want = by_hand(hist, rules, done.as_of)
    assert stored(sample_copy) == want
    assert len(want) == sample_copy.scalar("SELECT count(*) FROM analytics_profiles")
    profiles = sample_copy.scalar("SELECT count(DISTINCT profile_id) FROM identity_nodes")
    assert done.profiles == profiles > len(want)  # members who never came: level 1, score 0
    idle = sample_copy.query(
        "SELECT DISTINCT level, score FROM fan_levels WHERE profile_id NOT IN "
        "(SELECT profile_id FROM analytics_profiles)"
    )
    assert idle == [(1, 0)]
    # The sample has customers at several levels, and the top ones spend the most each.
    report = fan_report(engine=Engine(sample_copy), rules=rules)
    assert sum(lv.customers for lv in report.levels) == len(want)
    busy = [lv for lv in report.levels if lv.customers]
    assert len(busy) >= 3
    per_customer = [lv.revenue / lv.customers for lv in busy]
    assert per_customer == sorted(per_customer)


def test_rules_change_the_levels_and_bad_rules_name_the_field(
    sample_copy: Store, hist: Any, tmp_path: Path
) -> None:
    strict = {
        "recency": [[7, 5]],
        "frequency": [[20, 5], [2, 2]],
        "monetary": [],
        "omnichannel_points": 6,
        "engagement": [[1, 1]],
        "levels": [
            {"level": 1, "name": "一般", "name_en": "Member", "min_score": 0},
            {"level": 2, "name": "常連", "name_en": "Regular", "min_score": 6},
        ],
        "window_days": 90,
    }
    (tmp_path / "fan-rules.json").write_text(
        json.dumps(strict, ensure_ascii=False), encoding="utf-8"
    )
    rules = load_fan_rules(tmp_path)
    done = compute_fan_levels(store=sample_copy, rules=rules, as_of=date(2026, 9, 30))
    assert stored(sample_copy) == by_hand(hist, rules, date(2026, 9, 30))
    assert {level for _, level in stored(sample_copy).values()} == {1, 2}
    assert done.as_of == date(2026, 9, 30)
    (tmp_path / "fan-rules.json").write_text(
        json.dumps({"levels": [{"level": 1, "name": "a", "name_en": "a", "min_score": 3}]})
    )
    with pytest.raises(InvalidInput) as err:
        load_fan_rules(tmp_path)
    assert err.value.field == "levels"
    (tmp_path / "fan-rules.json").write_text(json.dumps({"frequency": [[1]]}))
    with pytest.raises(InvalidInput) as err:
        load_fan_rules(tmp_path)
    assert err.value.field == "frequency"


def test_movement_between_two_days_adds_up(sample: tuple[Path, Store], hist: Any) -> None:
    _, store = sample
    rules = FanRules()
    as_of, before = date(2026, 10, 15), date(2026, 8, 15)
    report = fan_report(engine=Engine(store), rules=rules, as_of=as_of, compare_to=before)
    now, then = by_hand(hist, rules, as_of, seen=True), by_hand(hist, rules, before, seen=True)
    moves: dict[tuple[int, int], int] = {}
    for pid, (_, level) in now.items():
        key = (then.get(pid, (0, 0))[1], level)
        moves[key] = moves.get(key, 0) + 1
    assert {(m.from_level, m.to_level): m.customers for m in report.movement} == moves
    assert report.moved_up + report.moved_down + report.stayed + sum(
        m.customers for m in report.movement if m.from_level == 0
    ) == len(now)
    assert report.moved_up > 0 and report.moved_down > 0


def test_fans_over_http_the_cli_and_the_profile(sample_copy: Store, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    _, read = create_key(store=sample_copy, name="bi", scope="read")
    _, admin = create_key(store=sample_copy, name="crm", scope="admin")
    with serve_app(create_app(settings, store=sample_copy)) as url:
        compute = url + "/v1/analytics/fans/compute"
        assert httpx.post(compute, headers={"Authorization": f"Bearer {read}"}).status_code == 403
        done = httpx.post(compute, headers={"Authorization": f"Bearer {admin}"})
        assert done.status_code == 200, done.text
        auth = {"Authorization": f"Bearer {read}"}
        report = httpx.get(
            url + "/v1/analytics/fans", params={"compare_to": "2026-09-01"}, headers=auth
        )
        assert report.status_code == 200 and report.json()["movement"]
        bad = httpx.get(url + "/v1/analytics/fans", params={"as_of": "yesterday"}, headers=auth)
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "as_of"
        profile_id, level = sample_copy.query(
            "SELECT profile_id, level FROM fan_levels ORDER BY score DESC LIMIT 1"
        )[0]
        profile = httpx.get(f"{url}/v1/profiles/{profile_id}", headers=auth).json()
        assert profile["fan_level"]["level"] == level
        assert set(profile["fan_level"]["points"]) == {
            "recency",
            "frequency",
            "monetary",
            "omnichannel",
            "engagement",
        }
    sample_copy.close()
    copy = tmp_path / "tsunagu.duckdb"
    Path(sample_copy.path).rename(copy)
    out = CliRunner().invoke(app, ["--data-dir", str(tmp_path), "fans", "report", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["customers"] == sum(
        lv["customers"] for lv in report.json()["levels"]
    )


def test_funnels_break_down_by_fan_level(sample_copy: Store) -> None:

    compute_fan_levels(store=sample_copy, rules=FanRules())
    body = {"steps": [{"event": "Product Viewed"}, {"event": "Order Completed"}], "window": "30d"}
    for portable in (False, True):
        got = run_funnel(
            engine=Engine(sample_copy),
            query=parse(FunnelQuery, {**body, "breakdown": "profile.fan_level"}),
            timezone="Asia/Tokyo",
            portable=portable,
        )
        # A customer has one level: the groups split the customers.
        assert {g.value for g in got.breakdown} <= {"1", "2", "3", "4", "5"}
        for i in range(2):
            assert sum(g.steps[i].customers for g in got.breakdown) == got.steps[i].customers
        rates = {g.value: g.steps[1].conversion_from_first for g in got.breakdown}
        assert rates["3"] > rates["1"]  # fans buy after looking more often

"""analytics_events: every action once, with its customer, in order; kept fresh."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from tests.analytics.conftest import TZ
from tsunagu.analytics.facts import ensure_fresh, rebuild
from tsunagu.identity.erasure import erase_profile
from tsunagu.identity.graph import build_graph
from tsunagu.identity.rules import IdentityRules
from tsunagu.store import Store
from tsunagu.store.identifiers import clean


def test_every_action_once_with_the_profile_of_its_highest_priority_identifier(
    sample: tuple[Path, Store],
) -> None:
    _, store = sample
    actions = store.scalar("SELECT count(*) FROM events WHERE type IN ('track', 'page', 'screen')")
    assert store.scalar("SELECT count(*) FROM analytics_events") == actions
    nodes = {
        (t, v): p for t, v, p in store.query("SELECT type, value, profile_id FROM identity_nodes")
    }
    pid_of = dict(store.query("SELECT profile_id, pid FROM analytics_profiles"))
    rules = IdentityRules()
    columns = ", ".join(rules.priority).replace("user_id", "user_id")
    expected: dict[int, int] = defaultdict(int)
    for row in store.query(
        f"SELECT {columns} FROM events WHERE type IN ('track', 'page', 'screen')"
    ):
        kind, value = next(
            (k, clean(k, v)) for k, v in zip(rules.priority, row, strict=True) if clean(k, v)
        )
        expected[pid_of[nodes[(kind, value)]]] += 1
    got = dict(store.query("SELECT pid, count(*) FROM analytics_events GROUP BY pid"))
    assert got == dict(expected)


def test_positions_follow_time_then_arrival(sample: tuple[Path, Store]) -> None:
    _, store = sample
    rows = store.query("SELECT pid, r, ts, seq FROM analytics_events ORDER BY pid, r")
    last: dict[int, tuple] = {}  # type: ignore[type-arg]
    for pid, r, ts, seq in rows:
        if pid in last:
            assert r == last[pid][0] + 1 and (ts, seq) > last[pid][1:]
        else:
            assert r == 1
        last[pid] = (r, ts, seq)
    assert store.scalar("SELECT count(*) FROM analytics_events WHERE day IS NULL") == 0


def test_member_purchases_in_store_and_online_are_one_customer(sample: tuple[Path, Store]) -> None:
    _, store = sample
    both = store.scalar(
        "SELECT count(*) FROM (SELECT pid FROM analytics_events WHERE event = 'Order Completed' "
        "GROUP BY pid HAVING count(DISTINCT channel = 'store') = 2)"
    )
    assert both > 0


def test_graph_changes_rebuild_new_events_append_erasure_removes(sample_copy: Store) -> None:
    store = sample_copy
    rules = IdentityRules()
    assert ensure_fresh(store=store, rules=rules, timezone=TZ).kind == "fresh"
    build_graph(store=store, rules=rules)
    assert ensure_fresh(store=store, rules=rules, timezone=TZ).kind == "rebuilt"
    profile, pid, n = store.query(
        "SELECT ap.profile_id, e.pid, count(*) FROM analytics_events e "
        "JOIN analytics_profiles ap USING (pid) GROUP BY ALL ORDER BY 3 DESC LIMIT 1"
    )[0]
    erase_profile(store=store, rules=rules, profile_id=profile)
    assert ensure_fresh(store=store, rules=rules, timezone=TZ).kind == "rebuilt"
    assert (
        store.scalar(
            "SELECT count(*) FROM analytics_events e JOIN analytics_profiles ap USING (pid) "
            "WHERE ap.profile_id = ?",
            [profile],
        )
        == 0
    )
    before = store.query("SELECT * FROM analytics_events ORDER BY pid, r")
    with store.transaction() as cur:
        rebuild(cur, rules, timezone=TZ)
    assert store.query("SELECT * FROM analytics_events ORDER BY pid, r") == before
    assert n > 0 and pid > 0


def test_merges_of_an_identity_update_are_followed_as_a_rebuild_would(sample_copy: Store) -> None:
    from datetime import UTC, datetime

    from tsunagu.events.normalize import normalize
    from tsunagu.identity.graph import update_graph

    store = sample_copy
    rules = IdentityRules()
    assert ensure_fresh(store=store, rules=rules, timezone=TZ).kind == "fresh"
    # Browsers nobody has logged in on yet, and members: an identify call joins each pair.
    anonymous = [
        r[0]
        for r in store.query(
            "SELECT n.value FROM identity_nodes n WHERE n.type = 'anonymous_id' AND NOT EXISTS "
            "(SELECT 1 FROM identity_nodes u WHERE u.profile_id = n.profile_id AND u.type = 'user_id') "
            "AND n.profile_id IN (SELECT profile_id FROM analytics_profiles) ORDER BY 1 LIMIT 40"
        )
    ]
    members = [r[0] for r in store.query("SELECT member_id FROM members ORDER BY 1 LIMIT 20")]
    now = datetime(2026, 11, 1, tzinfo=UTC)
    store.insert_events(
        [
            normalize(
                {
                    "type": "identify",
                    "userId": members[i // 2],
                    "anonymousId": a,
                    "timestamp": now.isoformat(),
                },
                received_at=now,
                source="t",
            )
            for i, a in enumerate(anonymous)
        ]
        + [
            normalize(
                {
                    "type": "track",
                    "event": "Product Viewed",
                    "userId": members[0],
                    "timestamp": now.isoformat(),
                    "properties": {"sku": "X"},
                },
                received_at=now,
                source="t",
            )
        ]
    )
    customers = store.scalar("SELECT count(*) FROM analytics_profiles")
    assert update_graph(store=store, rules=rules).merged_profiles > 0
    refresh = ensure_fresh(store=store, rules=rules, timezone=TZ)
    assert refresh.kind == "merged" and refresh.events == 1
    assert store.scalar("SELECT count(*) FROM analytics_profiles") < customers

    def by_event() -> dict[int, tuple[str, int]]:
        return dict(
            (seq, (profile, r))
            for seq, profile, r in store.query(
                "SELECT e.seq, ap.profile_id, e.r FROM analytics_events e JOIN analytics_profiles ap USING (pid)"
            )
        )

    followed = by_event()
    with store.transaction() as cur:
        rebuild(cur, rules, timezone=TZ)
    rebuilt = by_event()
    assert len(followed) == len(rebuilt)
    # Every event that was there before has the customer and place a rebuild gives it (the one
    # new event has another arrival number in each: it is compared by what it holds).
    before = {seq: where for seq, where in followed.items() if seq in rebuilt}
    assert len(before) == len(followed) - 1
    assert before == {seq: rebuilt[seq] for seq in before}
    assert sorted(followed.values()) == sorted(rebuilt.values())
    merged = {p for p, _ in followed.values()}
    assert all(
        store.scalar("SELECT count(*) FROM identity_nodes WHERE profile_id = ?", [p]) > 0
        for p in list(merged)[:50]
    )


def test_a_table_built_before_any_event_takes_the_first_ones(store: Store) -> None:
    from tsunagu.events.normalize import normalize
    from tsunagu.store import utcnow

    ensure_fresh(store=store, rules=IdentityRules(), timezone="Asia/Tokyo")
    now = utcnow()
    store.insert_events([normalize({"type": "track", "event": "Product Added", "userId": "M1",
                                    "timestamp": now.isoformat() + "Z"},
                                   received_at=now, source="t")])  # fmt: skip
    ensure_fresh(store=store, rules=IdentityRules(), timezone="Asia/Tokyo")
    assert store.scalar("SELECT count(*) FROM analytics_events WHERE event = 'Product Added'") == 1

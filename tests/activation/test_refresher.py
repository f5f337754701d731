"""Segments kept current in the server: as events arrive for those that read events, on a
schedule for all."""

from __future__ import annotations

from pathlib import Path

from tsunagu.activation.membership import create_segment, get_segment
from tsunagu.activation.refresher import SegmentRefresher, reads_events
from tsunagu.activation.segments import SegmentDefinition
from tsunagu.analytics.facts import ensure_fresh
from tsunagu.analytics.filters import parse
from tsunagu.events.normalize import normalize
from tsunagu.identity.graph import build_graph
from tsunagu.identity.rules import IdentityRules
from tsunagu.store import Store, utcnow


def view(store: Store, user: str) -> None:
    now = utcnow()
    message = {
        "type": "track",
        "event": "Store Visited",
        "userId": user,
        "timestamp": now.isoformat(),
    }
    store.insert_events([normalize(message, received_at=now, source="shop")])


def test_event_segments_follow_new_events_and_the_rest_the_schedule(
    store: Store, tmp_path: Path
) -> None:
    view(store, "M001")
    build_graph(store=store, rules=IdentityRules())
    ensure_fresh(store=store, rules=IdentityRules(), timezone="Asia/Tokyo")
    visitors = parse(
        SegmentDefinition, {"name": "来店", "rule": {"event": "Store Visited", "within": "1d"}}
    )
    women = parse(SegmentDefinition, {"name": "女性", "rule": {"trait": "gender", "eq": "female"}})
    refresher = SegmentRefresher(
        store, data_dir=tmp_path, timezone="Asia/Tokyo", interval=1, every=3600
    )
    seg, _ = create_segment(store=store, definition=visitors)
    create_segment(store=store, definition=women)
    assert get_segment(store=store, segment_id=seg.segment_id).members == 1
    assert refresher.tick() == []  # nothing new
    whole_at = get_segment(store=store, segment_id=seg.segment_id).refreshed_at
    view(store, "M002")  # a customer the graph has not seen yet still counts
    done = refresher.tick()
    assert [(d.segment_id, d.members, d.entered) for d in done] == [(seg.segment_id, 2, 1)]
    # Only the customers of the new events were looked at: no whole refresh happened.
    assert get_segment(store=store, segment_id=seg.segment_id).refreshed_at == whole_at
    assert store.scalar(
        "SELECT events_to FROM segments WHERE segment_id = ?", [seg.segment_id]
    ) == store.scalar("SELECT max(stored_at) FROM events WHERE source <> 'tsunagu'")
    view(store, "M001")  # already in: an incremental pass that changes nothing
    again = refresher.tick()
    assert [(d.members, d.entered, d.exited) for d in again] == [(2, 0, 0)]
    assert refresher.tick() == []  # its own "Segment Entered" events do not make it due
    hourly = SegmentRefresher(
        store, data_dir=tmp_path, timezone="Asia/Tokyo", interval=1, every=0.001
    )
    assert len(hourly.tick()) == 2


def test_which_rules_read_events() -> None:
    assert reads_events({"all": [{"trait": "x", "eq": 1}, {"not": {"event": "A"}}]})
    assert reads_events({"near_store": "S1", "km": 2})  # either: the last location too
    assert not reads_events({"near_store": "S1", "km": 2, "by": "home_store"})
    assert not reads_events({"any": [{"consent": "line"}, {"trait": "fan_level", "gte": 3}]})

"""Sending a campaign on the sample retailer through LINE's API on loopback: consent, control
groups, caps, quiet hours, erasure, once per key, and what a crash left half done."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.activation.servers import Recorder, line_api
from tsunagu.activation.campaigns import CampaignCreate, create_campaign
from tsunagu.activation.channels import Channel
from tsunagu.activation.channels.direct_mail import DirectMail
from tsunagu.activation.channels.line import LineChannel
from tsunagu.activation.protections import record_consent
from tsunagu.activation.sends import send_campaign, send_due
from tsunagu.analytics.filters import parse
from tsunagu.config import Settings
from tsunagu.exceptions import InvalidInput, NotConfigured
from tsunagu.identity.erasure import erase_profile
from tsunagu.identity.rules import IdentityRules
from tsunagu.store import Store

# 12:00 in Tokyo, a weekday: no quiet hours.
NOON = datetime(2026, 11, 2, 3, 0)
MESSAGE = {"text": "秋の新作が入荷しました", "url": "https://shop.example.jp/new"}


@pytest.fixture
def line(
    sample_copy: Store, tmp_path: Path
) -> Iterator[tuple[Store, Settings, dict[str, Channel], Recorder]]:
    settings = Settings(data_dir=tmp_path / "data", cap_channel_day=0, cap_channel_week=0,
                        cap_all_day=0, cap_all_week=0)  # fmt: skip
    with line_api() as api:
        channels: dict[str, Channel] = {
            "line": LineChannel(access_token="line-token", api_base=api.url)
        }
        yield sample_copy, settings, channels, api


def _people(store: Store) -> dict[str, list[str]]:
    """Profiles with a LINE id who opted in to LINE, who did not, and without a LINE id."""
    rows = store.query(
        "SELECT p.profile_id, coalesce(json_extract(p.traits, '$.line_opt_in')::BOOLEAN, false), "
        "EXISTS (SELECT 1 FROM identity_nodes n WHERE n.profile_id = p.profile_id "
        "AND n.type = 'line_user_id') FROM profile_traits p ORDER BY p.profile_id"
    )
    return {
        "reachable": [p for p, opted, has in rows if opted and has],
        "no_consent": [p for p, opted, has in rows if not opted and has],
        "no_line": [p for p, opted, has in rows if opted and not has],
    }


def _campaign(store: Store, name: str = "秋の新作", control: float = 0.2, **more: Any) -> Any:
    body = {"name": name, "channel": "line", "control_share": control, "message": MESSAGE, **more}
    return create_campaign(store=store, body=parse(CampaignCreate, body))


def test_a_send_reaches_who_may_be_reached_once(line: Any) -> None:
    store, settings, channels, api = line
    # Three who opted in but whose LINE id tsunagu does not know.
    with store.transaction() as cur:
        cur.execute(
            "DELETE FROM identity_nodes WHERE type = 'line_user_id' AND profile_id IN "
            "(SELECT unnest(?::VARCHAR[]))",
            [_people(store)["reachable"][-3:]],
        )
    people = _people(store)
    assert len(people["reachable"]) > 50 and people["no_consent"] and len(people["no_line"]) == 3
    campaign = _campaign(store)
    everyone = people["reachable"][:60] + people["no_consent"][:10] + people["no_line"][:5]
    done = send_campaign(store=store, settings=settings, campaign=campaign, profile_ids=everyone,
                         channels=channels, rules=IdentityRules(), now=NOON)  # fmt: skip
    variants = dict(store.query(
        "SELECT profile_id, variant FROM campaign_assignments WHERE campaign_id = ?",
        [campaign.campaign_id],
    ))  # fmt: skip
    assert len(variants) == len(everyone)  # every one of them is in the report
    treated = [p for p in everyone if variants[p] != "control"]
    reachable = [p for p in people["reachable"][:60] if variants[p] != "control"]
    assert done.control == len(everyone) - len(treated)
    assert done.sent == len(reachable) == len(api.received)
    assert done.suppressed == len(treated) - len(reachable)
    assert done.reasons["no consent for line"] == sum(
        1 for p in people["no_consent"][:10] if variants[p] != "control"
    )
    assert done.reasons.get("no line_user_id", 0) == sum(
        1 for p in people["no_line"][:5] if variants[p] != "control"
    )
    # LINE got the member's own LINE id, and a link signed for them.
    line_ids = dict(store.query(
        "SELECT profile_id, value FROM identity_nodes WHERE type = 'line_user_id'"
    ))  # fmt: skip
    assert {r["to"] for r in api.received} == {line_ids[p] for p in reachable}
    assert all("?tg=" in r["messages"][0]["text"] for r in api.received)
    events = dict(store.query(
        "SELECT event, count(*) FROM events WHERE source = 'tsunagu' "
        "AND event LIKE 'Message %' GROUP BY event"
    ))  # fmt: skip
    assert events == {"Message Sent": done.sent, "Message Suppressed": done.suppressed}
    # Again: nothing is sent twice.
    again = send_campaign(store=store, settings=settings, campaign=campaign, profile_ids=everyone,
                          channels=channels, rules=IdentityRules(), now=NOON)  # fmt: skip
    assert (again.sent, again.already) == (0, len(everyone))
    assert len(api.received) == done.sent


def test_quiet_hours_defer_until_morning(line: Any) -> None:
    store, settings, channels, api = line
    settings = settings.model_copy(update={"quiet_hours": "21:00-09:00"})
    people = _people(store)["reachable"][:20]
    campaign = _campaign(store, control=0.0)
    night = datetime(2026, 11, 2, 13, 30)  # 22:30 in Tokyo
    done = send_campaign(store=store, settings=settings, campaign=campaign, profile_ids=people,
                         channels=channels, rules=IdentityRules(), now=night)  # fmt: skip
    assert (done.deferred, done.sent) == (20, 0) and api.received == []
    deferred = store.query(
        "SELECT count(*), min(json_extract_string(raw, '$.properties.due_at')) FROM events "
        "WHERE event = 'Message Deferred'"
    )[0]
    assert deferred == (20, "2026-11-03T00:00:00Z")  # 09:00 in Tokyo, on the timelines
    early = send_due(store=store, settings=settings, channels=channels, rules=IdentityRules(),
                     now=datetime(2026, 11, 2, 23, 30))  # 08:30 in Tokyo  # fmt: skip
    assert early.sent == 0
    # One blocks the LINE account overnight: not sent, and the timeline says why.
    (line_id,) = store.query(
        "SELECT value FROM identity_nodes WHERE type = 'line_user_id' AND profile_id = ?",
        [people[0]],
    )[0]
    record_consent(store, ("line_user_id", line_id), "line", ["all"], False,
                   datetime(2026, 11, 2, 20, 0), "line webhook")  # fmt: skip
    morning = send_due(store=store, settings=settings, channels=channels, rules=IdentityRules(),
                       now=datetime(2026, 11, 3, 0, 1))  # 09:01  # fmt: skip
    assert morning.sent == 19 == len(api.received)
    assert morning.reasons == {"withdrew from line": 1}
    assert line_id not in {r["to"] for r in api.received}
    said = store.query(
        "SELECT user_id, anonymous_id, json_extract_string(raw, '$.properties.reason') FROM events "
        "WHERE source = 'tsunagu' AND event = 'Message Suppressed'"
    )
    assert len(said) == 1 and said[0][2] == "withdrew from line"
    assert send_due(store=store, settings=settings, channels=channels, rules=IdentityRules(),
                    now=datetime(2026, 11, 3, 1, 0)).sent == 0  # fmt: skip


def test_caps_and_the_global_control_hold_customers_back(line: Any) -> None:
    store, settings, channels, api = line
    capped = settings.model_copy(update={"cap_channel_day": 1, "cap_channel_week": 2})
    people = _people(store)["reachable"][:10]
    first, second, third = (_campaign(store, f"c{n}", control=0.0) for n in range(3))
    args: dict[str, Any] = {"store": store, "settings": capped, "profile_ids": people,
                            "channels": channels, "rules": IdentityRules()}  # fmt: skip
    assert send_campaign(campaign=first, now=NOON, **args).sent == 10
    held = send_campaign(campaign=second, now=NOON + timedelta(hours=2), **args)
    assert held.suppressed == 10 and held.reasons == {"frequency cap: 1 a day on line": 10}
    next_day = send_campaign(campaign=third, now=NOON + timedelta(days=1, hours=1), **args)
    assert next_day.sent == 10
    week = send_campaign(campaign=_campaign(store, "c4", control=0.0),
                         now=NOON + timedelta(days=3), **args)  # fmt: skip
    assert week.reasons == {"frequency cap: 2 a week on line": 10}
    holdout = settings.model_copy(update={"global_control_share": 0.5})
    everyone = _people(store)["reachable"][:100]
    held_out = send_campaign(store=store, settings=holdout, campaign=_campaign(store, "g", 0.0),
                             profile_ids=everyone, channels=channels, rules=IdentityRules(),
                             now=NOON)  # fmt: skip
    assert 30 <= held_out.reasons["global control group"] <= 70
    assert held_out.control == held_out.reasons["global control group"]
    again = send_campaign(store=store, settings=holdout, campaign=_campaign(store, "h", 0.0),
                          profile_ids=everyone, channels=channels, rules=IdentityRules(),
                          now=NOON)  # fmt: skip
    assert again.control == held_out.control  # the same customers, every campaign


def test_what_a_crash_left_sending_is_delivered_once(line: Any) -> None:
    store, settings, channels, api = line
    people = _people(store)["reachable"][:5]
    campaign = _campaign(store, control=0.0)
    send_campaign(store=store, settings=settings, campaign=campaign, profile_ids=people,
                  channels=channels, rules=IdentityRules(), now=NOON)  # fmt: skip
    assert len(api.received) == 5
    # As if the process died after LINE accepted two of them but before it wrote so.
    with store.transaction() as cur:
        cur.execute(
            "UPDATE sends SET status = 'sending', sent_at = NULL WHERE send_key IN "
            "(SELECT send_key FROM sends WHERE campaign_id = ? ORDER BY send_key LIMIT 2)",
            [campaign.campaign_id],
        )
    done = send_due(store=store, settings=settings, channels=channels, rules=IdentityRules(),
                    now=NOON + timedelta(minutes=5))  # fmt: skip
    assert done.sent == 2 and len(api.received) == 5  # LINE's 409: delivered before


def test_the_same_message_for_everyone_goes_by_multicast(line: Any) -> None:
    """Without a link (whose token is each customer's own) the text is everyone's: LINE gets
    it by multicast, up to 500 a request, each send keeping its batch's retry key; a batch a
    crash cut off goes again under that key and LINE's 409 says it was delivered."""
    store, settings, channels, api = line
    people = _people(store)["reachable"][:7]
    assert len(people) == 7
    campaign = _campaign(store, control=0.0, message={"text": "本日限りのタイムセール"})
    channels["line"].multicast_max = 3  # LINE's 500, made small
    done = send_campaign(store=store, settings=settings, campaign=campaign, profile_ids=people,
                         channels=channels, rules=IdentityRules(), now=NOON)  # fmt: skip
    assert done.sent == 7
    # 3 + 3 by multicast, the last one alone by push (which names the message it sent).
    assert sorted((r["kind"], len(r["to"]) if r["kind"] == "multicast" else 1)
                  for r in api.received) == [("multicast", 3), ("multicast", 3), ("push", 1)]  # fmt: skip
    line_ids = dict(store.query(
        "SELECT profile_id, value FROM identity_nodes WHERE type = 'line_user_id'"
    ))  # fmt: skip
    assert sorted(api.recipients()) == sorted(line_ids[p] for p in people)
    assert {text for _, text in api.messages()} == {"本日限りのタイムセール"}
    kept = store.query(
        "SELECT retry_key, list(address ORDER BY address), count(*) FILTER (status = 'sent') "
        "FROM sends WHERE campaign_id = ? GROUP BY retry_key", [campaign.campaign_id],
    )  # fmt: skip
    by_request = {r["retry_key"]: sorted([r["to"]] if r["kind"] == "push" else r["to"])
                  for r in api.received}  # fmt: skip
    assert {key: to for key, to, _ in kept} == by_request and all(n for *_, n in kept)
    sent = store.scalar(
        "SELECT count(DISTINCT user_id) FROM events WHERE event = 'Message Sent' "
        "AND json_extract_string(raw, '$.properties.campaign_id') = ?", [campaign.campaign_id],
    )  # fmt: skip
    assert sent == 7
    # The process died after LINE took the first batch but before it wrote so.
    first = api.received[0]["retry_key"]
    with store.transaction() as cur:
        cur.execute("UPDATE sends SET status = 'sending', sent_at = NULL WHERE retry_key = ?",
                    [first])  # fmt: skip
    again = send_due(store=store, settings=settings, channels=channels, rules=IdentityRules(),
                     now=NOON + timedelta(minutes=5))  # fmt: skip
    assert again.sent == len(by_request[first]) and len(api.received) == 3  # LINE said 409
    assert store.scalar(
        "SELECT count(*) FROM sends WHERE campaign_id = ? AND status = 'sent'",
        [campaign.campaign_id],
    ) == 7  # fmt: skip


def test_erased_customers_and_bad_campaigns(line: Any) -> None:
    store, settings, channels, _ = line
    people = _people(store)["reachable"][:3]
    erase_profile(store=store, rules=IdentityRules(), profile_id=people[0])
    done = send_campaign(store=store, settings=settings, campaign=_campaign(store, control=0.0),
                         profile_ids=people, channels=channels, rules=IdentityRules(), now=NOON)  # fmt: skip
    assert done.reasons.get("no such customer (erased?)") == 1 and done.sent == 2
    assert not store.scalar(  # nobody by that id: not in the campaign's report either
        "SELECT count(*) FROM campaign_assignments WHERE profile_id = ?", [people[0]]
    )
    # Erased after being sent to: what acting kept of them goes too.
    erase_profile(store=store, rules=IdentityRules(), profile_id=people[1])
    for table in ("sends", "campaign_assignments"):
        assert not store.scalar(f"SELECT count(*) FROM {table} WHERE profile_id = ?", [people[1]])
    silent = create_campaign(
        store=store, body=parse(CampaignCreate, {"name": "x", "channel": "line"})
    )
    with pytest.raises(InvalidInput) as why:
        send_campaign(store=store, settings=settings, campaign=silent, profile_ids=people,
                      channels=channels, rules=IdentityRules())  # fmt: skip
    assert why.value.field == "message"
    mail = _campaign(store, "mail", channel="email")
    with pytest.raises(NotConfigured) as unset:
        send_campaign(store=store, settings=settings, campaign=mail, profile_ids=people,
                      channels=channels, rules=IdentityRules())  # fmt: skip
    assert unset.value.field == "channel" and "not configured" in unset.value.message


def test_quiet_hours_read_as_the_retailer_writes_them() -> None:
    from pydantic import ValidationError

    from tsunagu.activation.protections import QuietHours

    night = QuietHours.parse("21:00-09:00", "Asia/Tokyo")
    assert night is not None
    assert night.resume_at(datetime(2026, 11, 2, 11, 59)) is None  # 20:59 in Tokyo
    assert night.resume_at(datetime(2026, 11, 2, 12, 0)) == datetime(2026, 11, 3, 0, 0)
    assert night.resume_at(datetime(2026, 11, 2, 23, 0)) == datetime(2026, 11, 3, 0, 0)  # 08:00
    lunch = QuietHours.parse("12:00-13:00", "Asia/Tokyo")
    assert lunch is not None and lunch.resume_at(datetime(2026, 11, 2, 3, 30)) == datetime(
        2026, 11, 2, 4, 0
    )
    assert QuietHours.parse(" ", "Asia/Tokyo") is None
    for bad in ("25:00-09:00", "21:99-09:00", "夜"):
        with pytest.raises(ValidationError, match="quiet_hours"):
            Settings(quiet_hours=bad)


def test_a_service_message_needs_no_opt_in_but_respects_a_block(line: Any) -> None:
    store, settings, channels, api = line
    settings = settings.model_copy(update={"quiet_hours": "21:00-09:00",
                                           "global_control_share": 0.5})  # fmt: skip
    people = _people(store)
    no_consent, reachable = people["no_consent"][:4], people["reachable"][:4]
    (blocked_line,) = store.query(
        "SELECT value FROM identity_nodes WHERE type = 'line_user_id' AND profile_id = ?",
        [no_consent[0]],
    )[0]
    record_consent(store, ("line_user_id", blocked_line), "line", ["all"], False,
                   datetime(2026, 11, 1), "line webhook")  # fmt: skip
    campaign = _campaign(store, "取り置きのお知らせ", control=0.0, purpose="service")
    assert campaign.purpose == "service"
    night = datetime(2026, 11, 2, 13, 30)  # 22:30 in Tokyo: marketing would wait
    done = send_campaign(store=store, settings=settings, campaign=campaign,
                         profile_ids=no_consent + reachable, channels=channels,
                         rules=IdentityRules(), now=night)  # fmt: skip
    assert (done.sent, done.suppressed, done.control, done.deferred) == (7, 1, 0, 0)
    assert done.reasons == {"withdrew from line": 1}
    assert blocked_line not in {r["to"] for r in api.received}
    marketing = _campaign(store, "秋の新作 2", control=0.0)
    later = send_campaign(store=store, settings=settings, campaign=marketing,
                          profile_ids=no_consent + reachable, channels=channels,
                          rules=IdentityRules(), now=night)  # fmt: skip
    assert later.sent == 0 and later.control > 0 and later.deferred > 0


def test_the_cap_across_channels_counts_every_channel(line: Any, tmp_path: Path) -> None:
    store, settings, channels, api = line
    channels = {**channels, "dm": DirectMail(directory=tmp_path / "dm")}
    capped = settings.model_copy(update={"cap_all_day": 1})
    both = [p for (p,) in store.query(
        "SELECT profile_id FROM profile_traits WHERE "
        "coalesce(json_extract(traits, '$.dm_opt_in')::BOOLEAN, false) AND "
        "json_extract_string(traits, '$.address') IS NOT NULL"
    ) if p in set(_people(store)["reachable"])][:5]  # fmt: skip
    assert len(both) >= 3
    args: dict[str, Any] = {"store": store, "settings": capped, "profile_ids": both,
                            "channels": channels, "rules": IdentityRules()}  # fmt: skip
    on_line = send_campaign(campaign=_campaign(store, "LINE", control=0.0), now=NOON, **args)
    assert on_line.sent == len(both)
    by_post = send_campaign(
        campaign=_campaign(store, "DM", control=0.0, channel="dm"),
        now=NOON + timedelta(hours=1), **args,
    )  # fmt: skip
    assert by_post.sent == 0 and by_post.reasons == {
        "frequency cap: 1 a day on every channel": len(both)
    }
    next_day = send_campaign(
        campaign=_campaign(store, "DM 2", control=0.0, channel="dm"),
        now=NOON + timedelta(days=1, hours=1), **args,
    )  # fmt: skip
    assert next_day.sent == len(both)

"""Campaign assignments and the measured report: held to a plain reading of the definitions,
and to the generator's randomised campaign, whose true effect is known."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tsunagu.activation.assignments import assign, import_assignments
from tsunagu.activation.campaigns import CampaignCreate, create_campaign, get_campaign
from tsunagu.activation.coupons import issue, redeem
from tsunagu.activation.report import report
from tsunagu.analytics.facts import rebuild
from tsunagu.analytics.filters import parse
from tsunagu.events.model import RETAILER_EVENTS
from tsunagu.events.normalize import normalize
from tsunagu.exceptions import InvalidInput
from tsunagu.identity.graph import build_graph
from tsunagu.identity.rules import IdentityRules
from tsunagu.store import Store


def _plain(store: Store, campaign_id: str, window: timedelta) -> dict[str, dict[str, float]]:
    """Per variant, the definitions read one customer at a time."""
    assigned = store.query(
        "SELECT profile_id, variant, assigned_at FROM campaign_assignments WHERE campaign_id = ?",
        [campaign_id],
    )
    events: dict[str, list[tuple[datetime, str | None, str, float | None]]] = defaultdict(list)
    for pid, ts, event, channel, revenue in store.query(
        "SELECT p.profile_id, e.ts, e.event, e.channel, e.revenue FROM analytics_events e "
        "JOIN analytics_profiles p USING (pid)"
    ):
        events[pid].append((ts, event, channel, revenue))
    out: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for pid, variant, at in assigned:
        mine = [e for e in events.get(pid, []) if at <= e[0] < at + window]
        orders = [e for e in mine if e[1] == "Order Completed"]
        v = out[variant]
        v["customers"] += 1
        v["visits"] += any(
            e[2] in ("web", "app", "line") and e[1] not in RETAILER_EVENTS for e in mine
        )
        v["conversions"] += bool(orders)
        v["revenue"] += sum(e[3] or 0 for e in orders)
        v["store"] += sum(e[3] or 0 for e in orders if e[2] == "store")
        v["online"] += sum(e[3] or 0 for e in orders if e[2] != "store")
        v["store_conversions"] += any(e[2] == "store" for e in orders)
    return out


@pytest.fixture(scope="module")
def measured(sample: tuple[Path, Store]) -> tuple[Store, str, dict[str, Any], Path]:
    files, shared = sample
    shared.query("CHECKPOINT")
    copy = files.parent / "report.duckdb"
    copy.write_bytes(shared.path.read_bytes())
    store = Store(copy)
    truth = json.loads((files / "campaign_truth.json").read_text(encoding="utf-8"))
    body = {"name": truth["name"], "channel": "catalog", "control_share": truth["control_share"]}
    made = create_campaign(store=store, body=parse(CampaignCreate, body))
    done = import_assignments(
        store=store, campaign_id=made.campaign_id, path=files / "campaign_assignments.csv"
    )
    assert done.rejected == 0 and done.assigned == sum(truth["customers"].values())
    assert done.variants == truth["customers"]
    return store, made.campaign_id, truth, files


def test_the_report_reads_the_definitions(
    measured: tuple[Store, str, dict[str, Any], Path],
) -> None:
    store, campaign_id, _, _ = measured
    answer = report(store=store, campaign_id=campaign_id)
    plain = _plain(store, campaign_id, timedelta(days=14))
    assert answer["window"] == "14d"
    assert [v["variant"] for v in answer["variants"]] == ["control", "catalog"]
    for v in answer["variants"]:
        p = plain[v["variant"]]
        assert v["customers"] == p["customers"]
        assert v["visits"] == p["visits"]
        assert v["conversions"] == p["conversions"]
        assert v["store"]["conversions"] == p["store_conversions"]
        assert v["revenue"] == round(p["revenue"])
        assert v["online"]["revenue"] == round(p["online"])
        assert v["store"]["revenue"] == round(p["store"])
        assert v["revenue_per_customer"] == pytest.approx(p["revenue"] / p["customers"])
    assert answer["variants"][0]["vs_control"] is None
    # A shorter window counts less, by the same definitions.
    week = report(store=store, campaign_id=campaign_id, window="7d")
    plain_week = _plain(store, campaign_id, timedelta(days=7))
    for v in week["variants"]:
        assert v["conversions"] == plain_week[v["variant"]]["conversions"]
    with pytest.raises(InvalidInput) as why:
        report(store=store, campaign_id=campaign_id, pre_period="soon")
    assert why.value.field == "pre_period"


def test_the_report_finds_the_known_effect(
    measured: tuple[Store, str, dict[str, Any], Path],
) -> None:
    store, campaign_id, truth, _ = measured
    answer = report(store=store, campaign_id=campaign_id)
    assert answer["srm"]["ok"] and answer["srm"]["p_value"] > 0.001
    treated = answer["variants"][1]["vs_control"]
    true_effect = sum(truth["revenue_per_treated_customer"].values())
    revenue = treated["revenue_per_customer"]
    assert revenue["ci_low"] <= true_effect <= revenue["ci_high"], (revenue, true_effect)
    assert revenue["p_value"] < 0.001
    assert treated["conversion_rate"]["difference"] > 0
    assert treated["conversion_rate"]["p_value"] < 0.001
    # Online and in store, each near what the campaign added there.
    control, catalog = answer["variants"]
    for channel in ("online", "store"):
        lift = catalog[channel]["revenue_per_customer"] - control[channel]["revenue_per_customer"]
        added = truth["revenue_per_treated_customer"][channel]
        assert 0.5 * added < lift < 1.6 * added, (channel, lift, added)
    cuped = answer["cuped"]["variants"][1]["vs_control"]["revenue_per_customer"]
    assert cuped["ci_low"] <= true_effect <= cuped["ci_high"]
    # The generator's pre-period spend barely predicts a fortnight's (theta near 0): CUPED
    # changes little here; stats tests show it narrowing where the past predicts.
    width = revenue["ci_high"] - revenue["ci_low"]
    assert cuped["ci_high"] - cuped["ci_low"] <= 1.02 * width


def test_an_unbalanced_assignment_is_flagged(
    measured: tuple[Store, str, dict[str, Any], Path],
) -> None:
    store, _, _, files = measured
    made = create_campaign(
        store=store, body=parse(CampaignCreate, {"name": "偏り", "control_share": 0.5})
    )
    rows = (files / "campaign_assignments.csv").read_text(encoding="utf-8").splitlines()
    # The print house dropped most of the control: 50% meant, far fewer kept.
    lopsided = [rows[0]] + [r for n, r in enumerate(rows[1:]) if ",control," not in r or n % 5 == 0]
    path = files.parent / "lopsided.csv"
    path.write_text("\n".join(lopsided) + "\n", encoding="utf-8")
    import_assignments(store=store, campaign_id=made.campaign_id, path=path)
    srm = report(store=store, campaign_id=made.campaign_id)["srm"]
    assert not srm["ok"] and srm["p_value"] < 0.001


@pytest.fixture
def small(store: Store) -> tuple[Store, str, datetime]:
    """Three members with orders before, inside and after a campaign's window."""
    start = datetime(2026, 6, 1, 1, 0)
    messages = []
    for n, (email, card) in enumerate(
        [("a@example.jp", "1111-2222"), ("b@example.jp", "3333"), ("c@example.jp", "4444")]
    ):
        messages.append(
            {"type": "identify", "userId": f"M{n}", "traits": {"email": email, "member_card": card},
             "timestamp": "2026-05-01T00:00:00Z"}
        )  # fmt: skip
    for user, days, channel, revenue in [
        ("M0", -3, "web", 9000),  # before the assignment: the pre-period
        ("M0", 2, "store", 5000),
        ("M0", 3, "web", 2000),
        ("M1", 20, "web", 7000),  # after the window
        ("M2", 1, "line", 0),
    ]:
        event = "Order Completed" if revenue else "Product Viewed"
        messages.append(
            {"type": "track", "event": event, "userId": user,
             "properties": {"revenue": revenue, "order_id": f"O{user}{days}"},
             "context": {"channel": channel},
             "timestamp": (start + timedelta(days=days)).isoformat() + "Z"}
        )  # fmt: skip
    for event in ("Message Delivered", "Message Opened"):  # the app saw our push: no visit
        messages.append(
            {"type": "track", "event": event, "userId": "M1", "context": {"channel": "app"},
             "properties": {"campaign_id": "DM"},
             "timestamp": (start + timedelta(days=1)).isoformat() + "Z"}
        )  # fmt: skip
    arrived = start + timedelta(days=60)
    store.insert_events([normalize(m, received_at=arrived, source="t") for m in messages])
    build_graph(store=store, rules=IdentityRules())
    with store.transaction() as cur:
        rebuild(cur, IdentityRules(), timezone="Asia/Tokyo")
    body = {"name": "DM", "starts_at": "2026-06-01T10:00:00", "control_share": 0.3}
    return store, create_campaign(store=store, body=parse(CampaignCreate, body)).campaign_id, start


def test_an_assignment_file_names_its_customers_as_imports_do(
    small: tuple[Store, str, datetime], tmp_path: Path
) -> None:
    store, campaign_id, start = small
    path = tmp_path / "dm.csv"
    path.write_text(
        "会員カード,email,variant,assigned_at\n"
        "1111 2222,,catalog,\n"  # the card as typed, the campaign's start
        ",Ｂ＠ＥＸＡＭＰＬＥ．ＪＰ,Control,2026-06-01 10:00\n"  # full width, local time
        ",c@example.jp,catalog,2026-06-01T01:00:00Z\n"
        ",nobody@example.jp,catalog,\n"
        ",not-an-email,catalog,\n"
        "1111-2222,,catalog,\n"  # the same customer again, same variant
        ",b@example.jp,catalog,\n"  # M1 again, in another variant
        ",,catalog,\n",
        encoding="utf-8",
    )
    done = import_assignments(store=store, campaign_id=campaign_id, path=path)
    assert (done.read, done.assigned, done.duplicates, done.rejected) == (8, 3, 1, 4)
    assert done.variants == {"catalog": 2, "control": 1}
    rejects = (tmp_path / "dm.csv.rejects.csv").read_text(encoding="utf-8")
    assert "email: no customer has this identifier" in rejects
    assert "email: not a valid email" in rejects
    assert "variant: the customer is in variant control in row 3" in rejects
    assert "identifier: none given" in rejects
    times = dict(
        store.query("SELECT variant, min(assigned_at) FROM campaign_assignments GROUP BY 1")
    )
    assert times["control"] == times["catalog"] == start  # 10:00 Tokyo is 01:00 UTC
    # Again: every row is now a duplicate or a reject.
    again = import_assignments(store=store, campaign_id=campaign_id, path=path)
    assert (again.assigned, again.duplicates) == (0, 4)

    answer = report(store=store, campaign_id=campaign_id)
    by = {v["variant"]: v for v in answer["variants"]}
    assert by["catalog"]["conversions"] == 1  # M0; M2 only looked
    assert by["catalog"]["revenue"] == 7000 and by["catalog"]["store"]["revenue"] == 5000
    assert by["catalog"]["visits"] == 2  # M0 on the web, M2 on LINE
    assert by["control"]["conversions"] == 0  # M1's order came after the window
    assert by["control"]["visits"] == 0  # M1's app reported only that our push came
    assert by["control"]["vs_control"] is None


def test_assignment_files_that_cannot_be_read_name_the_reason(
    small: tuple[Store, str, datetime], tmp_path: Path
) -> None:
    store, campaign_id, _ = small
    path = tmp_path / "x.csv"
    path.write_text("name,variant\n山田,catalog\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as why:
        import_assignments(store=store, campaign_id=campaign_id, path=path)
    assert why.value.field == "header"
    path.write_text("identifier_type,identifier_value\nfax,123\nuser_id,M2\n", encoding="utf-8")
    done = import_assignments(store=store, campaign_id=campaign_id, path=path)
    assert (done.assigned, done.rejected) == (1, 1)  # without a variant column: by the hash
    profile = store.scalar("SELECT profile_id FROM identity_nodes WHERE value = 'M2'")
    campaign = get_campaign(store=store, campaign_id=campaign_id)
    assert done.variants == {campaign.variant(profile): 1}
    assert "identifier_type: fax is not one of" in (tmp_path / "x.csv.rejects.csv").read_text()


def test_sends_assign_once_and_redemptions_count_per_variant(
    small: tuple[Store, str, datetime],
) -> None:
    store, _, start = small
    terms = {"value_yen": 500, "valid_from": "2026-05-01", "valid_to": "2026-12-31"}
    body = {"name": "クーポン", "control_share": 0.0, "coupon": terms}
    campaign = create_campaign(store=store, body=parse(CampaignCreate, body))
    profiles = [r[0] for r in store.query("SELECT DISTINCT profile_id FROM identity_nodes")]
    first = assign(store=store, campaign=campaign, profile_ids=profiles, at=start)
    assert set(first.values()) == {"treatment"}
    later = assign(store=store, campaign=campaign, profile_ids=profiles, at=start + timedelta(1))
    assert later == first
    assert (
        store.scalar(
            "SELECT count(DISTINCT assigned_at) FROM campaign_assignments WHERE campaign_id = ?",
            [campaign.campaign_id],
        )
        == 1
    )
    coupon = issue(store=store, campaign_id=campaign.campaign_id, profile_ids=profiles[:1])[0]
    redeem(store=store, code=coupon.code, store_id="S001", receipt_id="R1", amount_yen=3000,
           at=datetime(2026, 6, 2))  # fmt: skip
    answer = report(store=store, campaign_id=campaign.campaign_id)
    assert answer["variants"][0]["coupon_redemptions"] == 1
    assert answer["coupons"]["by_store"] == [
        {"store_id": "S001", "redemptions": 1, "discount_yen": 500, "amount_yen": 3000}
    ]

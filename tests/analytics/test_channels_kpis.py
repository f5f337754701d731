from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.analytics import reference
from tests.analytics.conftest import TZ
from tsunagu.analytics.channels import ChannelsQuery, run_channels
from tsunagu.analytics.engine import Engine
from tsunagu.analytics.filters import parse, utc_bounds
from tsunagu.analytics.kpis import KpiQuery, run_kpis
from tsunagu.exceptions import InvalidInput
from tsunagu.store import Store


@pytest.fixture(scope="module")
def hist(sample: tuple[Path, Store]) -> dict[int, list[reference.Ev]]:
    return reference.histories(sample[1])


@pytest.mark.parametrize(
    "body",
    [{}, {"from": "2026-08-01", "to": "2026-09-15", "ropo_days": 3, "showrooming_days": 14}],
)
def test_channel_journeys_equal_the_plain_reading(
    sample: tuple[Path, Store], hist: Any, body: dict[str, Any]
) -> None:
    _, store = sample
    query = parse(ChannelsQuery, body)
    got = run_channels(engine=Engine(store), query=query, timezone=TZ)
    lo, hi = utc_bounds(query.from_, query.to, TZ)
    want = reference.channels(
        hist,
        lo=lo,
        hi=hi,
        ropo_days=query.ropo_days,
        showrooming_days=query.showrooming_days,
        category_of=dict(store.query("SELECT sku, category FROM products")),
        home_of=dict(
            store.query(
                "SELECT ap.pid, t.home_store_id FROM analytics_profiles ap JOIN profile_traits t "
                "USING (profile_id) WHERE t.home_store_id IS NOT NULL"
            )
        ),  # fmt: skip
    )
    segments = {s.segment: (s.buyers, s.orders, s.revenue) for s in got.segments if s.buyers}
    assert segments == want["segments"]
    assert (got.ropo.orders, got.ropo.total, got.ropo.customers) == want["ropo"]
    assert {r.key: (r.matched, r.total) for r in got.ropo.by_store} == want["ropo_store"]
    assert {r.key: (r.matched, r.total) for r in got.ropo.by_category} == want["ropo_category"]
    show = got.showrooming
    assert (show.orders, show.total, show.customers) == want["showrooming"]
    assert {r.key: r.matched for r in show.by_store} == want["showrooming_store"]
    assert all(r.total == show.orders for r in show.by_store)
    assert {r.key: (r.matched, r.total) for r in show.by_category} == want["showrooming_category"]
    # The sample retailer researches online and buys in store, and the other way round.
    assert got.ropo.orders > 0 and show.orders > 0
    omni = next(s for s in got.segments if s.segment == "omnichannel")
    single = [s for s in got.segments if s.segment in ("online_only", "store_only")]
    per_single = sum(s.revenue for s in single) / sum(s.buyers for s in single)
    assert got.o2o_lift == pytest.approx(omni.spend_per_buyer / per_single, rel=1e-4)
    assert sum(s.share_of_buyers for s in got.segments) == pytest.approx(1.0, abs=1e-4)
    for lifts, wanted in ((got.o2o_by_store, want["o2o_store"]),
                          (got.o2o_by_category, want["o2o_category"])):  # fmt: skip
        assert {x.key: (x.omnichannel_buyers, x.single_channel_buyers) for x in lifts} == {
            k: (v[0], v[2]) for k, v in wanted.items()
        }
        for x in lifts:
            o, o_spend, n, n_spend = wanted[x.key]
            plain = (o_spend / o) / (n_spend / n) if o and n and n_spend else None
            assert x.lift == (pytest.approx(plain, rel=1e-5) if plain is not None else None)
        assert sum(x.lift is not None for x in lifts) >= 3  # the sample has lifts to show


@pytest.mark.parametrize(
    "body", [{"grain": "week"}, {"grain": "day", "from": "2026-08-03", "to": "2026-08-20"}]
)
def test_kpis_equal_the_plain_reading(
    sample: tuple[Path, Store], hist: Any, body: dict[str, Any]
) -> None:
    _, store = sample
    query = parse(KpiQuery, body)
    got = run_kpis(engine=Engine(store), query=query)
    want = reference.kpis(hist, grain=query.grain, lo=query.from_, hi=query.to)
    assert {k.period for k in got.periods} == set(want)
    for k in got.periods:
        w = want[k.period]  # type: ignore[index]
        assert k.active_customers == w["active_customers"]
        assert k.active_by_channel == w["active_by_channel"]
        assert (k.orders, k.revenue, k.buyers) == (w["orders"], w["revenue"], w["buyers"])
        assert (k.revenue_store, k.revenue_online) == pytest.approx(
            (w["revenue_store"], w["revenue"] - w["revenue_store"]), abs=1
        )
        assert k.new_buyers == w["new_buyers"]
        assert k.returning_buyers == w["buyers"] - w["new_buyers"]
        assert k.repeat_rate == pytest.approx(
            w["repeat"] / w["buyers"] if w["buyers"] else 0, abs=1e-6
        )
        assert (k.coupons_issued, k.coupons_redeemed) == (
            w["coupons_issued"],
            w["coupons_redeemed"],
        )
        if k.orders:
            assert k.aov == pytest.approx(k.revenue / k.orders, abs=0.01)
    (total,) = got.totals
    assert total.orders == sum(k.orders for k in got.periods)
    assert total.buyers <= sum(k.buyers for k in got.periods)


def test_kpis_per_store_add_up_to_the_store_orders(sample: tuple[Path, Store]) -> None:
    _, store = sample
    got = run_kpis(
        engine=Engine(store), query=parse(KpiQuery, {"grain": "month", "by_store": True})
    )
    per_store = {t.store_id: t.orders for t in got.totals}
    direct = dict(
        store.query(
            "SELECT store_id, count(*) FROM analytics_events WHERE event = 'Order Completed' "
            "AND store_id IS NOT NULL GROUP BY store_id"
        )
    )
    assert per_store == direct
    one = run_kpis(
        engine=Engine(store), query=parse(KpiQuery, {"grain": "month", "store_id": "S001"})
    )
    assert one.totals[0].orders == direct["S001"]


def test_kpis_refuse_a_backwards_range(sample: tuple[Path, Store]) -> None:
    with pytest.raises(InvalidInput) as err:
        run_kpis(
            engine=Engine(sample[1]),
            query=parse(KpiQuery, {"from": str(date(2026, 3, 2)), "to": "2026-03-01"}),
        )
    assert err.value.field == "to"


def test_kpis_of_the_range_alone_are_the_ranges_totals(sample: tuple[Path, Store]) -> None:
    query = parse(KpiQuery, {"from": "2026-08-01", "to": "2026-09-15", "grain": "week"})
    whole = run_kpis(engine=Engine(sample[1]), query=query)
    alone = run_kpis(engine=Engine(sample[1]), query=query, periods=False)
    assert alone.periods == [] and alone.totals == whole.totals and whole.periods

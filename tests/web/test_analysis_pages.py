"""The analysis screens over the sample retailer: each page's query is its URL, and the figures
on the page are the runner's for the same query (the API's runner, called here directly)."""

from __future__ import annotations

import html
import json
import re
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from tests.conftest import serve_app
from tests.web.signin import sign_in, users

from tsunagu.analytics.assortment import AssortmentQuery, assortment_report
from tsunagu.analytics.channels import ChannelsQuery, run_channels
from tsunagu.analytics.facts import fresh_engine
from tsunagu.analytics.fans import fan_report, load_fan_rules
from tsunagu.analytics.filters import parse
from tsunagu.analytics.funnels import FunnelQuery, run_funnel
from tsunagu.analytics.ltv import fit_ltv
from tsunagu.analytics.paths import PathsQuery, run_paths
from tsunagu.analytics.retention import RetentionQuery, run_retention
from tsunagu.analytics.vocabulary import vocabulary
from tsunagu.api import create_app
from tsunagu.config import Settings
from tsunagu.store import Store
from tsunagu.web.analysis import conditions
from tsunagu.web.i18n import percent


@pytest.fixture(scope="module")
def served(
    sample: tuple[Path, Store], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Store, Settings]]:
    """The sample served from a copy of its own (the LTV test fits on it), with a user of each
    role."""
    _, shared = sample
    shared.query("CHECKPOINT")
    root = tmp_path_factory.mktemp("analysis-pages")
    settings = Settings(data_dir=root / "data")
    settings.data_dir.mkdir(parents=True)
    shutil.copy(shared.path, settings.database_path)
    with Store(settings.database_path) as store:
        users(store, None)
        with serve_app(create_app(settings, store=store)) as url:
            yield url, store, settings


@pytest.fixture(scope="module")
def analyst(served: tuple[str, Store, Settings]) -> Iterator[httpx.Client]:
    with sign_in(served[0], "analyst") as client:
        yield client


def _engine(served: tuple[str, Store, Settings]):  # type: ignore[no-untyped-def]
    _, store, settings = served
    return fresh_engine(store=store, data_dir=settings.data_dir, timezone=settings.timezone)


def _cells(text: str, table: str) -> list[list[str]]:
    """The text of each row's cells of the table with id `table`."""
    body = text.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return [
        [html.unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    ][1:]  # fmt: skip


def _figure(text: str, chart: str) -> dict:  # type: ignore[type-arg]
    found = re.search(rf'id="{chart}" class="plot" data-figure="([^"]*)"', text)
    assert found, f"no chart {chart}"
    return json.loads(html.unescape(found.group(1)))


def test_a_where_box_reads_as_step_conditions() -> None:
    assert conditions("revenue>=10000; coupon=SUMMER|WINTER；name != トップ", "p") == {
        "revenue": {"gte": 10000},
        "coupon": ["SUMMER", "WINTER"],
        "name": {"ne": "トップ"},
    }
    assert conditions("price < 1.5; price > 0.5", "p") == {"price": {"lt": 1.5, "gt": 0.5}}
    assert conditions("  ", "p") == {}
    with pytest.raises(ValueError, match="p: 'revenue' is not key=value"):
        conditions("revenue", "p")


def test_a_funnel_without_steps_goes_to_a_default_one_in_the_url(analyst: httpx.Client) -> None:
    answer = analyst.get("/analytics/funnel")
    assert answer.status_code == 303
    asked = parse_qs(urlsplit(answer.headers["location"]).query)
    assert asked["e"] == ["Product Viewed", "Product Added", "Order Completed"]


def test_the_funnel_page_shows_the_runners_figures(served, analyst: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    url = (
        "/analytics/funnel?e=Product+Viewed&c=app&st=&cat=&p=&e=Store+Visited&c=&st=&cat=&p="
        "&e=Order+Completed&c=store&st=&cat=&p=revenue>%3D1000&window=14d&mode=ordered"
        "&breakdown=channel"
    )
    answer = analyst.get(url)
    assert answer.status_code == 200, answer.text[:300]
    query = parse(FunnelQuery, {
        "steps": [{"event": "Product Viewed", "channel": "app"}, {"event": "Store Visited"},
                  {"event": "Order Completed", "channel": "store",
                   "where": {"revenue": {"gte": 1000}}}],
        "window": "14d", "breakdown": "channel"})  # fmt: skip
    result = run_funnel(engine=_engine(served), query=query, timezone="Asia/Tokyo")
    assert result.steps[-1].customers > 0  # a funnel that goes somewhere
    rows = _cells(answer.text, "funnel-steps")
    assert [r[1] for r in rows] == [f"{s.customers:,}" for s in result.steps]
    assert [r[2] for r in rows] == [percent(s.conversion_from_first) for s in result.steps]
    bars = _figure(answer.text, "chart-funnel")["data"]
    assert bars[0]["y"] == [s.customers for s in result.steps]
    assert bars[1]["y"] == [s.drop_off for s in result.steps]
    groups = _cells(answer.text, "funnel-breakdown")
    assert [g[0] for g in groups] == [g.value for g in result.breakdown]
    # The form holds the query it answered: the store's channels selected, the condition kept.
    assert 'value="revenue&gt;=1000"' in answer.text
    assert answer.text.count('<option value="store" selected>') == 1


def test_a_funnel_of_a_store_and_category_filters_its_steps(served, analyst: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    vocab = vocabulary(engine=_engine(served))
    shop, category = vocab.stores[0][0], vocab.categories[0]
    answer = analyst.get(
        "/analytics/funnel",
        params=[("e", "Product Viewed"), ("cat", category), ("st", ""), ("c", ""), ("p", ""),
                ("e", "Order Completed"), ("cat", category), ("st", shop), ("c", ""), ("p", "")],
    )  # fmt: skip
    assert answer.status_code == 200
    query = parse(FunnelQuery, {"steps": [
        {"event": "Product Viewed", "where": {"category": category}},
        {"event": "Order Completed", "where": {"store_id": shop, "category": category}}]})  # fmt: skip
    result = run_funnel(engine=_engine(served), query=query, timezone="Asia/Tokyo")
    assert [r[1] for r in _cells(answer.text, "funnel-steps")] == [
        f"{s.customers:,}" for s in result.steps
    ]


@pytest.mark.parametrize(
    ("asked", "field"),
    [
        ({"e": ["Product Viewed", "Order Completed"], "window": "soon"}, "window"),
        ({"e": ["Product Viewed", "Order Completed"], "p": ["revenue", ""]}, "steps.0.where"),
        ({"e": ["Product Viewed", "Order Completed"], "breakdown": 'x"y'}, "breakdown"),
        ({"e": ["Product Viewed", "Order Completed"], "mode": "sideways"}, "mode"),
    ],
)
def test_a_bad_funnel_is_named_on_the_page(analyst: httpx.Client, asked: dict, field: str) -> None:  # type: ignore[type-arg]
    answer = analyst.get("/analytics/funnel", params=asked)
    assert answer.status_code == 400
    error = re.search(r'id="error">(.*?)</p>', answer.text, re.S)
    assert error and html.unescape(error.group(1)).startswith(field), error
    assert 'id="funnel-form"' in answer.text  # the builder stays, to correct it


def test_the_retention_page_draws_the_cohorts(served, analyst: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    answer = analyst.get(
        "/analytics/retention?se=Order+Completed&re=Order+Completed&grain=week&periods=6"
    )
    assert answer.status_code == 200
    query = parse(RetentionQuery, {"start": {"event": "Order Completed"},
                                   "return": {"event": "Order Completed"}, "grain": "week", "periods": 6})  # fmt: skip
    result = run_retention(engine=_engine(served), query=query)
    rows = _cells(answer.text, "retention-table")
    cohorts = rows[1:]
    assert [r[1] for r in cohorts] == [f"{c.customers:,}" for c in result.cohorts]
    assert cohorts[0][2] == percent(result.cohorts[0].rates[1])
    heat = _figure(answer.text, "chart-retention")["data"][0]
    assert heat["type"] == "heatmap" and len(heat["z"]) == len(result.cohorts)
    assert heat["x"][0] == "1週後"


def test_the_paths_page_draws_a_sankey(served, analyst: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    answer = analyst.get("/analytics/paths?e=Product+Viewed&direction=after&depth=3&top=6")
    assert answer.status_code == 200
    query = parse(PathsQuery, {"event": {"event": "Product Viewed"}, "depth": 3, "top": 6})
    result = run_paths(engine=_engine(served), query=query, timezone="Asia/Tokyo")
    assert f'id="anchors">{result.customers:,}<' in answer.text
    sankey = _figure(answer.text, "chart-paths")["data"][0]
    assert sankey["type"] == "sankey"
    assert sankey["link"]["value"] == [link.customers for link in result.links]


def test_the_channels_page_shows_the_mix_ropo_and_showrooming(
    served, analyst: httpx.Client
) -> None:  # type: ignore[no-untyped-def]
    answer = analyst.get("/analytics/channels?ropo_days=14")
    assert answer.status_code == 200
    query = parse(ChannelsQuery, {"ropo_days": 14})
    result = run_channels(engine=_engine(served), query=query, timezone="Asia/Tokyo")
    assert f'id="ropo-rate">{percent(result.ropo.rate)}<' in answer.text
    assert f'id="showrooming-rate">{percent(result.showrooming.rate)}<' in answer.text
    rows = {r[0]: r for r in _cells(answer.text, "segments")}
    omni = next(s for s in result.segments if s.segment == "omnichannel")
    assert rows["オムニチャネル"][1] == f"{omni.buyers:,}"
    lifts = _figure(answer.text, "chart-o2o-category")["data"][0]
    assert lifts["x"] == [x.key for x in result.o2o_by_category]
    assert lifts["y"] == [x.lift for x in result.o2o_by_category]
    by_store = _figure(answer.text, "chart-ropo-store")["data"][0]
    assert sorted(by_store["y"]) == sorted(
        r.rate for r in sorted(result.ropo.by_store, key=lambda r: -r.total)[:20]
    )


def test_the_fans_page_shows_levels_and_their_movement(served, analyst: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    _, _, settings = served
    engine = _engine(served)
    last = vocabulary(engine=engine).last_day
    assert last is not None
    answer = analyst.get("/analytics/fans")
    assert answer.status_code == 200
    result = fan_report(engine=engine, rules=load_fan_rules(settings.data_dir), as_of=last,
                        compare_to=last - timedelta(days=90))  # fmt: skip
    assert f'id="fan-customers">{result.customers:,}<' in answer.text
    assert f'id="moved-up">{result.moved_up:,}<' in answer.text
    heat = _figure(answer.text, "chart-movement")["data"][0]
    assert sum(map(sum, heat["z"])) == sum(m.customers for m in result.movement)


def test_the_ltv_page_before_and_after_a_fit(served) -> None:  # type: ignore[no-untyped-def]
    url, store, _ = served
    with sign_in(url, "marketer") as marketer:
        before = marketer.get("/analytics/ltv")
        assert 'id="no-fit"' in before.text and 'id="fit-ltv"' in before.text
        fit = fit_ltv(engine=_engine(served), store=store)
        after = marketer.get("/analytics/ltv")
    assert f'id="ltv-customers">{fit.customers:,}<' in after.text
    bands = _cells(after.text, "ltv-bands")
    assert sum(int(b[1].replace(",", "")) for b in bands) == fit.customers
    with sign_in(url, "analyst") as analyst:
        assert 'id="fit-ltv"' not in analyst.get("/analytics/ltv").text  # analysts only read


def test_the_assortment_page_of_a_store(served, analyst: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    _, store, _ = served
    shop = vocabulary(engine=_engine(served)).stores[1][0]
    answer = analyst.get(f"/analytics/assortment?store_id={shop}&radius_km=15&days=60")
    assert answer.status_code == 200
    result = assortment_report(store=store, query=parse(AssortmentQuery, {"store_id": shop, "radius_km": 15, "days": 60}))  # fmt: skip
    assert f'id="catchment">{result.catchment_customers:,}<' in answer.text
    assert [r[0].split()[-1] for r in _cells(answer.text, "as_missing")] == [
        p.sku for p in result.missing[:20]
    ]
    unknown = analyst.get("/analytics/assortment?store_id=NOPE")
    assert unknown.status_code in (400, 404) and "NOPE" in unknown.text


def test_the_screens_speak_english_when_asked(analyst: httpx.Client) -> None:
    for path, label in (("/analytics/retention", "Cohort"), ("/analytics/paths", "Anchor event"),
                        ("/analytics/channels", "Showrooming"), ("/analytics/fans", "Moved up"),
                        ("/analytics/assortment", "Share of local demand")):  # fmt: skip
        answer = analyst.get(path + "?lang=en")
        assert answer.status_code == 200 and label in answer.text, path
        assert '<html lang="en">' in answer.text


def test_a_stranger_is_sent_to_sign_in_and_back(served) -> None:  # type: ignore[no-untyped-def]
    url, _, _ = served
    away = httpx.get(url + "/analytics/paths?e=Order+Completed")
    assert away.status_code == 303
    assert away.headers["location"] == "/login?next=%2Fanalytics%2Fpaths%3Fe%3DOrder%2BCompleted"


def test_a_form_with_its_boxes_left_empty_is_no_error(analyst: httpx.Client) -> None:
    for path in ("/analytics/retention?periods=&from=&to=&breakdown=",
                 "/analytics/funnel?e=Product+Viewed&e=Order+Completed&from=&to=&breakdown=",
                 "/analytics/channels?from=&to=", "/analytics/fans?as_of=&compare_to=",
                 "/?from=&to=&store_id="):  # fmt: skip
        answer = analyst.get(path)
        assert answer.status_code == 200, (path, answer.text[:300])

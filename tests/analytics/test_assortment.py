from __future__ import annotations

import csv
import math
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.analytics import reference
from tsunagu.analytics.assortment import AssortmentQuery, assortment_report
from tsunagu.analytics.filters import parse
from tsunagu.cli import app
from tsunagu.exceptions import InvalidInput
from tsunagu.store import Store


def km(a: tuple[float, float], b: tuple[float, float]) -> float:
    (la1, lo1), (la2, lo2) = (tuple(map(math.radians, p)) for p in (a, b))
    h = (
        math.sin((la2 - la1) / 2) ** 2
        + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    )
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


def test_the_neighbourhoods_demand_against_the_shelf(sample: tuple[Path, Store]) -> None:
    _, store = sample
    shop = "S001"
    got = assortment_report(
        store=store, query=AssortmentQuery(store_id=shop, radius_km=15, top=1000)
    )
    # The plain reading: the catchment from home stores, member records and postcodes.
    stores = {
        s: (lat, lon, pc)
        for s, lat, lon, pc in store.query("SELECT store_id, lat, lon, postcode FROM stores")
    }
    here = stores[shop]

    def near(store_id: str | None) -> bool:
        if store_id is None or store_id not in stores:
            return False
        lat, lon, _ = stores[store_id]
        return store_id == shop or (lat is not None and km((here[0], here[1]), (lat, lon)) <= 15)

    district = here[2].replace("-", "")[:3]
    profiles = {
        p
        for p, home in store.query("SELECT profile_id, home_store_id FROM profile_traits")
        if near(home)
    }
    for profile, home, postcode in store.query(
        "SELECT n.profile_id, m.home_store_id, m.postcode FROM members m JOIN identity_nodes n "
        "ON n.type = 'user_id' AND n.value = m.member_id"
    ):
        if near(home) or (postcode and postcode.replace("-", "")[:3] == district):
            profiles.add(profile)
    pids = {
        p
        for p, prof in store.query("SELECT pid, profile_id FROM analytics_profiles")
        if prof in profiles
    }
    assert got.catchment_customers == len(pids)
    last = store.scalar("SELECT max(day) FROM analytics_events")
    since = last - timedelta(days=89)
    buyers: dict[str, set[int]] = {}
    for pid, evs in reference.histories(store).items():
        if pid in pids:
            for e in evs:
                if e.event == "Order Completed" and e.day >= since:
                    for sku in set(e.skus or []):
                        buyers.setdefault(sku, set()).add(pid)
    on_hand = dict(store.query("SELECT sku, quantity FROM inventory WHERE store_id = ?", [shop]))
    assert got.missing, "the sample has products wanted nearby that S001 lacks"
    for line in got.missing:
        assert (
            line.on_hand == 0
            and not on_hand.get(line.sku)
            and line.local_buyers == len(buyers[line.sku])
        )
    assert {m.sku for m in got.missing} == {
        s for s, b in buyers.items() if b and not on_hand.get(s)
    }
    for line in got.slow:
        assert line.on_hand == on_hand[line.sku] > 0 and len(buyers.get(line.sku, ())) < 2
    shares = [c.share_of_local_demand for c in got.categories]
    assert sum(shares) == pytest.approx(1.0, abs=1e-4)


def test_cli_writes_the_csv_and_refuses_an_unknown_store(
    sample_copy: Store, tmp_path: Path
) -> None:
    sample_copy.close()
    data = tmp_path / "data"
    data.mkdir()
    Path(sample_copy.path).rename(data / "tsunagu.duckdb")
    out = tmp_path / "assortment.csv"
    result = CliRunner().invoke(
        app,
        [
            "--data-dir",
            str(data),
            "assortment",
            "report",
            "--store",
            "S001",
            "--csv",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert {r["section"] for r in rows} == {"missing", "slow"}
    bad = CliRunner().invoke(
        app, ["--data-dir", str(data), "assortment", "report", "--store", "S-NOPE"]
    )
    assert bad.exit_code == 2 and "store_id" in bad.output
    with pytest.raises(InvalidInput) as err:
        parse(AssortmentQuery, {"store_id": "S001", "radius_km": 0})
    assert err.value.field == "radius_km"


def test_a_store_without_coordinates_reaches_its_own_members_and_district(
    sample_copy: Store,
) -> None:
    with sample_copy.transaction() as cur:
        cur.execute("UPDATE stores SET lat = NULL, lon = NULL WHERE store_id = 'S001'")
    (postcode,) = sample_copy.query("SELECT postcode FROM stores WHERE store_id = 'S001'")[0]
    district = (postcode or "").replace("-", "")[:3]
    members = sample_copy.query(
        "SELECT n.profile_id, m.home_store_id, m.postcode FROM members m JOIN identity_nodes n "
        "ON n.type = 'user_id' AND n.value = m.member_id"
    )
    homes = sample_copy.query("SELECT profile_id FROM profile_traits WHERE home_store_id = 'S001'")
    profiles = {p for (p,) in sample_copy.query("SELECT profile_id FROM analytics_profiles")}
    expected = {p for p, home, _ in members if home == "S001"} | {p for (p,) in homes}
    expected |= {
        p for p, _, code in members
        if district and (code or "").replace("-", "")[:3] == district
    }  # fmt: skip
    got = assortment_report(store=sample_copy, query=parse(AssortmentQuery, {"store_id": "S001"}))
    assert 0 < got.catchment_customers == len(expected & profiles)

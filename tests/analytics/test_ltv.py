"""Lifetime value on the CDNOW sample of the BG/NBD paper, imported as a till export."""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.analytics.conftest import TZ
from tsunagu.analytics.facts import fresh_engine
from tsunagu.analytics.ltv import _summary, fit_gamma_gamma
from tsunagu.cli import app
from tsunagu.store import Store

CDNOW = Path(__file__).parent.parent / "data" / "cdnow_sample.csv"
"""The CDNOW sample (2,357 customers, Jan 1997 - Jun 1998) as customer_id,date,quantity,amount."""


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("cdnow") / "data"
    result = CliRunner().invoke(app, ["--data-dir", str(data), "import", "pos", str(CDNOW)])
    assert result.exit_code == 0, result.output
    return data


def run(data: Path, *args: str) -> dict:  # type: ignore[type-arg]
    result = CliRunner().invoke(app, ["--data-dir", str(data), *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_bg_nbd_reproduces_the_published_cdnow_estimates(cdnow: Path) -> None:
    """Fader, Hardie and Lee (2005): r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL -9582.4,
    weeks 1-39 (to 1997-09-30) as the calibration period."""
    got = run(cdnow, "ltv", "evaluate", "--calibration-end", "1997-09-30")
    assert got["customers"] == 2357
    assert got["r"] == pytest.approx(0.243, abs=0.001)
    assert got["alpha"] == pytest.approx(4.414, abs=0.005)
    assert got["a"] == pytest.approx(0.793, abs=0.001)
    assert got["b"] == pytest.approx(2.426, abs=0.005)
    assert got["log_likelihood"] == pytest.approx(-9582.4, abs=0.5)
    groups = got["by_frequency"]
    assert [g["label"] for g in groups] == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert sum(g["customers"] for g in groups) == 2357
    assert sum(g["actual"] for g in groups) == got["actual"]
    assert sum(g["predicted"] for g in groups) == pytest.approx(got["predicted"], abs=0.01)
    # The holdout test of the paper: close in total, and more purchases from who bought more.
    assert got["predicted"] == pytest.approx(got["actual"], rel=0.2)
    per_customer = [g["predicted"] / g["customers"] for g in groups]
    assert per_customer == sorted(per_customer)


def test_gamma_gamma_reproduces_the_published_cdnow_estimates(cdnow: Path) -> None:
    """Fader and Hardie's Gamma-Gamma note: p = 6.25, q = 3.74, v = 15.44 on the mean value of
    the calibration period's repeat purchases."""
    with Store(cdnow / "tsunagu.duckdb") as store:
        engine = fresh_engine(store=store, data_dir=cdnow, timezone=TZ)
        s = _summary(engine, date(1997, 9, 30), 7)
    repeat = s["frequency"] > 0
    gg, _ = fit_gamma_gamma(s["frequency"][repeat], s["monetary"][repeat].astype(float))
    assert gg.customers == 946
    assert (gg.p, gg.q, gg.v) == pytest.approx((6.25, 3.74, 15.44), abs=0.01)


def test_fit_keeps_every_customers_expected_purchases_and_value(cdnow: Path) -> None:
    got = run(cdnow, "ltv", "fit", "--horizon-days", "180")
    for key in ("r", "alpha", "a", "b", "log_likelihood", "p", "q", "v"):
        assert isinstance(got[key], float) and got[key] > 0 or key == "log_likelihood"
    assert got["observation_end"] == "1998-06-30" and got["customers"] == 2357
    with Store(cdnow / "tsunagu.duckdb") as store:
        rows = store.query(
            "SELECT count(*), sum(expected_purchases), sum(expected_value), min(horizon_days) "
            "FROM ltv_predictions"
        )[0]
        assert rows[0] == 2357 and rows[3] == 180
        assert rows[1] == pytest.approx(got["expected_purchases"], rel=1e-6)
        assert rows[2] == pytest.approx(got["expected_value"], rel=1e-6)
        # Who bought often and lately is expected to buy more than who bought once long ago.
        keen, lapsed = store.query(
            "SELECT (SELECT expected_purchases FROM ltv_predictions ORDER BY frequency DESC, "
            "recency DESC LIMIT 1), (SELECT expected_purchases FROM ltv_predictions "
            "WHERE frequency = 0 ORDER BY t DESC LIMIT 1)"
        )[0]
        assert keen > 10 * lapsed


def test_bad_calibration_ends_name_the_field(cdnow: Path) -> None:
    late = CliRunner().invoke(
        app, ["--data-dir", str(cdnow), "ltv", "evaluate", "--calibration-end", "1998-06-30"]
    )
    assert late.exit_code == 2 and "calibration_end" in late.output
    early = CliRunner().invoke(
        app, ["--data-dir", str(cdnow), "ltv", "evaluate", "--calibration-end", "1996-01-01"]
    )
    assert early.exit_code == 2 and "calibration_end" in early.output
    nonsense = CliRunner().invoke(
        app, ["--data-dir", str(cdnow), "ltv", "evaluate", "--calibration-end", "soon"]
    )
    assert nonsense.exit_code == 2 and "calibration_end" in nonsense.output


def test_a_store_without_purchases_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path), "ltv", "fit"])
    assert result.exit_code == 2 and "no purchases" in result.output


def pos_file(
    path: Path, *, customers: int, seed: int, free: bool = False, regular: bool = False
) -> Path:
    """Purchases as BG/NBD imagines them (a rate per customer, a chance to drop out after each
    purchase), or, `regular`, every customer once a month without fail."""
    rng = random.Random(seed)
    rows = ["customer_id,date,quantity,amount"]
    start = date(2026, 1, 1)
    for c in range(customers):
        day = start + timedelta(days=rng.randrange(60))
        rate = rng.gammavariate(0.8, 1 / 20)  # purchases per day
        while day <= date(2026, 9, 30):
            free_order = free and c % 7 == 0 and len(rows) % 2 == 0
            amount = 0 if free_order else rng.randint(500, 20000)
            rows.append(f"C{c:04d},{day},1,{amount}")
            if regular:
                day += timedelta(days=30)
                continue
            if rng.random() < 0.2:
                break
            day += timedelta(days=1 + int(rng.expovariate(rate)))
    path.write_text("\n".join(rows) + "\n")
    return path


def import_pos(data: Path, file: Path) -> None:
    result = CliRunner().invoke(app, ["--data-dir", str(data), "import", "pos", str(file)])
    assert result.exit_code == 0, result.output


def test_free_orders_do_not_break_the_spend_model(tmp_path: Path) -> None:
    """Orders fully paid by a coupon (amount 0) leave some customers a mean spend of zero: the
    Gamma-Gamma model is fitted on the others, and every customer still gets a value."""
    data = tmp_path / "data"
    file = pos_file(tmp_path / "pos.csv", customers=400, seed=3, free=True)
    # Till sales without a member card: one-off buyers nobody can recognise, left out.
    with file.open("a") as out:
        out.writelines(f",2026-03-{1 + i % 28:02d},1,{1000 + i}\n" for i in range(50))
    import_pos(data, file)
    got = run(data, "ltv", "fit")
    assert got["customers"] == 400 and got["p"] is not None
    with Store(data / "tsunagu.duckdb") as store:
        assert store.scalar("SELECT count(*) FROM ltv_predictions WHERE expected_value > 0") == 400


def test_purchases_without_drop_out_say_the_model_does_not_fit(tmp_path: Path) -> None:
    data = tmp_path / "data"
    import_pos(data, pos_file(tmp_path / "pos.csv", customers=50, seed=4, regular=True))
    result = CliRunner().invoke(app, ["--data-dir", str(data), "ltv", "fit", "--json"])
    assert result.exit_code == 2 and "degenerate" in result.output
    assert result.stdout == ""  # no half-written JSON

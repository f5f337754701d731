"""The campaign statistics against the same figures computed per customer, and on simulated
experiments whose effect is known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sp

from tsunagu.activation.stats import Moments, cuped, difference, srm


def moments(y: np.ndarray, x: np.ndarray | None = None) -> Moments:
    x = np.zeros_like(y) if x is None else x
    return Moments(len(y), y.sum(), (y * y).sum(), x.sum(), (x * x).sum(), (x * y).sum())


def test_differences_match_welchs_test_per_customer() -> None:
    rng = np.random.default_rng(1)
    control, treatment = rng.gamma(2, 3000, 4000), rng.gamma(2, 3000, 4000) + 300
    got = difference(moments(treatment), moments(control))
    assert got is not None
    welch = sp.ttest_ind(treatment, control, equal_var=False)
    assert got.difference == pytest.approx(treatment.mean() - control.mean())
    assert got.p_value == pytest.approx(welch.pvalue, rel=0.02)
    se = np.sqrt(treatment.var(ddof=1) / 4000 + control.var(ddof=1) / 4000)
    assert got.ci_high - got.ci_low == pytest.approx(2 * 1.959964 * se)


def test_intervals_cover_the_true_effect_about_95_times_in_100() -> None:
    rng = np.random.default_rng(2)
    covered = 0
    for _ in range(400):
        c = (rng.random(2000) < 0.10).astype(float)
        t = (rng.random(2000) < 0.12).astype(float)
        d = difference(moments(t), moments(c))
        assert d is not None
        covered += d.ci_low <= 0.02 <= d.ci_high
    assert 0.92 <= covered / 400 <= 0.98


def test_the_sample_ratio_mismatch_is_flagged_at_a_thousandth() -> None:
    assert srm([9000, 1000], [0.9, 0.1])[1]
    p, ok = srm([9000, 1200], [0.9, 0.1])
    assert not ok and p < 0.001
    assert srm([900, 100], [0.9, 0.1])[0] == pytest.approx(
        sp.chisquare([900, 100], [900, 100]).pvalue
    )


def test_cuped_keeps_the_effect_and_narrows_its_interval() -> None:
    rng = np.random.default_rng(3)
    n = 5000
    pre_c, pre_t = rng.gamma(2, 4000, n), rng.gamma(2, 4000, n)
    y_c = 0.8 * pre_c + rng.normal(0, 2000, n)
    y_t = 0.8 * pre_t + rng.normal(0, 2000, n) + 500
    plain = difference(moments(y_t), moments(y_c))
    theta, (adj_c, adj_t) = cuped([moments(y_c, pre_c), moments(y_t, pre_t)])
    adjusted = difference(adj_t, adj_c)
    assert plain is not None and adjusted is not None
    x, y = np.r_[pre_c, pre_t], np.r_[y_c, y_t]
    assert theta == pytest.approx(np.cov(x, y)[0, 1] / x.var(ddof=1))
    # The same adjustment per customer gives the same figures.
    by_hand_t = y_t - theta * (pre_t - x.mean())
    assert adj_t.mean == pytest.approx(by_hand_t.mean())
    assert adj_t.var == pytest.approx(by_hand_t.var(ddof=1), rel=1e-6)
    assert adjusted.ci_low <= 500 <= adjusted.ci_high
    assert adjusted.ci_high - adjusted.ci_low < 0.5 * (plain.ci_high - plain.ci_low)


def test_variants_come_from_the_ids_alone_in_the_shares_meant() -> None:
    from tsunagu.activation.campaigns import variant_of

    ids = [f"p_{n:06d}" for n in range(20000)]
    first = [variant_of("cmp_1", p, 0.1, ("a", "b")) for p in ids]
    assert first == [variant_of("cmp_1", p, 0.1, ("a", "b")) for p in ids]
    counts = [first.count(v) for v in ("control", "a", "b")]
    assert srm(counts, [0.1, 0.45, 0.45])[1]
    other = [variant_of("cmp_2", p, 0.1, ("a", "b")) for p in ids]
    assert sum(x != y for x, y in zip(first, other, strict=True)) > 5000  # campaigns differ

"""The statistics of a measured campaign, pure and from sufficient statistics (counts, sums,
sums of squares and products per variant), so that the SQL returns a row per variant and
nothing per customer crosses into Python.

- A difference of rates or of means between a treatment and the control, with a 95% interval
  and a two-sided p-value by the normal approximation (Welch's standard error: no equal
  variances assumed).
- The sample-ratio-mismatch check: Pearson's chi-square of the customers per variant against
  the shares meant, flagged at p < 0.001 (as GrowthBook and Eppo do).
- CUPED (Deng et al. 2013): each customer's outcome less theta times their pre-period covariate's
  distance from its mean, theta = cov(x, y) / var(x) pooled over every variant; the adjusted
  difference has the same expectation and, where the pre-period predicts the outcome, a
  narrower interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.special import ndtr
from scipy.stats import chi2

Z95 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class Moments:
    """Of one variant: customers, and the sums of the outcome y and the covariate x."""

    n: int
    sy: float = 0.0
    syy: float = 0.0
    sx: float = 0.0
    sxx: float = 0.0
    sxy: float = 0.0

    @property
    def mean(self) -> float:
        return self.sy / self.n if self.n else 0.0

    @property
    def var(self) -> float:
        if self.n < 2:
            return 0.0
        return max(self.syy - self.sy * self.sy / self.n, 0.0) / (self.n - 1)


@dataclass(frozen=True, slots=True)
class Difference:
    difference: float
    ci_low: float
    ci_high: float
    p_value: float


def difference(treatment: Moments, control: Moments) -> Difference | None:
    """Treatment's mean less the control's (a rate is the mean of 0/1 outcomes)."""
    if treatment.n < 2 or control.n < 2:
        return None
    d = treatment.mean - control.mean
    se = math.sqrt(treatment.var / treatment.n + control.var / control.n)
    if se == 0:
        return Difference(d, d, d, 1.0 if d == 0 else 0.0)
    p = 2 * (1 - float(ndtr(abs(d) / se)))
    return Difference(d, d - Z95 * se, d + Z95 * se, p)


def srm(counts: list[int], shares: list[float]) -> tuple[float, bool]:
    """(p-value, fine): customers per variant against the shares meant."""
    total = sum(counts)
    if total == 0 or len(counts) < 2:
        return 1.0, True
    stat = sum(
        (o - total * s) ** 2 / (total * s) for o, s in zip(counts, shares, strict=True) if s > 0
    )
    p = float(chi2.sf(stat, len(counts) - 1))
    return p, p >= 0.001


def cuped(variants: list[Moments]) -> tuple[float, list[Moments]]:
    """(theta, each variant's outcome adjusted by its covariate) from the pooled moments."""
    n = sum(v.n for v in variants)
    if n < 2:
        return 0.0, variants
    sx, sy = sum(v.sx for v in variants), sum(v.sy for v in variants)
    var_x = sum(v.sxx for v in variants) - sx * sx / n
    cov = sum(v.sxy for v in variants) - sx * sy / n
    theta = cov / var_x if var_x > 0 else 0.0
    mean_x = sx / n
    adjusted = []
    for v in variants:
        # y' = y - theta (x - mean_x): its sums from the moments.
        sy_ = v.sy - theta * (v.sx - v.n * mean_x)
        syy_ = (
            v.syy
            - 2 * theta * (v.sxy - mean_x * v.sy)
            + theta * theta * (v.sxx - 2 * mean_x * v.sx + v.n * mean_x * mean_x)
        )
        adjusted.append(Moments(v.n, sy_, syy_))
    return theta, adjusted

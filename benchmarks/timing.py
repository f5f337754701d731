"""What the benchmark scripts share (they run as `python benchmarks/NAME.py`, so this folder is
on their import path)."""

from __future__ import annotations


def percentile(values: list[float], q: float) -> float:
    """The `q` quantile of `values` (seconds), nearest rank, in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000

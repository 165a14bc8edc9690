"""Tests of one method against another over seeds, and Holm's correction across a table.

``compare`` runs every method with the same seeds, and a seed fixes the run's random
streams (prompt draws, replay, probe samples), so two methods with one seed share their
first rounds exactly until their allocations part. Their final utilities are correlated
by design (common random numbers); the paired test over seeds uses that and the Welch
test ignores it. Both are reported; docs/method.md §8 says why the paired test fits the design.
"""

from __future__ import annotations

import math

import numpy as np


def _test(res, diff: float, **extra) -> dict[str, float | list[float]]:
    ci = res.confidence_interval(0.95)
    return {**extra, "diff": diff, "ci95": [float(ci.low), float(ci.high)], "t": float(res.statistic), "p": float(res.pvalue)}


def welch(a: list[float], b: list[float]) -> dict[str, float | list[float]]:
    """Mean(a) − mean(b), its 95 % interval, Welch's t and two-sided p (nan where either
    side has fewer than two values or neither varies)."""
    from scipy import stats

    diff = float(np.mean(a) - np.mean(b)) if len(a) and len(b) else math.nan
    if len(a) < 2 or len(b) < 2 or np.var(a) + np.var(b) == 0:
        return {"diff": diff, "ci95": [math.nan, math.nan], "t": math.nan, "p": math.nan}
    return _test(stats.ttest_ind(a, b, equal_var=False), diff)


def paired(a: list[float], b: list[float]) -> dict[str, float | list[float]]:
    """Mean of a_i − b_i over matched seeds, its 95 % interval, paired t and two-sided p
    (nan with fewer than two pairs or differences that never vary)."""
    from scipy import stats

    if len(a) != len(b):
        raise ValueError(f"paired test needs matched seeds: {len(a)} against {len(b)} values")
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    diff = float(d.mean()) if d.size else math.nan
    if d.size < 2 or np.var(d) == 0:
        return {"n": int(d.size), "diff": diff, "ci95": [math.nan, math.nan], "t": math.nan, "p": math.nan}
    return _test(stats.ttest_rel(a, b), diff, n=int(d.size))


def holm(ps: list[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (nan entries stay nan and do
    not count towards the family's size)."""
    finite = sorted((p, i) for i, p in enumerate(ps) if not math.isnan(p))
    out = [math.nan] * len(ps)
    running = 0.0
    for rank, (p, i) in enumerate(finite):
        running = max(running, min(1.0, (len(finite) - rank) * p))
        out[i] = running
    return out


def vs_read_cells(vs_read: dict[str, dict]) -> list[str]:
    """The table cells of one method against read: read − method with its paired 95 %
    interval, then paired and Welch p with their Holm values; "—" where a test is undefined
    (one seed, or differences that never vary)."""

    def num(x: float, fmt: str) -> str:
        return "—" if math.isnan(x) else format(x, fmt)

    pt, wt = vs_read["paired"], vs_read["welch"]
    interval = "" if math.isnan(pt["ci95"][0]) else f" [{pt['ci95'][0]:+.2f}, {pt['ci95'][1]:+.2f}]"
    return [f"{num(pt['diff'], '+.2f')}{interval}",
            f"{num(pt['p'], '.3g')} ({num(pt['p_holm'], '.3g')})", f"{num(wt['p'], '.3g')} ({num(wt['p_holm'], '.3g')})"]


def mean_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean of ``values`` and its 95 % t-interval (the mean itself with one value)."""
    from scipy import stats

    m = float(np.mean(values))
    if len(values) < 2:
        return m, m, m
    h = float(stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(len(values)))
    return m, m - h, m + h

"""Reward and spillover of a round (docs/method.md §6) as plain functions.

Scores are on the 0–100 scale; the requirement r is on the simplex.
"""

from __future__ import annotations

from collections.abc import Sequence


def essential(requirement: Sequence[float], top_k: int) -> list[int]:
    """Indices of C_ess: the top-k capabilities of r with non-zero weight (ties by order)."""
    order = sorted(range(len(requirement)), key=lambda i: (-requirement[i], i))
    return [i for i in order[:top_k] if requirement[i] > 0]


def gain(requirement: Sequence[float], before: Sequence[float], after: Sequence[float]) -> float:
    """r · (s' − s): the requirement-weighted score change."""
    return sum(r * (a - b) for r, b, a in zip(requirement, before, after, strict=True))


def spillover(requirement: Sequence[float], before: Sequence[float], after: Sequence[float], top_k: int) -> float:
    """Σ_{c ∈ top-k(r)} r_c · max(0, s_c − s'_c): harm to the capabilities the task needs."""
    return sum(requirement[i] * max(0.0, before[i] - after[i]) for i in essential(requirement, top_k))


def reward(
    requirement: Sequence[float],
    before: Sequence[float],
    after: Sequence[float],
    cost_tokens: int,
    beta: float,
    lambda_per_token: float,
    top_k: int,
) -> tuple[float, float, float, float]:
    """R = r·Δs − β·Spill − λ·cost. Returns (R, gain, spillover, cost penalty)."""
    g = gain(requirement, before, after)
    spill = spillover(requirement, before, after, top_k)
    cost = lambda_per_token * cost_tokens
    return g - beta * spill - cost, g, spill, cost


def floor_scores(
    requirement: Sequence[float],
    capabilities: Sequence[str],
    initial: Sequence[float],
    listed: dict[str, float],
    drop: float | None,
    top_k: int,
) -> dict[str, float]:
    """The score each guarded capability must keep: the ``listed`` floors, and with ``drop``
    each essential capability's initial score minus ``drop`` (the higher where both apply)."""
    out = dict(listed)
    if drop is not None:
        for i in essential(requirement, top_k):
            c = capabilities[i]
            out[c] = max(out.get(c, 0.0), initial[i] - drop)
    return out


def broken_floors(floors: dict[str, float], scores: dict[str, float], intervals: dict[str, tuple[float, float]]) -> list[str]:
    """The capabilities whose whole 95 % interval (the score where there is none) lies below
    their floor: a fall the probe's noise does not explain."""
    return [c for c, f in floors.items() if intervals.get(c, (scores[c], scores[c]))[1] < f]

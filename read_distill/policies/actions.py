"""The candidate action set A(tau, w_prev) of docs/method.md §6, and the simplex it lives on.

The round loop offers these actions to the policy each round; policies and the oracle's
search put their own allocations on the same rounded simplex with ``normalise``.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from read_distill.types import Allocation


def normalise(weights: np.ndarray | list[float]) -> Allocation:
    """Project non-negative weights onto the simplex; rounded so duplicates compare equal."""
    w = np.clip(np.asarray(weights, dtype=float), 0.0, None)
    total = w.sum()
    if total <= 0:
        raise ValueError("an allocation needs some positive weight")
    return tuple(round(float(x), 6) for x in w / total)


def candidate_actions(
    requirement: tuple[float, ...],
    previous: Allocation | None,
    top_k: int = 3,
    grid: tuple[float, ...] = (0.25, 0.5, 0.75),
    max_actions: int = 50,
) -> list[Allocation]:
    """A(tau, w_prev): sparse actions on the top-k capabilities of r, then local moves.

    (i) one-hots on each of the top-k capabilities and, for each pair of them, the mixes
    ``(g, 1 - g)`` for g in ``grid``; (ii) perturbations of ``previous`` that move one grid
    step (the smallest grid value) of mass from one capability to another. Deduplicated,
    order-preserving, at most ``max_actions``.
    """
    n = len(requirement)
    r = np.asarray(requirement, dtype=float)
    # Stable order: highest requirement first, ties by position.
    top = [int(i) for i in sorted(range(n), key=lambda i: (-r[i], i))[: min(top_k, n)] if r[i] > 0]
    actions: list[Allocation] = []
    for i in top:
        actions.append(normalise(np.eye(n)[i]))
    for i, j in combinations(top, 2):
        for g in grid:
            w = np.zeros(n)
            w[i], w[j] = g, 1.0 - g
            actions.append(normalise(w))
    if previous is not None:
        step = min(grid)
        prev = np.asarray(previous, dtype=float)
        actions.append(normalise(prev))
        for i in range(n):
            if prev[i] <= 0:
                continue
            for j in range(n):
                if i == j:
                    continue
                w = prev.copy()
                moved = min(step, w[i])
                w[i] -= moved
                w[j] += moved
                actions.append(normalise(w))
    seen: set[Allocation] = set()
    unique = [a for a in actions if not (a in seen or seen.add(a))]
    return unique[:max_actions]

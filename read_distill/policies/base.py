"""The policy interface and the candidate action set A(tau, w_prev) of SPEC §6."""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations
from typing import Any, Protocol

import numpy as np

from read_distill.types import Allocation, Context, PilotResult

#: ``pilot(allocation, tokens)`` runs a short distillation from S0 with a fixed allocation
#: on ``tokens`` of the profiling budget (charged as ``profiling`` overhead, outside B; cut
#: to what is left of it) and returns what it observed. Policies that pre-train or
#: grid-search call it in ``prepare`` and decide how to split the budget.
Pilot = Callable[[Allocation, int], PilotResult]


class Policy(Protocol):
    """Chooses the allocation of each round and learns from the rewards it gets."""

    #: What the last ``select`` saw and decided (e.g. UCB mean and bonus), for the report.
    info: dict[str, Any]

    def prepare(self, pilot: Pilot, actions: list[Allocation], rng: np.random.Generator) -> None:
        """Called once before round 0; may spend the profiling budget through ``pilot``."""
        ...

    def select(self, context: Context, actions: list[Allocation], rng: np.random.Generator) -> Allocation:
        """Pick this round's allocation, normally one of ``actions``."""
        ...

    def update(self, context: Context, allocation: Allocation, reward: float) -> None:
        """Learn from the reward of ``allocation`` chosen in ``context``."""
        ...

    def on_dev_eval(self, proxy_rewards: list[float], utility_gains: list[float], improved: bool) -> None:
        """At a dev checkpoint: cumulative proxy reward and observed dev-utility gain at
        each checkpoint so far (for reward calibration), and whether utility improved."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state; ``load_state_dict`` restores it exactly."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""
        ...


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

"""The policy interface: what the round loop asks of a policy and what it hands one.

Interfaces only, like ``backends/base.py``; their data (``Allocation``, ``Context``,
``PilotResult``) is the shared vocabulary of ``read_distill.types``, and the action set
they are offered is built in ``policies/actions.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from read_distill.types import Allocation, Context, PilotResult

#: ``pilot(allocation, tokens)`` runs a short distillation from S0 with a fixed allocation
#: on ``tokens`` of the profiling budget (charged as ``profiling`` overhead, outside B; cut
#: to what is left of it) and returns what it observed. The round loop builds it; policies
#: that pre-train or grid-search call it in ``prepare`` and decide how to split the budget.
Pilot = Callable[[Allocation, int], PilotResult]


class Policy(Protocol):
    """Chooses the allocation of each round and learns from the rewards it gets."""

    #: What the last ``select`` saw and decided (e.g. UCB mean and bonus), for the report.
    info: dict[str, Any]

    def prepare(self, pilot: Pilot, actions: list[Allocation], rng: np.random.Generator) -> None:
        """Called once before round 0 when the run has a profiling budget
        (``policy.profiling_tokens`` > 0), which it may spend through ``pilot``."""
        ...

    def select(self, context: Context, actions: list[Allocation], rng: np.random.Generator) -> Allocation:
        """Pick this round's allocation, normally one of ``actions``."""
        ...

    def update(self, context: Context, allocation: Allocation, reward: float, rolled_back: bool = False) -> None:
        """Learn from the reward of ``allocation`` chosen in ``context``. ``rolled_back``: the
        round broke a capability floor and the student was restored to before it (its
        tokens stay spent; ``reward`` carries the floors' penalty): do not play it again."""
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

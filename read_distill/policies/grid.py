"""Grid-searched static allocation (docs/method.md §7): the best fixed allocation in A(tau).

``prepare`` runs one short pilot per candidate action on the profiling budget and keeps
the allocation with the highest pilot reward; every round then plays it. Without a
pilot (``policy.profiling_tokens = 0``) there is nothing to search on, so the policy
falls back to task-static (w = r) and says so in ``info``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from read_distill.config import PolicyConfig
from read_distill.policies.actions import normalise
from read_distill.policies.base import Pilot
from read_distill.types import Allocation, Context


class GridPolicy:
    """Plays the candidate action whose pilot run earned the most reward."""

    def __init__(self, capabilities: tuple[str, ...], requirement: tuple[float, ...], config: PolicyConfig):
        self.capabilities = tuple(capabilities)
        self.requirement = tuple(float(x) for x in requirement)
        self.profiling_tokens = config.profiling_tokens
        self.info: dict[str, Any] = {}
        self._allocation: Allocation = normalise(self.requirement)
        self._pilot_rewards: list[float] = []
        self._searched = False

    def prepare(self, pilot: Pilot | None, actions: list[Allocation], rng: np.random.Generator) -> None:
        """One pilot per candidate on an equal share of the profiling budget; ties keep
        the earlier (sparser, higher-r) candidate."""
        if pilot is None or not actions:
            return
        tokens = self.profiling_tokens // len(actions)
        self._pilot_rewards = [float(pilot(a, tokens).reward) for a in actions]
        self._allocation = tuple(float(x) for x in actions[int(np.argmax(self._pilot_rewards))])
        self._searched = True

    def select(self, context: Context, actions: list[Allocation], rng: np.random.Generator) -> Allocation:
        """The allocation chosen in ``prepare`` (task-static without a pilot)."""
        self.info = {
            "allocation": list(self._allocation),
            "searched": self._searched,
            "fallback": None if self._searched else "task_static: no pilot (policy.profiling_tokens = 0)",
            "pilot_rewards": list(self._pilot_rewards),
        }
        return self._allocation

    def update(self, context: Context, allocation: Allocation, reward: float, rolled_back: bool = False) -> None:
        """A static allocation ignores rewards."""

    def on_dev_eval(self, proxy_rewards: list[float], utility_gains: list[float], improved: bool) -> None:
        """A static allocation ignores dev evaluations."""

    def state_dict(self) -> dict[str, Any]:
        """The chosen allocation and the pilot rewards behind it (pilots are not re-run)."""
        return {"allocation": list(self._allocation), "pilot_rewards": self._pilot_rewards, "searched": self._searched}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""
        self._allocation = tuple(float(x) for x in state["allocation"])
        self._pilot_rewards = [float(x) for x in state["pilot_rewards"]]
        self._searched = bool(state["searched"])

"""Policies that do not learn: uniform, task-static, one-hot, fixed, random, schedule.

They are the allocation-schedule baselines of SPEC §7 (and the oracle's replay). Each
keeps at most a round counter, so their state is tiny.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from read_distill.config import PolicyConfig
from read_distill.policies.base import Pilot, normalise
from read_distill.types import Allocation, Context


def _by_name(capabilities: tuple[str, ...], weights: dict[str, float], what: str) -> Allocation:
    """An allocation from a capability -> weight mapping; unknown names are errors."""
    unknown = sorted(set(weights) - set(capabilities))
    if unknown:
        raise ValueError(f"{what}: unknown capabilities {unknown}; expected some of {list(capabilities)}")
    return normalise([float(weights.get(c, 0.0)) for c in capabilities])


class _StaticPolicy:
    """Shared no-op learning methods; subclasses set ``self._allocation``."""

    _allocation: Allocation

    def __init__(self, capabilities: tuple[str, ...], requirement: tuple[float, ...], config: PolicyConfig):
        self.capabilities = tuple(capabilities)
        self.requirement = tuple(float(x) for x in requirement)
        self.config = config
        self.info: dict[str, Any] = {}

    def prepare(self, pilot: Pilot | None, actions: list[Allocation], rng: np.random.Generator) -> None:
        """Static policies spend no profiling budget."""

    def select(self, context: Context, actions: list[Allocation], rng: np.random.Generator) -> Allocation:
        """The policy's fixed allocation, whatever the candidates."""
        self.info = {"allocation": list(self._allocation)}
        return self._allocation

    def update(self, context: Context, allocation: Allocation, reward: float) -> None:
        """Static policies ignore rewards."""

    def on_dev_eval(self, proxy_rewards: list[float], utility_gains: list[float], improved: bool) -> None:
        """Static policies ignore dev evaluations."""

    def state_dict(self) -> dict[str, Any]:
        """Nothing to save: the allocation follows from the constructor arguments."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to restore."""


class UniformPolicy(_StaticPolicy):
    """Uniform static: w = 1/|C| every round."""

    def __init__(self, capabilities: tuple[str, ...], requirement: tuple[float, ...], config: PolicyConfig):
        super().__init__(capabilities, requirement, config)
        self._allocation = normalise(np.ones(len(capabilities)))


class TaskStaticPolicy(_StaticPolicy):
    """Task-static: w = r every round."""

    def __init__(self, capabilities: tuple[str, ...], requirement: tuple[float, ...], config: PolicyConfig):
        super().__init__(capabilities, requirement, config)
        self._allocation = normalise(self.requirement)


class OneHotPolicy(_StaticPolicy):
    """One-hot: the whole budget on ``config.capability`` (default: the top capability of r)."""

    def __init__(self, capabilities: tuple[str, ...], requirement: tuple[float, ...], config: PolicyConfig):
        super().__init__(capabilities, requirement, config)
        if config.capability is not None:
            if config.capability not in capabilities:
                raise ValueError(f"one_hot: unknown capability {config.capability!r}; expected one of {list(capabilities)}")
            index = capabilities.index(config.capability)
        else:
            # First maximum, so ties resolve in capability order like ``essential``.
            index = int(np.argmax(self.requirement))
        self._allocation = normalise(np.eye(len(capabilities))[index])


class FixedPolicy(_StaticPolicy):
    """Fixed: the allocation ``config.weights`` (capability -> weight) every round."""

    def __init__(self, capabilities: tuple[str, ...], requirement: tuple[float, ...], config: PolicyConfig):
        super().__init__(capabilities, requirement, config)
        if not config.weights:
            raise ValueError("fixed: policy.weights must give capability -> weight")
        self._allocation = _by_name(self.capabilities, config.weights, "fixed: policy.weights")


class RandomPolicy(_StaticPolicy):
    """Random: a uniformly drawn candidate action each round (from the round's rng)."""

    def __init__(self, capabilities: tuple[str, ...], requirement: tuple[float, ...], config: PolicyConfig):
        super().__init__(capabilities, requirement, config)
        self._allocation = normalise(np.ones(len(capabilities)))

    def select(self, context: Context, actions: list[Allocation], rng: np.random.Generator) -> Allocation:
        """One of ``actions``, drawn uniformly; uniform if there are none."""
        choice = actions[int(rng.integers(len(actions)))] if actions else self._allocation
        self.info = {"allocation": list(choice), "n_actions": len(actions)}
        return choice


class SchedulePolicy(_StaticPolicy):
    """Replays ``config.schedule``: one allocation (capability -> weight) per round.

    Used by the oracle to run its precomputed best schedule through the real loop. The
    round index is the number of rewards received, so a re-selected round (after a
    resume) replays the same entry.
    """

    def __init__(self, capabilities: tuple[str, ...], requirement: tuple[float, ...], config: PolicyConfig):
        super().__init__(capabilities, requirement, config)
        if not config.schedule:
            raise ValueError("schedule: policy.schedule must list one allocation per round")
        self._schedule = [_by_name(self.capabilities, w, f"schedule: round {t}") for t, w in enumerate(config.schedule)]
        self._round = 0

    def select(self, context: Context, actions: list[Allocation], rng: np.random.Generator) -> Allocation:
        """The schedule's entry for this round; a schedule shorter than the run is an error."""
        if self._round >= len(self._schedule):
            raise ValueError(f"schedule: no allocation for round {self._round} (schedule has {len(self._schedule)})")
        allocation = self._schedule[self._round]
        self.info = {"allocation": list(allocation), "round": self._round}
        return allocation

    def update(self, context: Context, allocation: Allocation, reward: float) -> None:
        """Advance to the next entry."""
        self._round += 1

    def state_dict(self) -> dict[str, Any]:
        """The next round's index."""
        return {"round": self._round}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the round index."""
        self._round = int(state["round"])

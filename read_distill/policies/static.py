"""Policies that do not learn: the allocation-schedule baselines of docs/method.md §7.

One class, ``StaticPolicy``, plays whatever its *pick* gives it each round and ignores
rewards. The functions below build it with the pick of each baseline; the registry
(``read_distill.policies.POLICIES``) names them, one per policy name: uniform,
task_static, one_hot, fixed, random and schedule (the oracle's replay).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from read_distill.config import PolicyConfig
from read_distill.policies.actions import normalise
from read_distill.policies.base import Pilot
from read_distill.types import Allocation, Context

#: ``pick(t, actions, rng)``: the allocation of round ``t``, drawn from the round's
#: candidate ``actions`` and ``rng`` if it needs them, and what it looked at besides (for
#: ``info``). A pick holds no state: the round index is all a static policy remembers.
Pick = Callable[[int, list[Allocation], np.random.Generator], tuple[Allocation, dict[str, Any]]]


class StaticPolicy:
    """Plays its pick's allocation every round and learns nothing.

    The round index is the number of rewards received, so a re-selected round (after a
    resume) picks the same allocation.
    """

    def __init__(self, pick: Pick) -> None:
        self._pick = pick
        self._round = 0
        self.info: dict[str, Any] = {}

    def prepare(self, pilot: Pilot, actions: list[Allocation], rng: np.random.Generator) -> None:
        """Static policies spend no profiling budget."""

    def select(self, context: Context, actions: list[Allocation], rng: np.random.Generator) -> Allocation:
        """The pick's allocation for this round."""
        allocation, seen = self._pick(self._round, actions, rng)
        self.info = {"allocation": list(allocation), **seen}
        return allocation

    def update(self, context: Context, allocation: Allocation, reward: float, rolled_back: bool = False) -> None:
        """Ignore the reward (a fixed schedule cannot avoid a rolled-back action); the next select is the next round's."""
        self._round += 1

    def on_dev_eval(self, proxy_rewards: list[float], utility_gains: list[float], improved: bool) -> None:
        """Static policies ignore dev evaluations."""

    def state_dict(self) -> dict[str, Any]:
        """The next round's index; the pick follows from the constructor arguments."""
        return {"round": self._round}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the round index."""
        self._round = int(state["round"])


def _every_round(allocation: Allocation) -> Pick:
    """The pick that plays ``allocation`` whatever the round."""
    return lambda t, actions, rng: (allocation, {})


def _by_name(capabilities: tuple[str, ...], weights: dict[str, float], what: str) -> Allocation:
    """An allocation from a capability -> weight mapping; unknown names are errors."""
    unknown = sorted(set(weights) - set(capabilities))
    if unknown:
        raise ValueError(f"{what}: unknown capabilities {unknown}; expected some of {list(capabilities)}")
    return normalise([float(weights.get(c, 0.0)) for c in capabilities])


def uniform(capabilities: tuple[str, ...], requirement: tuple[float, ...], config: PolicyConfig) -> StaticPolicy:
    """Uniform static: w = 1/|C| every round."""
    return StaticPolicy(_every_round(normalise(np.ones(len(capabilities)))))


def task_static(capabilities: tuple[str, ...], requirement: tuple[float, ...], config: PolicyConfig) -> StaticPolicy:
    """Task-static: w = r every round."""
    return StaticPolicy(_every_round(normalise([float(x) for x in requirement])))


def one_hot(capabilities: tuple[str, ...], requirement: tuple[float, ...], config: PolicyConfig) -> StaticPolicy:
    """One-hot: the whole budget on ``config.capability`` (default: the top capability of r)."""
    if config.capability is not None:
        if config.capability not in capabilities:
            raise ValueError(f"one_hot: unknown capability {config.capability!r}; expected one of {list(capabilities)}")
        index = capabilities.index(config.capability)
    else:
        # First maximum, so ties resolve in capability order like ``essential``.
        index = int(np.argmax([float(x) for x in requirement]))
    return StaticPolicy(_every_round(normalise(np.eye(len(capabilities))[index])))


def fixed(capabilities: tuple[str, ...], requirement: tuple[float, ...], config: PolicyConfig) -> StaticPolicy:
    """Fixed: the allocation ``config.weights`` (capability -> weight) every round."""
    if not config.weights:
        raise ValueError("fixed: policy.weights must give capability -> weight")
    return StaticPolicy(_every_round(_by_name(tuple(capabilities), config.weights, "fixed: policy.weights")))


def random(capabilities: tuple[str, ...], requirement: tuple[float, ...], config: PolicyConfig) -> StaticPolicy:
    """Random: a uniformly drawn candidate action each round (from the round's rng);
    uniform in a round without candidates."""
    fallback = normalise(np.ones(len(capabilities)))

    def pick(t: int, actions: list[Allocation], rng: np.random.Generator) -> tuple[Allocation, dict[str, Any]]:
        choice = actions[int(rng.integers(len(actions)))] if actions else fallback
        return choice, {"n_actions": len(actions)}

    return StaticPolicy(pick)


def schedule(capabilities: tuple[str, ...], requirement: tuple[float, ...], config: PolicyConfig) -> StaticPolicy:
    """Replays ``config.schedule``: one allocation (capability -> weight) per round.

    The oracle runs its precomputed best schedule through the real loop with it. A
    schedule shorter than the run is an error in the first round it does not cover.
    """
    if not config.schedule:
        raise ValueError("schedule: policy.schedule must list one allocation per round")
    entries = [_by_name(tuple(capabilities), w, f"schedule: round {t}") for t, w in enumerate(config.schedule)]

    def pick(t: int, actions: list[Allocation], rng: np.random.Generator) -> tuple[Allocation, dict[str, Any]]:
        if t >= len(entries):
            raise ValueError(f"schedule: no allocation for round {t} (schedule has {len(entries)})")
        return entries[t], {"round": t}

    return StaticPolicy(pick)

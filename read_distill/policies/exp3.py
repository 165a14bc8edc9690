"""EXP3 over capabilities, in the style of online data mixing (Albalak et al., 2023).

The allocation is the EXP3 mixture itself, p_t = (1 - gamma_t) softmax(L) + gamma_t / |C|,
with exploration gamma_t = min(1, gamma_0 / sqrt(t + 1)) decaying over rounds. Every
capability is trained on each round (in proportion p_c), so every arm gets feedback:
its reward is its requirement-weighted score change r_c * delta s_c, importance-weighted
by its share, i.e. the round's gain per unit of share spent on c. The score changes are
read from the next round's profile, so an update is applied at the next ``select``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from read_distill.config import PolicyConfig
from read_distill.policies.actions import normalise
from read_distill.policies.base import Pilot
from read_distill.types import Allocation, Context

#: Shares below this are treated as this in the importance weight, so a nearly-starved
#: capability cannot produce an unbounded reward estimate from probe noise.
_MIN_SHARE = 0.02


class Exp3Policy:
    """EXP3 with decaying exploration over capabilities; the allocation is p_t."""

    def __init__(self, capabilities: tuple[str, ...], requirement: tuple[float, ...], config: PolicyConfig):
        self.capabilities = tuple(capabilities)
        self.requirement = np.asarray(requirement, dtype=float)
        self.gamma0 = float(config.exp3_gamma)
        self.info: dict[str, Any] = {}
        n = len(capabilities)
        self._log_weights = np.zeros(n)
        self._t = 0
        # Running max |reward estimate|: EXP3 needs rewards on a bounded scale and the
        # score scale of a world is not known in advance.
        self._scale = 0.0
        # (allocation, profile before, rolled back) of the last round, waiting for its score changes.
        self._pending: tuple[list[float], list[float], bool] | None = None

    def _gamma(self) -> float:
        return min(1.0, self.gamma0 / np.sqrt(self._t + 1))

    def probabilities(self) -> np.ndarray:
        """The current mixture p_t (on the simplex)."""
        n = len(self.capabilities)
        logits = self._log_weights - self._log_weights.max()
        soft = np.exp(logits) / np.exp(logits).sum()
        gamma = self._gamma()
        return (1.0 - gamma) * soft + gamma / n

    def prepare(self, pilot: Pilot | None, actions: list[Allocation], rng: np.random.Generator) -> None:
        """EXP3 spends no profiling budget."""

    def _apply_pending(self, context: Context) -> None:
        if self._pending is None:
            return
        shares, before = (np.asarray(v, dtype=float) for v in self._pending[:2])
        rolled_back = self._pending[2]
        self._pending = None
        delta = np.asarray(context.profile_frac, dtype=float) - before
        estimate = self.requirement * delta / np.maximum(shares, _MIN_SHARE)
        if rolled_back:
            estimate = -(shares > 0).astype(float) * max(self._scale, float(np.abs(estimate).max()), 1.0)
        self._scale = max(self._scale, float(np.abs(estimate).max()))
        if self._scale <= 0:
            return
        # Step size gamma_t (not the textbook gamma/K): estimates are already scaled to
        # [-1, 1], and a 20-round run needs the mixture to move within its horizon.
        self._log_weights += self._gamma() * estimate / self._scale
        self._t += 1

    def select(self, context: Context, actions: list[Allocation], rng: np.random.Generator) -> Allocation:
        """Apply the last round's feedback, then return the mixture p_t."""
        self._apply_pending(context)
        p = self.probabilities()
        allocation = normalise(p)
        self.info = {"gamma": self._gamma(), "probabilities": list(allocation), "t": self._t}
        return allocation

    def update(self, context: Context, allocation: Allocation, reward: float, rolled_back: bool = False) -> None:
        """Remember the round; its per-capability score changes arrive with the next context.
        A rolled-back round changed nothing the next context shows: every capability it
        trained gets the lowest reward estimate instead."""
        self._pending = ([float(x) for x in allocation], [float(x) for x in context.profile_frac], rolled_back)

    def on_dev_eval(self, proxy_rewards: list[float], utility_gains: list[float], improved: bool) -> None:
        """EXP3 does not use dev evaluations."""

    def state_dict(self) -> dict[str, Any]:
        """Log-weights, round count, reward scale and the pending round."""
        return {
            "log_weights": [float(x) for x in self._log_weights],
            "t": self._t,
            "scale": self._scale,
            "pending": None if self._pending is None else [list(self._pending[0]), list(self._pending[1]), self._pending[2]],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""
        self._log_weights = np.asarray(state["log_weights"], dtype=float)
        self._t = int(state["t"])
        self._scale = float(state["scale"])
        pending = state["pending"]
        # A pending round saved before floors existed has no rolled-back flag.
        self._pending = None if pending is None else ([float(x) for x in pending[0]], [float(x) for x in pending[1]], bool(pending[2:] and pending[2]))

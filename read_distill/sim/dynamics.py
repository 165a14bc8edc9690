"""Known dynamics for simulated worlds: how a profile moves when tokens are spent.

A dynamics is any callable ``dynamics(profile, spend_tokens, spent_tokens, rng) ->
new_profile`` over numpy arrays indexed by capability (0–100 scale). ``TransferDynamics``
is the built-in family: a budget-dependent transfer matrix, saturation toward a ceiling
and noise; ``GatedDynamics`` adds prerequisites on top of any dynamics,
``ForgettingDynamics`` the loss of capabilities a round leaves out, and ``ShockDynamics``
a transient set back of the whole profile when training starts.

A dynamics sees no state but ``profile`` and ``spent_tokens`` (what the simulated student
keeps and saves, and what the oracle's model carries): anything that depends on how far
the run has got (``ShockDynamics``' transient) is a function of the tokens spent so far,
so a resumed run and the oracle's search step exactly like an uninterrupted run.

A dynamics whose ``batched`` attribute is true also accepts arrays with leading batch
dimensions (``(..., n)`` profiles, spends and cumulative spends) and moves each row
independently; the oracle uses that to simulate thousands of schedules at once. The
utilities here (``LinearUtility``, ``MinUtility``, ``GeometricUtility``,
``ProductUtility``) are callables of one profile returning a float.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class TransferDynamics:
    """Cumulative transfer curves fitted through two measured transfer matrices.

    ``T_small[i][j]`` (``T_large[i][j]``) is the score change of capability j after
    spending ``budget_small`` (``budget_large``) tokens on capability i alone. Each entry
    becomes a curve F_ij(x) = A·(1 − e^(−x/τ)) + C·(x/budget_large)², the unique member
    of that family through both points: the saturating term gives diminishing returns, the
    quadratic one interference that grows with budget (τ = budget_large / ``tau_frac``).
    Spending s_i on top of S_i already spent moves j by Σ_i F_ij(S_i + s_i) − F_ij(S_i).
    Positive moves shrink as a score nears its ``ceiling`` (``saturation`` = exponent;
    0 disables), scores stay in [0, 100], and each round with any spend adds Gaussian
    noise of ``noise_std`` points to every capability.
    """

    batched = True

    def __init__(
        self,
        T_small: Sequence[Sequence[float]],
        T_large: Sequence[Sequence[float]],
        budget_small: float,
        budget_large: float,
        ceiling: Sequence[float] | float = 100.0,
        saturation: float = 0.0,
        noise_std: float = 0.0,
        tau_frac: float = 3.0,
    ) -> None:
        t1, t2 = np.asarray(T_small, dtype=float), np.asarray(T_large, dtype=float)
        if t1.shape != t2.shape or t1.shape[0] != t1.shape[1]:
            raise ValueError(f"transfer matrices must be square and alike, got {t1.shape} and {t2.shape}")
        if not 0 < budget_small < budget_large:
            raise ValueError("need 0 < budget_small < budget_large")
        self.budget_large = float(budget_large)
        self.tau = budget_large / tau_frac
        g1, g2 = self._g(budget_small), self._g(budget_large)
        h1, h2 = self._h(budget_small), self._h(budget_large)
        det = g1 * h2 - g2 * h1
        self.A = (t1 * h2 - t2 * h1) / det
        self.C = (g1 * t2 - g2 * t1) / det
        self.ceiling = np.broadcast_to(np.asarray(ceiling, dtype=float), (t1.shape[0],)).copy()
        self.saturation = saturation
        self.noise_std = noise_std

    def _g(self, x):
        return 1.0 - np.exp(-np.asarray(x, dtype=float) / self.tau)

    def _h(self, x):
        return (np.asarray(x, dtype=float) / self.budget_large) ** 2

    def curve(self, spent_tokens: np.ndarray) -> np.ndarray:
        """F_ij at the cumulative spend of each source capability i (matrix i × j, after
        any leading batch dimensions of ``spent_tokens``)."""
        x = np.asarray(spent_tokens, dtype=float)[..., :, None]
        return self.A * self._g(x) + self.C * self._h(x)

    def __call__(self, profile, spend_tokens, spent_tokens, rng: np.random.Generator) -> np.ndarray:
        profile = np.asarray(profile, dtype=float)
        spent = np.asarray(spent_tokens, dtype=float)
        spend = np.asarray(spend_tokens, dtype=float)
        delta = (self.curve(spent + spend) - self.curve(spent)).sum(axis=-2)
        if self.saturation > 0:
            room = np.clip((self.ceiling - profile) / np.maximum(self.ceiling, 1e-9), 0.0, 1.0)
            delta = np.where(delta > 0, delta * room**self.saturation, delta)
        if self.noise_std > 0:
            noise = rng.normal(0.0, self.noise_std, size=delta.shape)
            delta = delta + np.where(spend.sum(axis=-1, keepdims=True) > 0, noise, 0.0)
        return np.clip(profile + delta, 0.0, 100.0)


class GatedDynamics:
    """Prerequisites on top of a base dynamics: a capability learns only once another is known.

    ``gates`` maps a gated capability index to ``(prerequisite index, threshold, width)``.
    The base dynamics' positive move of the gated capability is multiplied by
    sigmoid((s_prerequisite − threshold) / width) at the profile the round starts from;
    negative moves pass through. Tokens spent on a gated capability too early still
    advance its (saturating) transfer curve, so they are wasted, not deferred — the best
    schedule therefore changes over time: prerequisite first, then the gated capability.
    """

    def __init__(self, base, gates: dict[int, tuple[int, float, float]]) -> None:
        self.base = base
        self.gates = dict(gates)
        self.batched = bool(getattr(base, "batched", False))

    def __call__(self, profile, spend_tokens, spent_tokens, rng: np.random.Generator) -> np.ndarray:
        profile = np.asarray(profile, dtype=float)
        delta = np.asarray(self.base(profile, spend_tokens, spent_tokens, rng), dtype=float) - profile
        for target, (prerequisite, threshold, width) in self.gates.items():
            gate = 1.0 / (1.0 + np.exp(-(profile[..., prerequisite] - threshold) / width))
            moved = delta[..., target]
            delta[..., target] = np.where(moved > 0, moved * gate, moved)
        return np.clip(profile + delta, 0.0, 100.0)


def _noise_holder(dynamics):
    """The innermost dynamics of a chain of wrappers (the one that draws the noise)."""
    while hasattr(dynamics, "base"):
        dynamics = dynamics.base
    return dynamics


#: A wrapper's ``noise_std`` is its innermost dynamics' (the benchmark scales it there).
_WRAPPED_NOISE_STD = property(
    lambda self: _noise_holder(self).noise_std,
    lambda self, value: setattr(_noise_holder(self), "noise_std", value),
)


class ForgettingDynamics:
    """Forgetting on top of a base dynamics: what a round leaves out, the student loses.

    A capability whose share of the round's spend is below ``threshold`` is *neglected*
    in proportion, ν_c = max(0, 1 − share_c / threshold) (a one-hot round neglects every
    other capability fully; a share of at least ``threshold`` keeps a capability). It
    loses the fraction 1 − exp(−``rate`` · ν_c · round spend) of its score above
    ``floor`` (0 by default: in proportion to the score), taken at the profile the round
    starts from and subtracted from the base dynamics' move, so the loss grows with the
    round's token spend and a whole budget spent elsewhere wears a capability down
    geometrically. Rounds that spend nothing forget nothing.
    """

    def __init__(self, base, rate: float, threshold: float = 0.25, floor: Sequence[float] | float = 0.0) -> None:
        if rate < 0 or not 0 < threshold <= 1:
            raise ValueError("need rate >= 0 and 0 < threshold <= 1")
        self.base = base
        self.rate = float(rate)
        self.threshold = float(threshold)
        self.floor = np.asarray(floor, dtype=float)
        self.batched = bool(getattr(base, "batched", False))

    noise_std = _WRAPPED_NOISE_STD

    def lost(self, profile, spend_tokens) -> np.ndarray:
        """The points each capability forgets in a round (before the base move)."""
        profile = np.asarray(profile, dtype=float)
        spend = np.asarray(spend_tokens, dtype=float)
        total = spend.sum(axis=-1, keepdims=True)
        share = spend / np.where(total > 0, total, 1.0)
        neglect = np.clip(1.0 - share / self.threshold, 0.0, 1.0)
        return np.clip(profile - self.floor, 0.0, None) * (1.0 - np.exp(-self.rate * neglect * total))

    def __call__(self, profile, spend_tokens, spent_tokens, rng: np.random.Generator) -> np.ndarray:
        profile = np.asarray(profile, dtype=float)
        moved = np.asarray(self.base(profile, spend_tokens, spent_tokens, rng), dtype=float)
        return np.clip(moved - self.lost(profile, spend_tokens), 0.0, 100.0)


class ShockDynamics:
    """A transient set back of every capability when training starts, whatever is trained.

    The student's true profile is its *underlying* profile u (what the base dynamics
    moves) times 1 − d(X), where X is the number of tokens spent so far (all capabilities
    together) and d is the damage fraction per capability:

        d(0) = 0,   d(X) = ``fraction`` · ``recovery`` ^ max(0, X / ``period_tokens`` − 1) for X > 0,

    so the first ``period_tokens`` of training knock each capability down to 1 − fraction
    of its score (in proportion to the score, like an optimizer or format transient), and
    the damage then decays geometrically, by the factor ``recovery`` per further period,
    whatever is trained. The allocation has no part in it: learning and forgetting run on
    u, and the transient only changes what probes and the task see until it has decayed.
    d is a function of the cumulative spend, which both the simulated student and the
    oracle's model carry, so resume and search see it exactly. A world whose budget and
    round count make one round ``period_tokens`` long sees the shock in round 1 and the
    recovery over the following rounds.
    """

    def __init__(self, base, fraction: Sequence[float] | float, period_tokens: float, recovery: float) -> None:
        self.base = base
        self.fraction = np.asarray(fraction, dtype=float)
        if np.any(self.fraction < 0) or np.any(self.fraction >= 1):
            raise ValueError("shock fractions must be in [0, 1)")
        if period_tokens <= 0 or not 0 <= recovery < 1:
            raise ValueError("need period_tokens > 0 and 0 <= recovery < 1")
        self.period_tokens = float(period_tokens)
        self.recovery = float(recovery)
        self.batched = bool(getattr(base, "batched", False))

    noise_std = _WRAPPED_NOISE_STD

    def damage(self, spent_tokens) -> np.ndarray:
        """d(X) per capability at the cumulative spend ``spent_tokens`` (…, n)."""
        total = np.asarray(spent_tokens, dtype=float).sum(axis=-1, keepdims=True)
        periods = np.maximum(0.0, total / self.period_tokens - 1.0)
        return np.where(total > 0, self.fraction * self.recovery**periods, 0.0)

    def __call__(self, profile, spend_tokens, spent_tokens, rng: np.random.Generator) -> np.ndarray:
        profile = np.asarray(profile, dtype=float)
        spent = np.asarray(spent_tokens, dtype=float)
        underlying = profile / (1.0 - self.damage(spent))
        moved = np.asarray(self.base(underlying, spend_tokens, spent, rng), dtype=float)
        return np.clip(moved * (1.0 - self.damage(spent + np.asarray(spend_tokens, dtype=float))), 0.0, 100.0)


class LinearUtility:
    """U = r·s (the default task utility of a simulated world)."""

    def __init__(self, weights: Sequence[float]) -> None:
        self.weights = np.asarray(weights, dtype=float)

    def __call__(self, profile) -> float:
        return float(self.weights @ np.asarray(profile, dtype=float))


class MinUtility:
    """U = min over ``indices`` of s_i: a task that fails unless every listed capability holds."""

    def __init__(self, indices: Sequence[int]) -> None:
        self.indices = list(indices)

    def __call__(self, profile) -> float:
        return float(np.min(np.asarray(profile, dtype=float)[self.indices]))


class GeometricUtility:
    """U = Π s_i^{w_i} (weights normalised to sum 1): capabilities that multiply, so the
    task rewards raising the weakest of them more than a linear utility would."""

    def __init__(self, weights: Sequence[float]) -> None:
        w = np.asarray(weights, dtype=float)
        self.weights = w / w.sum()

    def __call__(self, profile) -> float:
        s = np.clip(np.asarray(profile, dtype=float), 1e-9, None)
        return float(np.exp(self.weights @ np.log(s)))


class ProductUtility:
    """U = 100 · Π s_i / 100 over ``indices``: a task that needs every listed capability in
    the same answer, each succeeding independently (joint success on a 0–100 scale)."""

    def __init__(self, indices: Sequence[int]) -> None:
        self.indices = list(indices)

    def __call__(self, profile) -> float:
        s = np.clip(np.asarray(profile, dtype=float)[self.indices], 0.0, 100.0) / 100.0
        return float(100.0 * np.prod(s))

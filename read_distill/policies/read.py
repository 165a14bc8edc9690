"""ReAD's allocation policy: an ensemble-UCB contextual bandit over allocations (SPEC §6).

Each round the policy refits a reward model on everything it has seen and plays
argmax_w mu(x, w) + kappa_t * sigma(x, w) over the round's candidate actions.

* **Reward model.** J two-layer MLPs (tanh, ``hidden`` units) with a linear skip
  connection, each trained with Adam on a bootstrap resample of the buffer to predict R
  from features of [x ; w]. With 5-20 data points the skip term carries most of the
  fit (R is close to linear in w within a round: the spend on each capability moves
  the profile roughly in proportion) and the hidden layer adds the curvature (saturation,
  spillover's max(0, .)). Features are [x ; w ; w * (1 - s) ; prior]: the third block is the
  share spent on each capability times its headroom, so the model can learn diminishing
  returns that a plain [x ; w] input would need many rounds to find. Inputs and targets
  are standardised on the buffer; context features are shrunk (``_CONTEXT_SCALE``) so
  that, under the weight penalty, the model explains reward by the allocation before it
  explains it by the slowly drifting context it has barely seen vary.
* **Uncertainty.** sigma = standard deviation across the ensemble (bootstrap resample,
  random init, and a random anchor per member for its skip weights).
* **Exploration.** kappa starts at ``config.kappa`` and is multiplied by
  ``config.kappa_decay`` whenever a dev checkpoint shows no improvement; the bonus is
  further scaled by the remaining budget fraction b/B, because information bought late
  has few rounds left to pay off.
* **Warm-up.** The warm-up is designed, not random: while fewer than ``warmup_rounds``
  rounds have been played, the policy first plays the one-hots on the top-k
  capabilities of r (each identifies one capability's value, the coefficient a reward
  model that is near-linear in w needs most) and then UCB. One-hots already covered by
  pre-training pilots are skipped.
* **Prior.** A last feature r . (w * (1 - s)) (requirement-weighted headroom spent on)
  has a larger prior scale and a positive prior mean: before data, the top capabilities
  of r rank first, and data must outweigh that to move the policy elsewhere.
* **Noise.** The probe intervals give the reward noise, and consecutive rewards share a
  probe (their noise telescopes); the fit uses that covariance (see ``_noise``).
* **Calibration.** Raw rewards are kept; at each dev checkpoint an affine map from
  cumulative proxy reward to dev-utility gain is fitted and applied to *all* buffered
  rewards (the reference code rescaled only future rewards, mixing two scales).
* **Determinism.** The state is the buffer, kappa and the calibration map; the models
  are refitted from it with the rng of the round, so a resumed run chooses exactly as an
  uninterrupted one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from read_distill.config import PolicyConfig
from read_distill.policies.base import Pilot
from read_distill.types import Allocation, Context

#: Multiplier on standardised context features (see the module docstring).
_CONTEXT_SCALE = 0.3
#: Multiplier on the standardised prior feature r . (w * (1 - s)) and the prior mean of its
#: skip weight: before data, reward is expected to grow with requirement-weighted
#: headroom spent on, which ranks the top capabilities of r first.
_PRIOR_SCALE = 2.0
_PRIOR_ANCHOR = 0.5
#: Spread of each member's random anchor around the prior mean of its skip weights.
_ANCHOR_STD = 0.3
#: Probe noise (per probe, requirement-weighted) in target-std units, clipped to this
#: range; the default when probes report no intervals.
_NOISE_RANGE = (0.2, 1.5)
_DEFAULT_NOISE = 0.35
#: Variance of per-round training noise, in units of the probe noise variance.
_PROCESS_NOISE = 0.25
#: Adam steps per refit, learning rate, and L2 weights of the hidden and skip layers.
_STEPS = 150
_LEARNING_RATE = 0.03
_L2_HIDDEN = 1.0
_L2_LINEAR = 1.0


class RewardEnsemble:
    """J two-layer MLPs with a linear skip, trained jointly (batched over members) by Adam.

    Member j minimises the bootstrap-weighted Gaussian negative log-likelihood of the
    residuals under the reward-noise covariance, plus a weight penalty that pulls its
    skip weights toward its own random anchor (a randomised prior) and its hidden weights
    toward zero. Features and targets are standardised on the buffer and the noise is
    expressed in target-std units, so the data outweigh the prior only once there are
    enough of them for the noise level.
    ``predict`` returns each member's prediction in reward units, shape (J, M).
    """

    def __init__(self, members: int, hidden: int):
        self.members = members
        self.hidden = hidden

    def fit(
        self,
        features: np.ndarray,
        targets: np.ndarray,
        rng: np.random.Generator,
        column_scale: np.ndarray,
        anchor_mean: np.ndarray,
        noise_shape: np.ndarray,
        noise_std: float | None,
        hidden_columns: np.ndarray,
    ) -> None:
        """Fit every member on its own bootstrap resample of (features, targets).

        ``column_scale`` multiplies each standardised feature (its prior scale under the
        penalty); ``anchor_mean`` is the prior mean of each skip weight. The reward noise
        has covariance ``noise_std**2 * noise_shape`` (reward units; ``None``: unknown).
        The hidden layer sees only ``hidden_columns`` (the skip layer sees every feature).
        """
        n, d = features.shape
        self._x_mean = features.mean(axis=0)
        std = features.std(axis=0)
        # Features constant on the buffer carry no information; zero them out rather than
        # divide by ~0 (a new value at prediction time then has no effect either).
        self._x_scale = np.where(std > 1e-9, column_scale / np.where(std > 1e-9, std, 1.0), 0.0)
        self._y_mean = float(targets.mean())
        y_std = float(targets.std())
        self._y_std = y_std if y_std > 1e-12 else 1.0
        x = (features - self._x_mean) * self._x_scale
        y = (targets - self._y_mean) / self._y_std
        self._hidden_columns = hidden_columns
        xh = x[:, hidden_columns]
        dh = xh.shape[1]

        j, h = self.members, self.hidden
        # The data term is the Gaussian log-likelihood resid' P resid with the precision P
        # of the reward noise (in target-std units). Its whitened rows z = L' resid
        # (P = L L') are independent, so the bootstrap resamples those: member j weighs
        # row k by its multinomial count c_jk, i.e. uses P_j = L diag(c_j) L'.
        sigma = _DEFAULT_NOISE if noise_std is None or y_std <= 1e-12 else float(np.clip(noise_std / y_std, *_NOISE_RANGE))
        precision = np.linalg.inv(noise_shape) / sigma**2
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=j).astype(float)  # (J, N)
        chol = np.linalg.cholesky(precision)
        data_weight = 2.0 * np.einsum("nk,jk,mk->jnm", chol, counts, chol)  # (J, N, N)
        # One flat parameter vector with named views, so Adam is a handful of array ops.
        sizes = {"w1": dh * j * h, "b1": j * h, "w2": j * h, "b2": j, "u": j * d}
        theta = np.zeros(sum(sizes.values()))
        grad = np.zeros_like(theta)
        views, gviews, offset = {}, {}, 0
        shapes = {"w1": (dh, j * h), "b1": (j * h,), "w2": (j, h), "b2": (j,), "u": (j, d)}
        for k, size in sizes.items():
            views[k] = theta[offset : offset + size].reshape(shapes[k])
            gviews[k] = grad[offset : offset + size].reshape(shapes[k])
            offset += size
        views["w1"][...] = rng.normal(0.0, 1.0 / np.sqrt(max(dh, 1)), size=(dh, j * h))
        views["b1"][...] = rng.normal(0.0, 0.1, size=j * h)
        views["w2"][...] = rng.normal(0.0, 0.1 / np.sqrt(h), size=(j, h))
        anchor = anchor_mean[None, :] + rng.normal(0.0, _ANCHOR_STD, size=(j, d))
        views["u"][...] = anchor
        w1, b1, w2, b2, u = (views[k] for k in ("w1", "b1", "w2", "b2", "u"))
        first, second = np.zeros_like(theta), np.zeros_like(theta)
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        for step in range(1, _STEPS + 1):
            hid = np.tanh(xh @ w1 + b1).reshape(n, j, h)
            out = (hid * w2).sum(axis=2) + x @ u.T + b2  # (N, J)
            err = np.einsum("jnm,mj->nj", data_weight, out - y[:, None])
            dpre = (err[:, :, None] * w2) * (1.0 - hid**2)
            dpre2 = dpre.reshape(n, j * h)
            gviews["w1"][...] = xh.T @ dpre2 + 2 * _L2_HIDDEN * w1
            gviews["b1"][...] = dpre2.sum(axis=0)
            gviews["w2"][...] = (hid * err[:, :, None]).sum(axis=0) + 2 * _L2_HIDDEN * w2
            gviews["b2"][...] = err.sum(axis=0)
            gviews["u"][...] = err.T @ x + 2 * _L2_LINEAR * (u - anchor)
            first *= beta1
            first += (1 - beta1) * grad
            second *= beta2
            second += (1 - beta2) * grad * grad
            theta -= (_LEARNING_RATE / (1 - beta1**step)) * first / (np.sqrt(second / (1 - beta2**step)) + eps)
        self._params = (w1, b1, w2, b2, u)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Every member's prediction for each row of ``features``: shape (J, M)."""
        w1, b1, w2, b2, u = self._params
        j, h = w2.shape
        x = (features - self._x_mean) * self._x_scale
        hid = np.tanh(x[:, self._hidden_columns] @ w1 + b1).reshape(x.shape[0], j, h)
        out = (hid * w2).sum(axis=2) + x @ u.T + b2
        return out.T * self._y_std + self._y_mean


class ReadPolicy:
    """ReAD: ensemble-UCB over candidate allocations with designed warm-up and calibration."""

    def __init__(self, capabilities: tuple[str, ...], requirement: tuple[float, ...], config: PolicyConfig):
        self.capabilities = tuple(capabilities)
        self.requirement = tuple(float(x) for x in requirement)
        self.config = config
        self.info: dict[str, Any] = {}
        self.kappa = self._initial_kappa()
        #: Every observation: {"context", "allocation", "reward" (raw), "pilot"}.
        self.history: list[dict[str, Any]] = []
        #: Affine calibration R -> slope * R + offset, applied to every buffered reward.
        self.calibration = {"slope": 1.0, "offset": 0.0}

    def _initial_kappa(self) -> float:
        return float(self.config.kappa)

    # -- data -------------------------------------------------------------------------

    def _rounds_seen(self) -> int:
        return sum(1 for h in self.history if not h["pilot"])

    def _features(self, context: Context, allocations: np.ndarray, pilot: bool) -> np.ndarray:
        """Rows of [x ; pilot ; w ; w * (1 - s) ; r . (w * (1 - s))] for M allocations."""
        x = np.asarray(context.vector(), dtype=float)
        headroom = 1.0 - np.asarray(context.profile_frac, dtype=float)
        m = allocations.shape[0]
        ctx = np.broadcast_to(np.append(x, float(pilot)), (m, x.size + 1))
        spent_headroom = allocations * headroom
        prior = spent_headroom @ np.asarray(self.requirement)
        return np.hstack([ctx, allocations, spent_headroom, prior[:, None]])

    def _noise(self) -> tuple[np.ndarray, float | None]:
        """Shape and scale of the reward noise covariance over the buffer.

        A probe interval of width W (95 %) means a score noise of W / 3.92, so the
        requirement-weighted probe noise is sigma = sqrt(sum_c r_c^2 sigma_c^2) (times the
        calibration slope). R_t = r . (s_{t+1} - s_t) - ... shares the probe s_{t+1} with
        R_{t+1}, with opposite signs: consecutive rounds' noise is (e_{t+1} - e_t), which
        telescopes. Its covariance is sigma^2 (2 on the diagonal, -1 next to it), plus
        ``_PROCESS_NOISE`` sigma^2 of independent training noise per round; pilots are
        independent draws. Fitting with this covariance is fitting the profile
        trajectory rather than its noisy differences: a run of k rounds with the same
        allocation pins its value down with noise ~ sigma / k instead of sigma / sqrt(k).
        """
        online = [i for i, h in enumerate(self.history) if not h["pilot"]]
        n = len(self.history)
        shape = np.eye(n) * 2.0
        for a, b in zip(online, online[1:]):
            shape[a, b] = shape[b, a] = -1.0
        shape[online, online] += _PROCESS_NOISE
        widths = [Context.from_json(self.history[i]["context"]).profile_width_frac for i in online]
        widths = [w for w in widths if len(w) == len(self.requirement) and any(w)]
        if not widths:
            return shape, None
        sigma_c = 100.0 * np.mean(widths, axis=0) / 3.92
        sigma = float(np.sqrt(np.sum((np.asarray(self.requirement) * sigma_c) ** 2)))
        return shape, sigma * self.calibration["slope"]

    def calibrated_rewards(self) -> np.ndarray:
        """Every buffered reward under the current calibration map."""
        raw = np.asarray([h["reward"] for h in self.history], dtype=float)
        return self.calibration["slope"] * raw + self.calibration["offset"]

    def _fit(self, rng: np.random.Generator) -> RewardEnsemble | None:
        if len(self.history) < 2:
            return None
        rows = [
            self._features(Context.from_json(h["context"]), np.asarray([h["allocation"]], dtype=float), h["pilot"])
            for h in self.history
        ]
        features = np.vstack(rows)
        d, n_cap = features.shape[1], len(self.capabilities)
        column_scale = np.ones(d)
        column_scale[: d - 2 * n_cap - 1] = _CONTEXT_SCALE
        column_scale[-1] = _PRIOR_SCALE
        anchor_mean = np.zeros(d)
        anchor_mean[-1] = _PRIOR_ANCHOR
        targets = self.calibrated_rewards()
        model = RewardEnsemble(self.config.ensemble_size, self.config.hidden)
        # The hidden layer sees what interacts with the allocation: b/B, w, w * (1 - s) and
        # the prior feature; the skip layer sees the whole context too.
        remaining_column = len(self.capabilities) * 2
        hidden_columns = np.r_[remaining_column, d - 2 * n_cap - 1 : d]
        model.fit(features, targets, rng, column_scale, anchor_mean, *self._noise(), hidden_columns)
        return model

    # -- the Protocol -----------------------------------------------------------------

    def prepare(self, pilot: Pilot | None, actions: list[Allocation], rng: np.random.Generator) -> None:
        """Pre-train: with a pilot, run one per top-k one-hot and buffer the results."""
        if pilot is None:
            return
        for allocation in self._designed(actions):
            context, reward = pilot(allocation)
            self.history.append(
                {"context": context.to_json(), "allocation": list(allocation), "reward": float(reward), "pilot": True}
            )

    def _designed(self, actions: list[Allocation]) -> list[Allocation]:
        """The one-hots on the top-k capabilities of r that are among ``actions``."""
        n = len(self.capabilities)
        order = sorted(range(n), key=lambda i: (-self.requirement[i], i))
        top = [i for i in order[: self.config.top_k] if self.requirement[i] > 0]
        wanted = [tuple(1.0 if k == i else 0.0 for k in range(n)) for i in top]
        available = {tuple(float(v) for v in a) for a in actions}
        return [w for w in wanted if w in available]

    def _scores(self, context: Context, actions: list[Allocation], rng: np.random.Generator):
        model = self._fit(rng)
        if model is None:
            return None
        candidates = np.asarray(actions, dtype=float)
        predictions = model.predict(self._features(context, candidates, pilot=False))
        return predictions.mean(axis=0), predictions.std(axis=0)

    def select(self, context: Context, actions: list[Allocation], rng: np.random.Generator) -> Allocation:
        """Designed warm-up for the first rounds, then UCB over ``actions``."""
        if not actions:
            raise ValueError("read: the candidate action set is empty")
        kappa = self.kappa * float(context.remaining_frac)
        warmup = self._rounds_seen() < self.config.warmup_rounds
        if warmup:
            tried = {tuple(h["allocation"]) for h in self.history}
            untried = [a for a in self._designed(actions) if tuple(float(v) for v in a) not in tried]
            if untried:
                self.info = {"warmup": True, "designed": True, "kappa": kappa, "n_actions": len(actions)}
                return untried[0]
        scores = self._scores(context, actions, rng)
        if scores is None:
            choice = actions[int(rng.integers(len(actions)))]
            self.info = {"warmup": warmup, "designed": False, "kappa": kappa, "n_actions": len(actions)}
            return choice
        mu, sigma = scores
        best = int(np.argmax(mu + kappa * sigma))
        self.info = {
            "warmup": warmup,
            "designed": False,
            "mu": float(mu[best]),
            "sigma": float(sigma[best]),
            "kappa": kappa,
            "n_actions": len(actions),
        }
        return actions[best]

    def update(self, context: Context, allocation: Allocation, reward: float) -> None:
        """Buffer the round's (context, allocation, raw reward)."""
        self.history.append(
            {"context": context.to_json(), "allocation": [float(x) for x in allocation], "reward": float(reward), "pilot": False}
        )

    def on_dev_eval(self, proxy_rewards: list[float], utility_gains: list[float], improved: bool) -> None:
        """Shrink kappa on a stall; refit the calibration map on all checkpoints so far.

        The map is least squares of utility gain on cumulative proxy reward. A cumulative
        intercept b is spread over the rounds seen so far, so the calibrated rewards of
        the buffer sum to slope * P + b, the fitted utility gain. A map with a
        non-positive slope (too few or too noisy checkpoints) is not used: it would turn
        the bandit against its own reward.
        """
        if not improved:
            self.kappa *= float(self.config.kappa_decay)
        p = np.asarray(proxy_rewards, dtype=float)
        u = np.asarray(utility_gains, dtype=float)
        if p.size == 0 or self._rounds_seen() == 0:
            return
        if p.size == 1 or np.ptp(p) <= 1e-12:
            slope, intercept = (float(u.sum() / p.sum()) if abs(p.sum()) > 1e-12 else 0.0), 0.0
        else:
            slope, intercept = (float(v) for v in np.polyfit(p, u, 1))
        if slope > 0:
            self.calibration = {"slope": slope, "offset": intercept / self._rounds_seen()}

    def state_dict(self) -> dict[str, Any]:
        """Buffer, kappa and calibration map: enough to refit the same models."""
        return {"history": self.history, "kappa": self.kappa, "calibration": dict(self.calibration)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""
        self.history = [dict(h) for h in state["history"]]
        self.kappa = float(state["kappa"])
        self.calibration = {k: float(v) for k, v in state["calibration"].items()}


class GreedyPolicy(ReadPolicy):
    """Greedy one-step (SPEC §7): ReAD with kappa = 0, i.e. argmax of the ensemble mean."""

    def _initial_kappa(self) -> float:
        return 0.0

"""ReAD's allocation policy: an ensemble-UCB contextual bandit over allocations (docs/method.md §6).

Each round the policy refits a reward model on everything it has seen and plays
argmax_w mu(x, w) + kappa_t * sigma(x, w) over the round's candidate actions.

* **What the model predicts.** The reward R = r . ds - beta * Spill - lambda * cost is a
  *known* function of the per-capability score change ds of the round (docs/method.md §6). So
  each ensemble member predicts the vector ds (one output per capability the reward
  reads: r_c > 0) from [x ; w], and R follows from the formula. A round then gives one
  observation per needed capability instead of one scalar, and the model can tell
  *which* capability moved: that is what separates "math data raises math" from "the
  mix raised something". The cost term is the same for every candidate of a round
  (the round's quota is fixed), so it does not enter the argmax. The ds of round t is
  read from consecutive contexts (s_{t+1} - s_t), so it needs no extra runner data.
* **Members.** Each member is a two-layer MLP (``hidden`` tanh units) with a linear skip
  on [w ; w * u] (u = 1 - b/B, the budget spent: the per-share effect drifts as returns
  diminish); its first layer is drawn at random and fixed, and its output layer (skip
  and hidden weights) is the exact Bayesian posterior solution under its prior and the
  noise covariance below, fitted on a bootstrap resample of the (whitened) history with
  a randomly drawn prior anchor ("randomised prior functions"). Exact solutions are
  cheap (tens of small linear solves per round), deterministic and do not depend on an
  optimiser's step count. The hidden units are taken as differences
  tanh(W [w; x]) - tanh(W [0; x]) so that spending nothing predicts no change, a
  structural fact of training.
* **Prior.** The skip weight of w_i on capability c is "training on c raises c": its
  prior mean is a pooled estimate m of the per-share self-gain (shared by all needed
  capabilities, estimated from all of them at once, so it is precise long before any
  single capability's is), its prior std is sqrt(m^2 + se(m)^2). Cross-capability
  transfer (the weight of w_i, i != c, on c) has prior mean o, a pooled estimate of what
  a share spent on *other* capabilities does to c, fitted jointly with m and shrunk to 0
  where the two cannot be told apart: on real models it is negative (what a round leaves
  out is forgotten), and without it the model could not represent forgetting at all.
  Transfer, drift and hidden terms have smaller prior scales (``_OFF``, ``_DRIFT``,
  ``_HIDDEN``). This is what identifies a capability's own value from rounds that
  trained a mixture: a change of s_c is attributed to the share spent on c unless the
  data say otherwise.
* **Pilots (optional profiling budget).** ``prepare`` runs one one-hot pilot per
  needed capability, each on an equal share of ``policy.profiling_tokens`` (overhead,
  outside B), and keeps the ds each measured (scaled to a round's spend) as data of the
  model (docs/method.md §6 pilots: pre-training data, profiling overhead outside B). A pilot is its own run from
  S0, so its closing probe and training noise are its own, scaled with its change; its
  change is measured from the run's initial probe, though, which every pilot and the
  first round share, and the noise covariance says so. A pilot is a designed
  measurement, so every ensemble member sees it (only the run's rounds are
  bootstrapped). With pilots the model exists before round 0, so the warm-up is skipped.
* **Noise.** A probe interval of width W (95 %) is a score noise of W / 3.92 per
  capability. ds_t = s_{t+1} - s_t shares the probe s_{t+1} with ds_{t+1}, with opposite
  signs, so the noise covariance over the buffer is sigma_c^2 (2 on the diagonal, -1 next
  to it) plus ``_PROCESS_NOISE`` sigma_c^2 of independent training noise. Fitting with it
  is fitting the profile trajectory: k rounds of one allocation pin its value down with
  noise ~ sigma / k, not sigma / sqrt(k). The posterior (and so sigma of the ensemble, and
  the UCB bonus) therefore scales with the measured signal-to-noise of the probes.
* **Candidates.** The runner's A(tau, w_prev) plus, because a model of ds can value any
  allocation, r itself, the one-hots on every capability with r_c > 0 (not only the
  top-k: a task that needs five capabilities gets actions on all five) and the
  half-way mixtures between r and each of them and between r and w_prev; of these, only
  those that give every needed capability at least ``min_share_frac`` of its share in r.
  A round that leaves out a needed capability makes a real student forget it, and a task
  that needs several capabilities in one answer is lost when one of them falls, which
  r . ds does not see; the floor bounds that harm, while share can still move freely
  between needed capabilities and to capabilities the task does not name (transfer).
  The capability the task answers in (``Context.answer_form``: the one needed capability
  whose probes are graded like the task, e.g. tool_use for a task answered by a tool
  call) keeps its whole share: its probe tests it on its own items, so a probe at its
  ceiling does not say the task needs no more of it.
* **Warm-up.** Without pilots the first rounds play r (task-static), the best allocation
  known before any data: one-hot warm-ups on weak capabilities cost a whole round each.
  The first ``warmup_rounds`` rounds are burn-in: the model does not learn from their
  score changes, which on real models carry transients of starting to train that do not
  depend on the allocation (a fresh optimizer's first steps, the switch to teacher text:
  the whole profile can fall in round 1 and recover over the next rounds). The first
  round after them still plays r: with the prior above it identifies every needed
  capability's self-gain at once.
* **Deviations are earned.** The UCB argmax runs only over the candidates whose predicted
  advantage over r (per member: reward - reward of r) has a mean of at least
  ``_EARN_Z`` times its spread over members: the requirement mix (``task_static``) is the
  default, and the bonus explores only into allocations the model expects, with some
  confidence, to do better than it.
* **Exploration.** kappa starts at ``config.kappa`` and is multiplied by
  ``config.kappa_decay`` whenever a dev checkpoint shows no improvement; the bonus is
  further scaled by the remaining budget fraction b/B, because information bought late
  has few rounds left to pay off.
* **Calibration.** Raw rewards are kept; at each dev checkpoint an affine map from
  cumulative proxy reward to dev-utility gain is fitted (``calibrated_rewards`` applies
  it to the whole buffer; the reference code rescaled only future rewards, mixing two
  scales). The model predicts proxy rewards from ds, and the positive slope multiplies
  mu and sigma alike, so it rescales the reported values without changing the choice.
* **Determinism.** The state is the buffer, kappa and the calibration map; the models
  are refitted from it with the rng of the round, so a resumed run chooses exactly as an
  uninterrupted one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from read_distill.config import PolicyConfig
from read_distill.policies.actions import normalise
from read_distill.policies.base import Pilot
from read_distill.rewards import essential
from read_distill.types import Allocation, Context

#: Prior std of cross-capability transfer, of the drift term and of the hidden layer's
#: total contribution, relative to the prior std of a capability's self-gain.
_OFF = 0.3
_DRIFT = 1.0
_HIDDEN = 0.3
#: Variance of per-round training noise, in units of the probe noise variance.
_PROCESS_NOISE = 0.25
#: Probe noise (points) assumed when the probes report no intervals, and its floor.
_DEFAULT_NOISE = 1.0
_MIN_NOISE = 0.05
#: Scale of the random first-layer weights of the hidden units.
_INPUT_SCALE = 1.5
#: A candidate other than r is eligible once its predicted advantage over r is at least
#: this many standard deviations (over members) above 0: about 84 % of the ensemble's
#: posterior on the better side (docs/method.md §9, "Deviations from r are earned").
_EARN_Z = 1.0
#: Prior std of each refined requirement weight, relative to an even share of the
#: observed utility gain per point (docs/method.md §6, "Refining r").
_REFINE_PRIOR = 1.0


class DeltaEnsemble:
    """J members predicting the per-capability score change ds from [x ; w].

    ``fit`` solves each member's output layer exactly (Gaussian likelihood with the
    noise covariance of each capability, Gaussian prior around a random anchor, a
    bootstrap resample of the whitened rows); ``predict`` returns ds for every member,
    candidate and output capability, shape (J, M, C_out), in score points.
    """

    def __init__(self, members: int, hidden: int, n_cap: int, outputs: list[int]):
        self.members = members
        self.hidden = hidden
        self.n_cap = n_cap
        self.outputs = outputs

    def _phi(self, w: np.ndarray, z: np.ndarray, spent: np.ndarray) -> np.ndarray:
        """Features (J, N, d): [w ; w * u ; tanh(W[w; z]) - tanh(W[0; z])] per member."""
        n = w.shape[0]
        pre_ctx = z @ self._w_ctx + self._b  # (N, J*H)
        hid = np.tanh(w @ self._w_alloc + pre_ctx) - np.tanh(pre_ctx)
        hid = hid.reshape(n, self.members, self.hidden).transpose(1, 0, 2)
        lin = np.hstack([w, w * spent[:, None]])
        return np.concatenate([np.broadcast_to(lin, (self.members, *lin.shape)), hid], axis=2)

    def fit(self, w, z, spent, y, noise_shape, sigma, prior_mean, prior_std, rng: np.random.Generator, kept: int = 0) -> None:
        """``y`` (N, C_out) score changes; ``sigma`` (C_out,) probe noise per output;
        ``prior_mean``/``prior_std`` (C_out, d). The last ``kept`` rows (independent of the
        others in ``noise_shape``) enter every member once instead of being resampled."""
        n, dz = z.shape
        j, h = self.members, self.hidden
        scale = _INPUT_SCALE / np.sqrt(self.n_cap + dz)
        self._w_alloc = rng.normal(0.0, scale, size=(self.n_cap, j * h))
        self._w_ctx = rng.normal(0.0, scale, size=(dz, j * h))
        self._b = rng.normal(0.0, 0.5, size=j * h)
        phi = self._phi(w, z, spent)  # (J, N, d)
        d = phi.shape[2]
        chol = np.linalg.cholesky(np.linalg.inv(noise_shape))  # P = L L'
        drawn = n - kept
        counts = np.ones((j, n))
        counts[:, :drawn] = rng.multinomial(drawn, np.full(drawn, 1.0 / drawn), size=j) if drawn else 0.0  # (J, N)
        anchors = prior_mean[None] + prior_std[None] * rng.standard_normal((j, *prior_mean.shape))
        zphi = np.einsum("nk,jnd->jkd", chol, phi)  # whitened rows L' Phi
        zy = chol.T @ y  # (N, C_out)
        gram = np.einsum("jkd,jk,jke->jde", zphi, counts, zphi)  # (J, d, d)
        cross = np.einsum("jkd,jk,kc->jcd", zphi, counts, zy)  # (J, C_out, d)
        precision_prior = 1.0 / prior_std**2  # (C_out, d)
        lhs = gram[:, None] / sigma[None, :, None, None] ** 2 + np.einsum("cd,de->cde", precision_prior, np.eye(d))[None]
        rhs = cross / sigma[None, :, None] ** 2 + anchors * precision_prior[None]
        self._theta = np.linalg.solve(lhs, rhs[..., None])[..., 0]  # (J, C_out, d)

    def predict(self, w: np.ndarray, z: np.ndarray, spent: np.ndarray) -> np.ndarray:
        phi = self._phi(w, z, spent)  # (J, M, d)
        return np.einsum("jmd,jcd->jmc", phi, self._theta)


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
        #: Dev checkpoints after round 0: (rounds seen, dev-utility gain since round 0).
        self.checkpoints: list[tuple[int, float]] = []

    def _initial_kappa(self) -> float:
        return float(self.config.kappa)

    # -- data -------------------------------------------------------------------------

    def _rounds_seen(self) -> int:
        return sum(1 for h in self.history if not h["pilot"])

    def _needed(self) -> list[int]:
        """Capabilities the reward reads: r_c > 0 (the gain; the spillover's top-k of r are among them)."""
        return [i for i, r in enumerate(self.requirement) if r > 0]

    def _noise_shape(self, n: int, pilot_scales: list[float]) -> np.ndarray:
        """Covariance shape of the ds noise of n consecutive rounds followed by the pilots
        (see the module docstring). A pilot is its own run, so its closing probe and its
        training noise are its own, scaled up with its change; but every pilot's change is
        measured from the run's initial probe s0, as is the first round's, so that probe's
        noise is shared: pilots k and l covary by k*l, pilot k and round 0 by k."""
        k = np.asarray(pilot_scales, dtype=float)
        shape = np.eye(n + len(k))
        shape[:n, :n] *= 2.0 + _PROCESS_NOISE
        idx = np.arange(n - 1)
        shape[idx, idx + 1] = shape[idx + 1, idx] = -1.0
        shape[n:, n:] = np.diag((1.0 + _PROCESS_NOISE) * k**2) + np.outer(k, k)
        if n:
            shape[0, n:] = shape[n:, 0] = k
        return shape

    def _probe_noise(self, contexts: list[Context]) -> np.ndarray:
        """Probe noise std per capability in points: mean interval width / 3.92."""
        widths = [c.profile_width_frac for c in contexts if len(c.profile_width_frac) == len(self.requirement) and any(c.profile_width_frac)]
        if not widths:
            return np.full(len(self.requirement), _DEFAULT_NOISE)
        return np.maximum(100.0 * np.mean(widths, axis=0) / 3.92, _MIN_NOISE)

    @staticmethod
    def _ctx_input(context: Context) -> np.ndarray:
        """What the hidden units see of the context besides w: s/100 and b/B."""
        return np.append(np.asarray(context.profile_frac, dtype=float), float(context.remaining_frac))

    def _fit(self, context: Context, rng: np.random.Generator) -> DeltaEnsemble | None:
        """Refit the ensemble on every online round (its ds read from the next context)
        and every pilot (its ds measured by the pilot)."""
        # A rolled-back round left the profile where it was, so dropping it leaves the
        # rounds around it consecutive: the next context's profile is its context's.
        online = [h for h in self.history if not h["pilot"] and not h.get("rolled_back")]
        pilots = [h for h in self.history if h["pilot"]]
        # Burn-in rounds teach the model nothing: their score changes carry the transients
        # of starting to train (learning-rate warm-up, the switch to teacher text), which
        # do not depend on the allocation. Pilots are runs of their own and have none.
        burn_in = 0 if pilots else min(self.config.warmup_rounds, len(online))
        if len(online) == burn_in and not pilots:
            return None
        out = self._needed()
        profiles = np.asarray(
            [h["context"]["profile_frac"] for h in online] + [context.profile_frac], dtype=float
        ) * 100.0
        online = online[burn_in:]
        contexts = [Context.from_json(h["context"]) for h in online + pilots]
        gains = np.asarray([h["gain"] for h in pilots], dtype=float).reshape(len(pilots), len(self.capabilities))
        y = np.vstack([np.diff(profiles, axis=0)[burn_in:], gains])[:, out]
        w = np.asarray([h["allocation"] for h in online + pilots], dtype=float)
        z = np.vstack([self._ctx_input(c) for c in contexts])
        spent = np.asarray([1.0 - c.remaining_frac for c in contexts])
        shape = self._noise_shape(len(online), [h["scale"] for h in pilots])
        # Pilot contexts carry no probe intervals; the run's own probes say the noise.
        sigma = self._probe_noise(contexts + [context])[out]
        n_cap = len(self.capabilities)
        # Pooled GLS estimate of the self-gain per unit share, over all needed capabilities.
        precision = np.linalg.inv(shape)
        num = sum(w[:, c] @ precision @ y[:, k] / sigma[k] ** 2 for k, c in enumerate(out))
        den = sum(w[:, c] @ precision @ w[:, c] / sigma[k] ** 2 for k, c in enumerate(out))
        m = float(num / den) if den > 1e-12 else 0.0
        se2 = 1.0 / den if den > 1e-12 else float(np.mean(sigma**2))
        m = max(m, 0.0)
        g = float(np.sqrt(m**2 + se2))
        # Pooled effect of the share spent on *other* capabilities (1 - w_c), jointly with the
        # self-gain: on real models it is negative (a capability a round leaves out is
        # forgotten). Shrunk towards 0 with prior std _OFF * g, so rounds that always play
        # the same mixture (where the two cannot be told apart) leave it at 0.
        rows = [(np.stack([w[:, c], 1.0 - w[:, c]], axis=1), y[:, k], sigma[k]) for k, c in enumerate(out)]
        a = sum(x.T @ precision @ x / sd**2 for x, _, sd in rows) + np.diag([1e-9, 1.0 / (_OFF * g) ** 2])
        b = sum(x.T @ precision @ t / sd**2 for x, t, sd in rows)
        cov = np.linalg.inv(a)
        o = float((cov @ b)[1])
        off_std = float(np.sqrt((_OFF * g) ** 2 + cov[1, 1]))
        model = DeltaEnsemble(self.config.ensemble_size, self.config.hidden, n_cap, out)
        d = 2 * n_cap + self.config.hidden
        prior_mean = np.zeros((len(out), d))
        prior_std = np.empty((len(out), d))
        for k, c in enumerate(out):
            prior_std[k, :n_cap] = off_std
            prior_mean[k, :n_cap] = o
            prior_std[k, n_cap : 2 * n_cap] = _DRIFT * _OFF * g
            prior_std[k, c] = g
            prior_std[k, n_cap + c] = _DRIFT * g
            prior_std[k, 2 * n_cap :] = _HIDDEN * g / np.sqrt(self.config.hidden)
            prior_mean[k, c] = m
        # A pilot is a designed measurement, not a sample of the run: every member sees it.
        model.fit(w, z, spent, y, shape, sigma, prior_mean, prior_std, rng, kept=len(pilots))
        return model

    def calibrated_rewards(self) -> np.ndarray:
        """Every buffered reward under the current calibration map."""
        raw = np.asarray([h["reward"] for h in self.history], dtype=float)
        return self.calibration["slope"] * raw + self.calibration["offset"]

    # -- the Protocol -----------------------------------------------------------------

    def prepare(self, pilot: Pilot | None, actions: list[Allocation], rng: np.random.Generator) -> None:
        """Pre-train: with a pilot, one one-hot pilot per needed capability on an equal
        share of the profiling budget; the ds they measure join the model's data."""
        if pilot is None:
            return
        needed = self._needed()
        tokens = self.config.profiling_tokens // len(needed)
        for c in needed:
            allocation = tuple(1.0 if k == c else 0.0 for k in range(len(self.capabilities)))
            result = pilot(allocation, tokens)
            self.history.append(
                {
                    "context": result.context.to_json(),
                    "allocation": list(allocation),
                    "reward": float(result.reward),
                    "pilot": True,
                    "gain": list(result.gain),
                    "scale": float(result.scale),
                }
            )

    def _candidates(self, context: Context, actions: list[Allocation]) -> list[Allocation]:
        """``actions`` plus r, one-hots on every needed capability and mixtures toward r,
        keeping those that give every needed capability at least ``min_share_frac`` of its
        share in r."""
        n = len(self.capabilities)
        r = np.asarray(self.requirement, dtype=float)
        extra = [normalise(r)]
        for c in self._needed():
            e = np.eye(n)[c]
            extra += [normalise(e), normalise(0.5 * e + 0.5 * r / r.sum())]
        prev = np.asarray(context.last_allocation, dtype=float)
        if prev.sum() > 0:
            extra.append(normalise(0.5 * prev / prev.sum() + 0.5 * r / r.sum()))
        # Shares of r as candidates hold them (rounded by ``normalise``), so r meets every floor.
        share = np.asarray(normalise(r))
        floor = self.config.min_share_frac * share
        # The capability the task answers in keeps its whole share: its probe measures it
        # on its own items, so a probe at its ceiling does not say the task needs no more
        # of it (docs/method.md §9, "The answer form").
        for c, a in enumerate(context.answer_form):
            if a > 0 and r[c] > 0:
                floor[c] = share[c]
        seen: set[Allocation] = set()
        out = []
        for a in [tuple(float(v) for v in a) for a in actions] + extra:
            if a not in seen and all(a[c] >= floor[c] - 1e-9 for c in self._needed()):
                seen.add(a)
                out.append(a)
        return out

    def _refined(self, context: Context) -> np.ndarray:
        """The requirement over the needed capabilities, refined from the dev checkpoints
        (docs/method.md §6, "Refining r"): dev-utility gain against probe-score change
        since round 0, fitted as a linear map v >= 0 with the declared r (scaled to the
        observed gain per point) as its prior; v normalised. The declared r until a
        checkpoint shows the utility moving with r . ds."""
        out = self._needed()
        r = np.asarray(self.requirement, dtype=float)[out]
        r = r / r.sum()
        if not self.checkpoints:
            return r
        online = [h for h in self.history if not h["pilot"]]
        profiles = [h["context"]["profile_frac"] for h in online] + [context.profile_frac]
        x = 100.0 * (np.asarray([profiles[n] for n, _ in self.checkpoints], dtype=float) - np.asarray(profiles[0], dtype=float))[:, out]
        y = np.asarray([g for _, g in self.checkpoints], dtype=float)
        along = x @ r
        if along @ along < 1e-9:
            return r
        scale = float(y @ along / (along @ along))
        if scale <= 0:
            return r
        sigma = self._probe_noise([Context.from_json(h["context"]) for h in online] + [context])[out]
        # Noise of a gain: the dev evaluation's (taken as a probe's) and both probes' of x.
        noise2 = float(np.mean(sigma) ** 2 + 2 * scale**2 * (r**2) @ (sigma**2))
        prior_precision = np.eye(len(out)) / (_REFINE_PRIOR * scale / len(out)) ** 2
        v = np.linalg.solve(x.T @ x / noise2 + prior_precision, x.T @ y / noise2 + prior_precision @ (scale * r))
        v = np.maximum(v, 0.0)
        return v / v.sum() if v.sum() > 0 else r

    def _rewards(self, delta: np.ndarray, refined: np.ndarray | None = None) -> np.ndarray:
        """Proxy reward (calibrated scale) of predicted ds (..., C_out): r.ds - beta Spill,
        with the gain weighted by ``refined`` where given (the spillover keeps r)."""
        out = self._needed()
        r = np.asarray(self.requirement)[out]
        weights = r if refined is None else refined * r.sum()
        ess = set(essential(self.requirement, self.config.top_k))
        mask = np.asarray([c in ess for c in out], dtype=float)
        raw = delta @ weights - self.config.beta * (np.maximum(0.0, -delta) * (r * mask)).sum(axis=-1)
        return self.calibration["slope"] * raw

    def select(self, context: Context, actions: list[Allocation], rng: np.random.Generator) -> Allocation:
        """Round 0 plays r (designed warm-up), then UCB over the candidates."""
        if not actions:
            raise ValueError("read: the candidate action set is empty")
        kappa = self.kappa * float(context.remaining_frac)
        warmup = self._rounds_seen() < self.config.warmup_rounds
        candidates = self._candidates(context, actions)
        model = self._fit(context, rng)
        if model is None:
            choice = normalise(self.requirement)
            self.info = {"warmup": True, "designed": True, "kappa": kappa, "n_actions": len(candidates)}
            return choice
        cand = np.asarray(candidates, dtype=float)
        m = cand.shape[0]
        z = np.broadcast_to(self._ctx_input(context), (m, len(self.capabilities) + 1))
        spent = np.full(m, 1.0 - float(context.remaining_frac))
        # Scores live in [0, 100]: a capability at 98 cannot gain 10 whatever the data of
        # its rise say, and one at 0 cannot lose; without the bound the model keeps paying
        # for a capability after it saturated.
        s = 100.0 * np.asarray(context.profile_frac, dtype=float)[self._needed()]
        delta = np.clip(model.predict(cand, z, spent), -s, 100.0 - s)
        refined = self._refined(context)
        values = self._rewards(delta, refined)  # (J, M)
        mu, sigma = values.mean(axis=0), values.std(axis=0)
        # The requirement mix is the default a deviation must earn: the bonus explores only
        # among candidates the ensemble expects, member by member against r, to do better
        # than r with some confidence (docs/method.md §9, "Deviations from r are earned").
        base = candidates.index(normalise(self.requirement))
        # An allocation whose round broke a capability floor is not played again, r included.
        forbidden = {tuple(h["allocation"]) for h in self.history if h.get("rolled_back")}
        allowed = np.asarray([tuple(a) not in forbidden for a in candidates]) if forbidden else np.ones(m, dtype=bool)
        advantage = values - values[:, [base]]
        eligible = allowed & (advantage.mean(axis=0) >= _EARN_Z * advantage.std(axis=0))
        if not eligible.any():
            eligible = allowed if allowed.any() else np.ones(m, dtype=bool)
        best = int(np.argmax(np.where(eligible, mu + kappa * sigma, -np.inf)))
        self.info = {
            "warmup": warmup,
            "designed": False,
            "mu": float(mu[best]),
            "sigma": float(sigma[best]),
            "kappa": kappa,
            "n_actions": len(candidates),
            # The requirement the gain was weighted by (refined at the dev checkpoints).
            **{f"r: {self.capabilities[c]}": float(v) for c, v in zip(self._needed(), refined, strict=True)},
        }
        return candidates[best]

    def update(self, context: Context, allocation: Allocation, reward: float, rolled_back: bool = False) -> None:
        """Buffer the round's (context, allocation, raw reward); a rolled-back round is
        kept out of the model (it changed nothing the next context shows) and its
        allocation is not played again."""
        entry = {"context": context.to_json(), "allocation": [float(x) for x in allocation], "reward": float(reward), "pilot": False}
        self.history.append({**entry, "rolled_back": True} if rolled_back else entry)

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
        if utility_gains:
            self.checkpoints.append((self._rounds_seen(), float(utility_gains[-1])))
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
        return {"history": self.history, "kappa": self.kappa, "calibration": dict(self.calibration),
                "checkpoints": [list(c) for c in self.checkpoints]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""
        self.history = [dict(h) for h in state["history"]]
        self.kappa = float(state["kappa"])
        self.calibration = {k: float(v) for k, v in state["calibration"].items()}
        self.checkpoints = [(int(n), float(g)) for n, g in state.get("checkpoints", [])]


class GreedyPolicy(ReadPolicy):
    """Greedy one-step (docs/method.md §7): ReAD with kappa = 0, i.e. argmax of the ensemble mean."""

    def _initial_kappa(self) -> float:
        return 0.0

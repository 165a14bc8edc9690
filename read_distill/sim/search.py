"""The oracle of a simulated world: the best schedule found with knowledge of the dynamics.

Regret in the policy benchmark is measured against it. The search runs on a noise-free
model of the world — the world's own ``dynamics`` and ``utility`` callables, stepped
exactly as the round loop steps them (per round the runner spends
``remaining // rounds_left`` billable tokens; the student calls ``dynamics(profile,
spend, spent, rng)`` once per round) — and the winning schedule is then replayed through
the real round loop with the ``schedule`` policy, so the oracle's reported utility comes
from the same code path as every policy's.

What is searched (``search``):

1. **Best fixed allocation** (the same w every round), over the union of
   * a fine simplex grid (step 1/20) over the *focus* capabilities: those with non-zero
     declared requirement plus the ones whose one-hot schedule raises the true utility
     most, up to 4 in all (the declared requirement may miss capabilities the true
     utility needs, and the oracle knows the truth);
   * a coarse simplex grid (step 1/4) over all capabilities (one-hots, pairs, ...);
   * uniform and the declared requirement r (the static baselines);
   then coordinate search on the full simplex from the 3 best: move δ of mass from one
   capability to another (every ordered pair), take the best improving move, halve δ
   (from 1/10 down to 1/160) when none improves.
2. **Lookahead** (a receding-horizon rollout, two passes): each round, every candidate
   allocation (the coarse and a step-1/10 focus grid, the fixed winner, the committed
   plan's entry for this round, and one-δ moves from the last round's choice) is
   scored by simulating it now and then one of three continuations to the end: the
   fixed winner, the candidate held, or the rest of the plan committed so far. The best
   (candidate, continuation) is committed. Because the committed plan is always among
   the options, its value never decreases: the lookahead schedule is at least as good
   as the fixed one on the model, and it can change allocation over time
   (prerequisites, saturation, bottleneck utilities).

The search assumes exact token shares (spend = quota · w). The runner realises shares in
whole examples (``SimWorld.with_example_tokens``: ~40 per round), so the two finalists
are re-scored with the shares the runner's generator will realise and the better one is
replayed (the lookahead one only if better by more than ``METHOD_MARGIN``); ``method``
says which search it came from.

Noise: dynamics draw their noise from the ``rng`` they are given; the model passes a
stand-in whose ``normal`` / ``standard_normal`` return the mean (no noise). Any other
draw comes from a generator seeded once per search, so a search is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np

from read_distill.config import RewardConfig
from read_distill.ledger import round_quota
from read_distill.policies.actions import normalise
from read_distill.rewards import reward as proxy_reward
from read_distill.sim.runs import SimResult, run
from read_distill.sim.world import SimWorld

#: At most this many capabilities get the fine grid in the fixed-allocation search.
FOCUS_MAX = 4
#: Simplex grid resolutions (1/steps): fine over the focus set, coarse over everything,
#: and the focus grid of the lookahead's per-round candidates.
FINE_STEPS, COARSE_STEPS, LOOKAHEAD_STEPS = 20, 4, 10
#: Coordinate search: starting points, first and last mass step.
REFINE_STARTS, REFINE_FIRST, REFINE_LAST = 3, 1 / 10, 1 / 160
#: Receding-horizon passes (the second starts from the first's schedule as its plan).
LOOKAHEAD_PASSES = 2
#: Improvements below this are ties (float noise must not flip a search).
TOLERANCE = 1e-9
#: The lookahead schedule is chosen over the fixed one only if it is better by more than
#: this many utility points: below that the simpler schedule is the honest answer.
METHOD_MARGIN = 0.01


class _NoiseFree:
    """An ``rng`` stand-in for noise-free simulation: Gaussian draws return their mean."""

    def __init__(self) -> None:
        self._fallback = np.random.default_rng(0)

    def normal(self, loc=0.0, scale=1.0, size=None):
        return np.zeros(() if size is None else size) + loc

    def standard_normal(self, size=None, dtype=np.float64):
        return np.zeros(() if size is None else size, dtype=dtype)

    def __getattr__(self, name: str):
        # Other draws (uniform, integers, ...) stay random but deterministic per search.
        return getattr(self._fallback, name)


def simplex_grid(n: int, steps: int) -> np.ndarray:
    """Every point of the n-simplex whose coordinates are multiples of 1/steps, (M, n)."""
    points = []
    # Stars and bars: choose n-1 bar positions among steps + n - 1 slots.
    for bars in combinations(range(steps + n - 1), n - 1):
        edges = (-1, *bars, steps + n - 1)
        points.append([edges[k + 1] - edges[k] - 1 for k in range(n)])
    return np.asarray(points, dtype=float) / steps


def realised_spend(allocation, quota_tokens: int, example_tokens: int) -> np.ndarray:
    """The spend per capability the runner realises for ``allocation`` in a round.

    Mirrors ``Generator.generate_round`` when every example costs ``example_tokens`` (as
    in a simulated world): each next example goes to the capability furthest below its
    target share (first on ties), and the last example is cut to fit the quota.
    """
    w = np.asarray(normalise(allocation), dtype=float)
    examples = -(-int(quota_tokens) // int(example_tokens))
    counts = np.zeros(len(w))
    last = 0
    for k in range(examples):
        deficit = w * (k + w.sum()) - counts
        deficit[w <= 0] = -np.inf
        last = int(np.argmax(deficit))
        counts[last] += 1
    spend = counts * example_tokens
    spend[last] -= examples * example_tokens - quota_tokens
    return spend


def round_quotas(budget_tokens: int, rounds: int) -> list[int]:
    """The billable quota of each round, as the runner computes it (every quota spent)."""
    quotas, remaining = [], int(budget_tokens)
    for t in range(rounds):
        quotas.append(round_quota(remaining, rounds - t))
        remaining -= quotas[-1]
    return quotas


class Model:
    """The world's noise-free dynamics and utility, stepped the way the runner steps them."""

    def __init__(self, world: SimWorld, budget_tokens: int, rounds: int) -> None:
        self.world = world
        self.rounds = rounds
        self.quotas = np.asarray(round_quotas(budget_tokens, rounds), dtype=float)
        self.example_tokens = world.with_example_tokens(budget_tokens, rounds).example_tokens
        self.initial_profile = np.asarray(world.initial_profile, dtype=float)
        self.n = len(world.capabilities)
        self.batched = bool(getattr(world.dynamics, "batched", False))
        self.rng = _NoiseFree()
        self.evaluations = 0

    def step(self, profiles: np.ndarray, spends: np.ndarray, spent: np.ndarray) -> np.ndarray:
        """One round for each row of ``profiles`` (N, n)."""
        if self.batched:
            return np.asarray(self.world.dynamics(profiles, spends, spent, self.rng), dtype=float)
        return np.stack([np.asarray(self.world.dynamics(p, s, c, self.rng), dtype=float) for p, s, c in zip(profiles, spends, spent, strict=True)])

    def utilities(self, profiles: np.ndarray) -> np.ndarray:
        """The true utility of each row."""
        return np.asarray([float(self.world.utility(p)) for p in profiles])

    def rollout(self, profiles: np.ndarray, spent: np.ndarray, start: int, plans: np.ndarray) -> np.ndarray:
        """Final utility of each row after playing ``plans`` (N, rounds - start, n) with
        exact shares from round ``start`` on, starting from ``profiles`` / ``spent``."""
        p, c = profiles.copy(), spent.copy()
        for k, t in enumerate(range(start, self.rounds)):
            spend = self.quotas[t] * plans[:, k]
            p = self.step(p, spend, c)
            c = c + spend
        self.evaluations += len(plans)
        return self.utilities(p)

    def fixed_values(self, allocations: np.ndarray) -> np.ndarray:
        """Utility of each fixed allocation (M, n) played every round from S0."""
        m = len(allocations)
        start = np.broadcast_to(self.initial_profile, (m, self.n))
        plans = np.broadcast_to(allocations[:, None, :], (m, self.rounds, self.n))
        return self.rollout(start, np.zeros((m, self.n)), 0, plans)

    def replay_value(self, schedule: list[np.ndarray]) -> float:
        """Utility of ``schedule`` with the shares the runner realises (noise-free)."""
        p, c = self.initial_profile[None, :].copy(), np.zeros((1, self.n))
        for t, w in enumerate(schedule):
            spend = realised_spend(w, int(self.quotas[t]), self.example_tokens)[None, :]
            p = self.step(p, spend, c)
            c = c + spend
        return float(self.utilities(p)[0])


def _embed(grid: np.ndarray, indices: list[int], n: int) -> np.ndarray:
    out = np.zeros((len(grid), n))
    out[:, indices] = grid
    return out


def _unique(rows: np.ndarray) -> np.ndarray:
    # Rounded so that grid points reached by different routes compare equal.
    return np.unique(np.round(rows, 9), axis=0)


def _moves(w: np.ndarray, delta: float) -> np.ndarray:
    """Every allocation one move of ``delta`` mass (at most what is there) away from w."""
    out = []
    for i in np.flatnonzero(w > 0):
        moved = min(delta, float(w[i]))
        for j in range(len(w)):
            if j != i:
                v = w.copy()
                v[i] -= moved
                v[j] += moved
                out.append(v)
    return np.asarray(out) if out else np.empty((0, len(w)))


def focus_capabilities(model: Model, requirement: np.ndarray) -> list[int]:
    """Declared-requirement support, topped up by one-hot utility gain, at most FOCUS_MAX."""
    one_hot_gain = model.fixed_values(np.eye(model.n)) - model.utilities(model.initial_profile[None, :])[0]
    declared = sorted(np.flatnonzero(requirement > 0), key=lambda i: (-requirement[i], i))[:FOCUS_MAX]
    focus = [int(i) for i in declared]
    for i in sorted(range(model.n), key=lambda i: (-one_hot_gain[i], i)):
        if len(focus) >= FOCUS_MAX:
            break
        if i not in focus:
            focus.append(int(i))
    return sorted(focus)


def best_fixed(model: Model, requirement: np.ndarray, focus: list[int]) -> tuple[np.ndarray, float]:
    """Section 1 of the module docstring: grids, then coordinate search."""
    n = model.n
    candidates = _unique(
        np.vstack(
            [
                _embed(simplex_grid(len(focus), FINE_STEPS), focus, n),
                simplex_grid(n, COARSE_STEPS),
                np.full((1, n), 1.0 / n),
                requirement[None, :] / requirement.sum(),
            ]
        )
    )
    values = model.fixed_values(candidates)
    best_w, best_v = candidates[int(np.argmax(values))], float(values.max())
    for start in np.argsort(-values, kind="stable")[:REFINE_STARTS]:
        w, v, delta = candidates[start].copy(), float(values[start]), REFINE_FIRST
        while delta >= REFINE_LAST - 1e-12:
            neighbours = _moves(w, delta)
            scores = model.fixed_values(neighbours)
            k = int(np.argmax(scores))
            if scores[k] > v + TOLERANCE:
                w, v = neighbours[k], float(scores[k])
            else:
                delta /= 2
        if v > best_v + TOLERANCE:
            best_w, best_v = w, v
    return best_w, best_v


def lookahead(model: Model, fixed: np.ndarray, focus: list[int], plan: list[np.ndarray]) -> tuple[list[np.ndarray], float]:
    """One receding-horizon pass (section 2 of the module docstring) starting from ``plan``."""
    n, rounds = model.n, model.rounds
    base = _unique(np.vstack([simplex_grid(n, COARSE_STEPS), _embed(simplex_grid(len(focus), LOOKAHEAD_STEPS), focus, n), fixed[None, :]]))
    profile, spent = model.initial_profile[None, :].copy(), np.zeros((1, n))
    plan = [w.copy() for w in plan]
    for t in range(rounds):
        previous = plan[t - 1] if t > 0 else fixed
        candidates = _unique(np.vstack([base, plan[t][None, :], _moves(previous, 0.1), _moves(previous, 0.025)]))
        m, tail = len(candidates), rounds - t - 1
        starts = np.broadcast_to(profile, (m, n))
        used = np.broadcast_to(spent, (m, n))
        continuations = {
            "fixed": np.broadcast_to(fixed, (m, tail, n)),
            "held": np.broadcast_to(candidates[:, None, :], (m, tail, n)),
            "plan": np.broadcast_to(np.asarray(plan[t + 1 :]).reshape(1, tail, n), (m, tail, n)),
        }
        best = (-np.inf, None, None)
        for rest in continuations.values():
            plans = np.concatenate([candidates[:, None, :], rest], axis=1)
            values = model.rollout(starts, used, t, plans)
            k = int(np.argmax(values))
            if values[k] > best[0] + TOLERANCE:
                best = (float(values[k]), candidates[k], rest[k])
        _, chosen, rest = best
        plan = plan[:t] + [chosen.copy()] + [w.copy() for w in rest]
        spend = model.quotas[t] * chosen[None, :]
        profile = model.step(profile, spend, spent)
        spent = spent + spend
    return plan, float(model.rollout(model.initial_profile[None, :], np.zeros((1, n)), 0, np.asarray(plan)[None])[0])


@dataclass
class OracleSchedule:
    """The oracle's chosen schedule and what its search found (model values are noise-free)."""

    #: One allocation per round, in capability order.
    allocations: list[list[float]]
    #: "fixed" or "lookahead": the search whose schedule won on the realised-share model.
    method: str
    #: Noise-free model utility of each finalist with realised shares, and the initial utility.
    fixed_utility: float
    lookahead_utility: float
    initial_utility: float
    #: Diagnostics: focus capabilities, exact-share values, schedules simulated.
    details: dict[str, Any] = field(default_factory=dict)

    def as_schedule(self, capabilities: tuple[str, ...]) -> list[dict[str, float]]:
        """The ``policy.schedule`` form: one {capability: weight} per round."""
        return [{c: float(x) for c, x in zip(capabilities, w, strict=True) if x > 0} for w in self.allocations]


def search(world: SimWorld, budget_tokens: int, rounds: int = 20) -> OracleSchedule:
    """Search the best schedule on the noise-free model (no run through the loop)."""
    model = Model(world, int(budget_tokens), rounds)
    requirement = np.asarray(world.requirement, dtype=float)
    focus = focus_capabilities(model, requirement)
    fixed, fixed_exact = best_fixed(model, requirement, focus)
    plan = [fixed] * rounds
    for _ in range(LOOKAHEAD_PASSES):
        plan, lookahead_exact = lookahead(model, fixed, focus, plan)
    # Finalists in the form the schedule policy will play them (normalised, rounded).
    fixed_schedule = [np.asarray(normalise(fixed))] * rounds
    lookahead_schedule = [np.asarray(normalise(w)) for w in plan]
    fixed_value = model.replay_value(fixed_schedule)
    lookahead_value = model.replay_value(lookahead_schedule)
    method = "lookahead" if lookahead_value > fixed_value + METHOD_MARGIN else "fixed"
    chosen = lookahead_schedule if method == "lookahead" else fixed_schedule
    return OracleSchedule(
        allocations=[[float(x) for x in w] for w in chosen],
        method=method,
        fixed_utility=fixed_value,
        lookahead_utility=lookahead_value,
        initial_utility=float(model.utilities(model.initial_profile[None, :])[0]),
        details={
            "focus": [world.capabilities[i] for i in focus],
            "fixed_exact_shares": fixed_exact,
            "lookahead_exact_shares": lookahead_exact,
            "schedules_simulated": model.evaluations,
        },
    )


def one_step(world: SimWorld, budget_tokens: int, rounds: int = 20, reward: RewardConfig | None = None) -> OracleSchedule:
    """What a one-step policy plays with perfect knowledge: each round, the allocation with
    the best true immediate proxy reward r·Δs − β·Spill (docs/method.md §6, β and top-k from
    ``reward``, the config's defaults unless given; the cost term is the same for every
    allocation of a round) on the noise-free model.

    A bound, not a baseline: ReAD's bandit learns exactly this one-step reward for the
    declared requirement, so the gap between the oracle and this schedule is what the
    method's structure gives up (a proxy of the declared requirement, no lookahead), and
    the gap between this schedule and ``read`` is the cost of learning the dynamics
    online. Candidates: a step-1/10 simplex grid over the capabilities with r_c > 0 and the
    one-hots on every capability.
    """
    reward = reward or RewardConfig()
    model = Model(world, int(budget_tokens), rounds)
    needed = [int(i) for i in np.flatnonzero(np.asarray(world.requirement) > 0)]
    candidates = _unique(np.vstack([_embed(simplex_grid(len(needed), LOOKAHEAD_STEPS), needed, model.n), np.eye(model.n)]))
    profile, spent = model.initial_profile[None, :].copy(), np.zeros((1, model.n))
    schedule = []
    for t in range(rounds):
        spends = model.quotas[t] * candidates
        after = model.step(np.repeat(profile, len(candidates), axis=0), spends, np.repeat(spent, len(candidates), axis=0))
        immediate = [proxy_reward(world.requirement, profile[0], a, 0, reward.beta, 0.0, reward.top_k)[0] for a in after]
        k = int(np.argmax(immediate))
        schedule.append(np.asarray(normalise(candidates[k])))
        profile, spent = after[k : k + 1], spent + spends[k : k + 1]
    value = model.replay_value(schedule)
    return OracleSchedule(
        allocations=[[float(x) for x in w] for w in schedule],
        method="one_step",
        fixed_utility=value,
        lookahead_utility=value,
        initial_utility=float(model.utilities(model.initial_profile[None, :])[0]),
    )


def oracle(
    world: SimWorld,
    budget_tokens: int,
    rounds: int = 20,
    seed: int = 0,
    run_dir: str | None = None,
    plan: OracleSchedule | None = None,
) -> SimResult:
    """The best schedule found with knowledge of the dynamics, replayed through the runner.

    Searches (``search``; or takes ``plan``, a previous search of the same world, budget
    and rounds, so several seeds can share one search) and replays the schedule with
    the ``schedule`` policy under ``seed``. ``method`` is "fixed" or "lookahead"; the
    search's noise-free values are in ``summary["oracle"]``.
    """
    plan = plan or search(world, budget_tokens, rounds)
    if len(plan.allocations) != rounds:
        raise ValueError(f"oracle: plan has {len(plan.allocations)} rounds, the run {rounds}")
    result = run(world, "schedule", int(budget_tokens), rounds, seed, run_dir=run_dir, schedule=plan.as_schedule(world.capabilities))
    result.method = plan.method
    result.summary["oracle"] = {
        "method": plan.method,
        "model_fixed_utility": plan.fixed_utility,
        "model_lookahead_utility": plan.lookahead_utility,
        **plan.details,
    }
    return result

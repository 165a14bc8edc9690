"""The simulated world's dynamics, the benchmark suite and the oracle."""

from __future__ import annotations

import numpy as np
import pytest

from read_distill import sim
from read_distill.config import Config
from read_distill.sim.dynamics import GatedDynamics, TransferDynamics
from read_distill.sim.environments import ENVIRONMENTS, SUITE, make_world, paper_figures
from read_distill.sim.search import Model, one_step, realised_spend, search, simplex_grid
from read_distill.types import CAPABILITIES

SMALL, LARGE = 20e6, 150e6


def _paper_dynamics(**options) -> TransferDynamics:
    fig = paper_figures()
    return TransferDynamics(fig["transfer_20M_tokens"], fig["transfer_150M_tokens"], SMALL, LARGE, **options)


def _noise_free(world):
    """``world`` with its dynamics noise switched off (probe noise kept)."""
    dynamics = world.dynamics.base if isinstance(world.dynamics, GatedDynamics) else world.dynamics
    dynamics.noise_std = 0.0
    return world


@pytest.mark.parametrize("budget, key", [(SMALL, "transfer_20M_tokens"), (LARGE, "transfer_150M_tokens")])
def test_transfer_dynamics_reproduces_the_matrices(budget, key):
    dynamics, T = _paper_dynamics(), np.asarray(paper_figures()[key])
    n = len(T)
    start = np.full(n, 50.0)  # far enough from 0 and 100 that no entry is clipped
    for i in range(n):
        spend = np.zeros(n)
        spend[i] = budget
        moved = dynamics(start, spend, np.zeros(n), np.random.default_rng(0)) - start
        np.testing.assert_allclose(moved, T[i], atol=1e-9)


def test_spend_split_over_rounds_adds_up_to_one_shot():
    dynamics, n = _paper_dynamics(), len(CAPABILITIES)
    w = np.linspace(1, 2, n) / np.linspace(1, 2, n).sum()
    one_shot = dynamics(np.full(n, 50.0), w * SMALL, np.zeros(n), None)
    profile, spent = np.full(n, 50.0), np.zeros(n)
    for _ in range(4):
        profile = dynamics(profile, w * SMALL / 4, spent, None)
        spent = spent + w * SMALL / 4
    np.testing.assert_allclose(profile, one_shot, atol=1e-9)


def test_diminishing_returns_on_the_paper_diagonal():
    dynamics, n = _paper_dynamics(), len(CAPABILITIES)
    budgets = np.linspace(0, LARGE, 16)
    for i in range(n):
        # F_ii(x): the target's own score change after x tokens spent on it alone.
        diagonal = {x: dynamics.curve(np.eye(n)[i] * x)[i, i] for x in (*budgets, 20e6, 80e6)}
        # Observation 2: the 20M -> 80M gain exceeds the 80M -> 150M gain, and the
        # gain per token falls along the whole curve.
        assert diagonal[80e6] - diagonal[20e6] > diagonal[LARGE] - diagonal[80e6], CAPABILITIES[i]
        steps = np.diff([diagonal[x] for x in budgets])
        assert np.all(np.diff(steps) < 0), CAPABILITIES[i]


def test_batched_dynamics_equal_row_by_row():
    world = SUITE["prerequisite"]()
    rng = np.random.default_rng(1)
    n = len(CAPABILITIES)
    profiles = rng.uniform(5, 95, (6, n))
    spends = rng.uniform(0, 3e6, (6, n))
    spent = rng.uniform(0, 3e7, (6, n))
    quiet = _noise_free(world).dynamics
    batch = quiet(profiles, spends, spent, None)
    rows = np.stack([quiet(p, s, c, None) for p, s, c in zip(profiles, spends, spent, strict=True)])
    np.testing.assert_allclose(batch, rows, atol=1e-12)


def test_simplex_grid_and_realised_spend():
    grid = simplex_grid(3, 4)
    assert len(grid) == 15 and np.allclose(grid.sum(axis=1), 1.0)
    spend = realised_spend((0.5, 0.3, 0.2), quota_tokens=1000, example_tokens=30)
    assert spend.sum() == 1000
    np.testing.assert_allclose(spend / 1000, (0.5, 0.3, 0.2), atol=30 / 1000)


def test_suite_is_registered_and_varied():
    assert len(SUITE) >= 12
    assert set(SUITE) <= set(ENVIRONMENTS)
    for name in ("paper_20m", "paper_150m"):
        assert name in SUITE
    config = Config.model_validate({"world": {"kind": "sim", "sim_environment": "bottleneck_min"}})
    assert make_world(config).name == "bottleneck_min"


@pytest.mark.parametrize("name", list(SUITE))
def test_every_suite_environment_runs(name):
    world = SUITE[name]()
    assert world.name == name
    result = sim.run(world, "uniform", budget_tokens=ENVIRONMENTS[name][1], rounds=3, seed=0)
    assert len(result.allocations) == 3 and len(result.profiles) == 4
    assert np.isfinite(result.final_utility)


def test_model_matches_the_runner_exactly_without_noise():
    world = _noise_free(SUITE["prerequisite"]())
    budget, rounds = ENVIRONMENTS["prerequisite"][1], 6
    plan = search(world, budget, rounds)
    replay = sim.oracle(world, budget, rounds, plan=plan)
    model = Model(world, budget, rounds)
    assert model.replay_value([np.asarray(w) for w in plan.allocations]) == pytest.approx(replay.final_utility, abs=1e-9)


@pytest.mark.parametrize("name, method", [("paper_steer_math_150m", "fixed"), ("prerequisite", "lookahead")])
def test_oracle_beats_every_static_policy(name, method):
    world, budget, rounds = SUITE[name](), ENVIRONMENTS[name][1], 8
    best = sim.oracle(world, budget, rounds, seed=0)
    assert best.method == method
    assert best.summary["oracle"]["method"] == method
    assert len(best.allocations) == rounds
    for policy in ("uniform", "task_static", "one_hot"):
        static = sim.run(world, policy, budget_tokens=budget, rounds=rounds, seed=0)
        assert best.final_utility >= static.final_utility, policy
    # The public wrapper stays callable after the oracle module has been imported.
    assert sim.oracle(world, budget, rounds, seed=0).final_utility == best.final_utility


def test_one_step_schedule_is_the_oracle_without_lookahead_value_and_falls_short_with_it():
    # paper_20m: math's immediate reward is the best every round, and so is the whole run.
    world, budget, rounds = SUITE["paper_20m"](), ENVIRONMENTS["paper_20m"][1], 8
    greedy = one_step(world, budget, rounds)
    assert greedy.method == "one_step" and len(greedy.allocations) == rounds
    assert all(w == [1.0 if c == "math" else 0.0 for c in CAPABILITIES] for w in greedy.allocations)
    assert greedy.fixed_utility == pytest.approx(search(world, budget, rounds).fixed_utility, abs=1e-6)
    # prerequisite: code pays only once reasoning has passed its gate; one step ahead
    # never sees that, so the one-step schedule ends well below the lookahead oracle.
    world, budget, rounds = SUITE["prerequisite"](), ENVIRONMENTS["prerequisite"][1], 20
    greedy, best = one_step(world, budget, rounds), search(world, budget, rounds)
    gain = greedy.fixed_utility - greedy.initial_utility
    assert gain < 0.8 * (best.lookahead_utility - best.initial_utility)

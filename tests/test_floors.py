"""Capability floors on real models: a round that breaks one is undone, and the run keeps it.

The shipped micro-world's student starts at reasoning 44 (16 probe items); two rounds of
math alone at a high learning rate wipe it out, which a floor of 20 forbids.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from read_distill.config import load_config, with_overrides
from read_distill.rewards import broken_floors
from read_distill.runner import MEASURED, run
from read_distill.sim import sim_config
from read_distill.sim.environments import ENVIRONMENTS, SUITE

FLOOR = {"reasoning": 20.0}


def _config(*overrides):
    return load_config(
        "configs/demo.yaml",
        [
            "run.rounds=2",
            "run.dev_every=2",
            "run.report=false",
            "budget.total_tokens=2000",
            "probe.items_per_capability=16",
            "policy.name=fixed",
            "policy.weights={math: 1}",
            "train.lr=1e-2",
            "train.replay_frac=0",
            *overrides,
        ],
    )


def _broken(summary) -> list[str]:
    intervals = {c: tuple(v) for c, v in summary["final_intervals"].items()}
    return broken_floors(FLOOR, summary["final_profile"], intervals)


@pytest.mark.tiny
def test_a_round_that_breaks_a_floor_is_rolled_back_and_the_run_ends_above_it(tmp_path):
    unguarded = run(_config(), tmp_path / "unguarded", quiet=True)
    assert _broken(unguarded) == ["reasoning"], "without floors the run loses reasoning"

    config = _config("floors.scores={reasoning: 20}")
    guarded = run(config, tmp_path / "guarded", quiet=True)
    assert guarded["rolled_back"] and _broken(guarded) == []
    first = json.loads((tmp_path / "guarded/rounds/0001/reward.json").read_text())
    assert first["rolled_back"] == FLOOR
    # The undone round's tokens stay spent.
    assert guarded["ledger"]["billable"] == 2000

    # A rollback is part of the committed round: stopping after it and resuming ends the same.
    run(config, tmp_path / "stopped", quiet=True, stop_after_round=1)
    resumed = run(config, tmp_path / "stopped", quiet=True, resume=True)
    assert {k: v for k, v in resumed.items() if k not in MEASURED} == {k: v for k, v in guarded.items() if k not in MEASURED}


@pytest.mark.tiny
def test_a_floor_on_a_capability_the_run_lacks_is_refused_before_anything_runs(tmp_path):
    from read_distill.config import ConfigError
    from read_distill.preflight import check_inputs

    with pytest.raises(ConfigError, match=r"floors.scores: unknown capabilities \['reasonin'\]"):
        check_inputs(_config("floors.scores={reasonin: 20}"))


@pytest.mark.parametrize("policy", ["read", "exp3", "task_static"])
def test_policies_are_told_of_a_rollback_and_a_stopped_run_resumes_through_it(policy, tmp_path):
    """Simulated: a floor at the initial score of every essential capability (drop 0) is
    broken now and then by the dynamics' noise. read never plays a rolled-back allocation
    again once its model exists; every policy resumes exactly."""
    world, budget = SUITE["paper_20m"](), ENVIRONMENTS["paper_20m"][1]
    config = with_overrides(sim_config(world, policy, budget, 20, 0), ["floors.drop=0"], "test")
    sized = world.with_example_tokens(budget, 20)
    whole = run(config, tmp_path / "whole", world=sized, quiet=True)
    assert whole["rolled_back"] and whole["ledger"]["billable"] == budget
    allocations = [tuple(a.values()) for a in whole["allocations"]]
    if policy == "read":
        # Rounds before its model exists play r whatever happened (burn-in transients do not
        # depend on the allocation); a rollback after that is never replayed.
        modelled = [t for t in whole["rolled_back"] if not json.loads((tmp_path / f"whole/rounds/{t:04d}/allocation.json").read_text())["policy_info"]["designed"]]
        assert modelled
        for t in modelled:
            assert allocations[t - 1] not in allocations[t:], f"round {t}'s allocation was played again"
    run(config, tmp_path / "stopped", world=sized, quiet=True, stop_after_round=whole["rolled_back"][0])
    resumed = run(config, tmp_path / "stopped", world=sized, quiet=True, resume=True)
    assert {k: v for k, v in resumed.items() if k not in MEASURED} == {k: v for k, v in whole.items() if k not in MEASURED}


def test_exp3_gives_the_capabilities_a_rolled_back_round_trained_its_lowest_estimate():
    from read_distill.config import PolicyConfig
    from read_distill.policies.exp3 import Exp3Policy
    from read_distill.types import Context

    policy = Exp3Policy(("a", "b", "c"), (0.5, 0.5, 0.0), PolicyConfig(name="exp3"))
    context = Context(requirement=(0.5, 0.5, 0.0), profile_frac=(0.2, 0.2, 0.2), remaining_frac=1.0,
                      last_allocation=(0.0, 0.0, 0.0), last_gain=(0.0, 0.0, 0.0))
    policy.update(context, (1.0, 0.0, 0.0), -100.0, rolled_back=True)
    policy.load_state_dict(policy.state_dict())  # the flag survives a resume
    p = policy.select(context, [], np.random.default_rng(0))
    assert p[0] < p[1] == pytest.approx(p[2])

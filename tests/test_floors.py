"""Capability floors on real models: a round that breaks one is undone, and the run keeps it.

The shipped micro-world's student starts at reasoning 44 (16 probe items); two rounds of
math alone at a high learning rate wipe it out, which a floor of 20 forbids.
"""

from __future__ import annotations

import json

import pytest

from read_distill.config import load_config
from read_distill.rewards import broken_floors
from read_distill.runner import run

pytestmark = pytest.mark.tiny

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
    assert {k: v for k, v in resumed.items() if k != "wall_s"} == {k: v for k, v in guarded.items() if k != "wall_s"}


def test_a_floor_on_a_capability_the_run_lacks_is_refused_before_anything_runs(tmp_path):
    from read_distill.config import ConfigError
    from read_distill.preflight import check_inputs

    with pytest.raises(ConfigError, match=r"floors.scores: unknown capabilities \['reasonin'\]"):
        check_inputs(_config("floors.scores={reasonin: 20}"))

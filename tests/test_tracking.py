"""run.report_to: TensorBoard event files (read back with tensorboard's own reader) and an offline wandb run."""

from __future__ import annotations

import json

import pytest

from read_distill.cli import main
from read_distill.config import Config
from read_distill.runner import run
from read_distill.sim import sim_config

BUDGET, ROUNDS = 2_000_000, 6


def _tracked(config: Config, *report_to: str) -> Config:
    return config.model_copy(update={"run": config.run.model_copy(update={"report_to": report_to})})


def _scalars(run_dir) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def _round(run_dir, t: int, name: str) -> dict:
    return json.loads((run_dir / "rounds" / f"{t:04d}" / f"{name}.json").read_text())


def test_tensorboard_holds_every_round_series_once_across_a_resume(world, tmp_path):
    config = _tracked(sim_config(world, "read", BUDGET, ROUNDS, 0), "tensorboard")
    sized = world.with_example_tokens(BUDGET, ROUNDS)
    run(config, tmp_path / "whole", world=sized, quiet=True)
    whole = _scalars(tmp_path / "whole")
    rounds = list(range(1, ROUNDS + 1))
    for t in rounds:
        allocation, profile, reward = (_round(tmp_path / "whole", t, n) for n in ("allocation", "profile", "reward"))
        for c in world.capabilities:
            assert whole[f"round/allocation/{c}"][t - 1] == (t, pytest.approx(allocation["allocation"][c]))
        # What the round probed (the capabilities the reward reads, probe.others_every), at its step.
        for c, score in profile["scores"].items():
            low, high = profile["intervals"][c]
            for tag, value in (("profile", score), ("profile_low", low), ("profile_high", high)):
                assert dict(whole[f"round/{tag}/{c}"])[t] == pytest.approx(value)
        for part in ("reward", "gain", "spillover", "cost_penalty"):
            assert whole[f"round/reward/{part}"][t - 1] == (t, pytest.approx(reward[part], rel=1e-6, abs=1e-6))
        assert whole["round/ledger/spent_round"][t - 1] == (t, reward["spent_tokens"])
        assert whole["round/loss"][t - 1] == (t, pytest.approx(reward["mean_loss"]))
        assert whole["round/policy/kappa"][t - 1] == (t, pytest.approx(allocation["policy_info"]["kappa"]))
    assert whole["round/ledger/spent"][-1] == (ROUNDS, BUDGET) and whole["round/ledger/remaining"][-1] == (ROUNDS, 0)
    # read's UCB terms, once its model is fitted (after the burn-in rounds).
    fitted = [t for t in rounds if "mu" in _round(tmp_path / "whole", t, "allocation")["policy_info"]]
    assert fitted and [s for s, _ in whole["round/policy/mu"]] == fitted == [s for s, _ in whole["round/policy/sigma"]]
    assert [s for s, _ in whole["round/dev_utility"]] == [t for t in rounds if t % 5 == 0 and t < ROUNDS]

    run(config, tmp_path / "stopped", world=sized, quiet=True, stop_after_round=3)
    run(config, tmp_path / "stopped", world=sized, quiet=True, resume=True)
    assert _scalars(tmp_path / "stopped") == whole, "a resumed run logs each round once, with the same values"


@pytest.mark.tiny
def test_tensorboard_holds_loss_and_lr_per_optimizer_step(hf_config, tmp_path):
    config = _tracked(hf_config(), "tensorboard")
    run(config, tmp_path / "run", quiet=True)
    scalars = _scalars(tmp_path / "run")
    steps = [s for s, _ in scalars["train/loss"]]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= config.run.rounds
    assert [s for s, _ in scalars["train/lr"]] == steps
    lrs = [lr for _, lr in scalars["train/lr"]]
    assert all(0 < lr <= config.train.lr * (1 + 1e-6) for lr in lrs)
    for t in range(1, config.run.rounds + 1):
        assert scalars["round/loss"][t - 1] == (t, pytest.approx(_round(tmp_path / "run", t, "reward")["mean_loss"]))


def test_wandb_runs_offline_in_the_run_dir(world, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    config = _tracked(sim_config(world, "uniform", BUDGET, 2, 0), "wandb")
    run(config, tmp_path / "run", world=world.with_example_tokens(BUDGET, 2), quiet=True)
    offline = list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    run_id = (tmp_path / "run" / "wandb" / "run_id").read_text()
    assert len(offline) == 1 and offline[0].name.endswith(run_id)
    records = b"".join(f.read_bytes() for f in offline[0].glob("*.wandb"))
    assert b"round/reward/gain" in records and b"round/allocation/math" in records


def test_missing_tracker_package_is_one_line_naming_the_extra(tmp_path, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    (tmp_path / "sim.yaml").write_text("world: {kind: sim}\nrun: {report_to: [tensorboard]}\n")
    assert main(["run", str(tmp_path / "sim.yaml"), "--run-dir", str(tmp_path / "never")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "read-distill: error: run.report_to: tensorboard is not installed; pip install 'read-distill[tensorboard]'"
    assert not (tmp_path / "never").exists()

"""The round loop on the simulated world: invariants of a run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from read_distill import sim
from read_distill.config import Config
from read_distill.generate import Generator
from read_distill.ledger import Ledger
from read_distill.report import write_report
from read_distill.runner import MEASURED, RunDirError, make_pilot, run
from read_distill.sim import sim_config
from read_distill.types import Profile

BUDGET = 2_000_000


def _config(world, policy, seed=0, rounds=8, **options) -> Config:
    return sim_config(world, policy, BUDGET, rounds, seed, **options)


def _sized(world, rounds=8):
    return world.with_example_tokens(BUDGET, rounds)


def _comparable(summary):
    return {k: v for k, v in summary.items() if k not in MEASURED}


@pytest.mark.parametrize("policy", ["random", "read", "exp3"])
def test_resume_equals_uninterrupted(world, tmp_path, policy):
    config = _config(world, policy)
    whole = run(config, tmp_path / "whole", world=_sized(world), quiet=True)
    for k in (1, 4, 7):
        d = tmp_path / f"stop{k}"
        run(config, d, world=_sized(world), quiet=True, stop_after_round=k)
        resumed = run(config, d, world=_sized(world), quiet=True, resume=True)
        assert _comparable(resumed) == _comparable(whole), f"stopped after round {k}"
        assert (d / "ledger.jsonl").read_text() == (tmp_path / "whole" / "ledger.jsonl").read_text()


def test_the_summary_records_time_and_peak_memory_of_every_phase_and_a_resume_keeps_them(world, tmp_path):
    config = _config(world, "read")
    run(config, tmp_path / "r", world=_sized(world), quiet=True, stop_after_round=3)
    summary = run(config, tmp_path / "r", world=_sized(world), quiet=True, resume=True)
    assert summary["peak_memory_kind"] == "process_max_rss"  # no GPU in a simulated run
    assert set(summary["peak_memory_mb"]) == set(summary["wall_s"]) >= {"setup", "policy", "probe", "checkpoint"}
    assert all(mb > 0 for mb in summary["peak_memory_mb"].values())
    assert "Wall time and peak memory by phase" in write_report(tmp_path / "r").read_text()


def test_read_pilots_are_overhead_outside_b_and_resume_equals_uninterrupted(world, tmp_path):
    config = _config(world, "read", profiling_tokens=BUDGET // 2)
    whole = run(config, tmp_path / "whole", world=_sized(world), quiet=True)
    entries = [json.loads(line) for line in (tmp_path / "whole/ledger.jsonl").read_text().splitlines()]
    pilots = [e for e in entries if e["phase"] == "profiling"]
    # One pilot per capability the reward reads, none of it billed against B.
    assert len(pilots) == int(np.count_nonzero(world.requirement)) and all(e["billable"] == 0 for e in pilots)
    assert sum(e["billable"] for e in entries) == BUDGET
    d = tmp_path / "stop"
    run(config, d, world=_sized(world), quiet=True, stop_after_round=3)
    resumed = run(config, d, world=_sized(world), quiet=True, resume=True)
    assert _comparable(resumed) == _comparable(whole)


def test_pilots_never_get_more_than_the_profiling_budget(world):
    config = _config(world, "grid", profiling_tokens=300_000)
    sized = _sized(world)
    pilot = make_pilot(config, sized, tuple(world.requirement), list(world.initial_profile), Ledger(None, BUDGET, "train"))
    w = tuple(1.0 if i == 0 else 0.0 for i in range(len(world.capabilities)))
    assert pilot(w, 200_000).tokens <= 200_000
    assert pilot(w, 200_000).tokens <= 100_000  # cut to what is left
    with pytest.raises(ValueError, match="profiling_tokens"):
        pilot(w, 1)


def test_resume_reuses_saved_examples_of_an_unfinished_round(world, tmp_path):
    """A crash after generation but before the round committed: the round's teacher
    charges stand, its examples are reused, and the end result is unchanged."""
    config = _config(world, "task_static")
    whole = run(config, tmp_path / "whole", world=_sized(world), quiet=True)
    d = tmp_path / "crash"
    run(config, d, world=_sized(world), quiet=True, stop_after_round=5)
    # Simulate the crash: redo round 5's commit as "not happened" (state says round 4).
    state = json.loads((d / "state.json").read_text())
    # Round files hold what each round probed (probe.others_every); the profile after round 4
    # carries the rest from earlier probes.
    prev = Profile.from_json(state["initial_profile"])
    for t in range(1, 5):
        prev = prev.updated(Profile.from_json(json.loads((d / f"rounds/{t:04d}/profile.json").read_text())))
    state.update(round=4, profile=prev.to_json())
    state["last_allocation"] = list(json.loads((d / "rounds/0004/allocation.json").read_text())["allocation"].values())
    (d / "state.json").write_text(json.dumps(state))
    # the student checkpoint of round 4 survives as student.prev
    assert json.loads((d / "student.prev/round.json").read_text())["round"] == 4
    resumed = run(config, d, world=_sized(world), quiet=True, resume=True)
    assert resumed["final_utility"] == pytest.approx(whole["final_utility"])
    assert resumed["ledger"] == whole["ledger"]


def test_same_seed_same_run_and_different_seed_differs(world, tmp_path):
    a = run(_config(world, "read", seed=3), tmp_path / "a", world=_sized(world), quiet=True)
    b = run(_config(world, "read", seed=3), tmp_path / "b", world=_sized(world), quiet=True)
    c = run(_config(world, "read", seed=4), tmp_path / "c", world=_sized(world), quiet=True)
    assert _comparable(a) == _comparable(b)
    assert (tmp_path / "a/ledger.jsonl").read_text() == (tmp_path / "b/ledger.jsonl").read_text()
    assert a["allocations"] != c["allocations"] or a["final_utility"] != c["final_utility"]


@pytest.mark.parametrize("unit", ["train", "gen+train"])
@pytest.mark.parametrize("budget", [1, 999, 123_457, BUDGET])
def test_ledger_spends_exactly_the_budget(world, tmp_path, unit, budget):
    config = sim_config(world, "uniform", budget, 7, 0).model_copy(
        update={"budget": Config().budget.model_copy(update={"total_tokens": budget, "unit": unit})}
    )
    summary = run(config, tmp_path / "r", world=world.with_example_tokens(budget, 7), quiet=True)
    assert summary["ledger"]["billable"] == budget
    ledger = Ledger(tmp_path / "r/ledger.jsonl", budget, unit)
    assert ledger.spent == budget


def test_existing_run_dir_is_refused_without_resume(world, tmp_path):
    config = _config(world, "uniform", rounds=2)
    run(config, tmp_path / "r", world=_sized(world, 2), quiet=True)
    before = (tmp_path / "r/summary.json").read_text()
    with pytest.raises(RunDirError, match="--resume"):
        run(config, tmp_path / "r", world=_sized(world, 2), quiet=True)
    assert (tmp_path / "r/summary.json").read_text() == before
    with pytest.raises(RunDirError, match="nothing to resume"):
        run(config, tmp_path / "empty", world=_sized(world, 2), quiet=True, resume=True)


def test_a_run_killed_before_its_config_was_in_leaves_a_directory_a_new_run_takes(world, tmp_path):
    """A kill between write_text's temporary file and its rename, on the run's first write:
    the directory holds the lock and that temporary file, nothing committed, and a run
    (compare's restart starts it afresh: it has no config.yaml) takes it."""
    config = _config(world, "uniform", rounds=2)
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "run.lock").write_text("")
    (tmp_path / "r" / ".config.yaml.k3j2.tmp").write_text("run:\n  na")
    run(config, tmp_path / "r", world=_sized(world, 2), quiet=True)
    assert (tmp_path / "r" / "summary.json").exists()
    assert not list((tmp_path / "r").glob(".*.tmp"))


def test_resume_with_another_config_is_refused(world, tmp_path):
    run(_config(world, "uniform", rounds=4), tmp_path / "r", world=_sized(world, 4), quiet=True, stop_after_round=1)
    with pytest.raises(RunDirError, match="differs"):
        run(_config(world, "task_static", rounds=4), tmp_path / "r", world=_sized(world, 4), quiet=True, resume=True)


def test_a_run_started_before_a_config_field_existed_resumes(world, tmp_path):
    """config.yaml without a field a later version added (its default is what the run ran
    with) resumes under that version; a value that differs is still refused."""
    config = _config(world, "uniform", rounds=4)
    run(config, tmp_path / "r", world=_sized(world, 4), quiet=True, stop_after_round=1)
    path = tmp_path / "r" / "config.yaml"
    path.write_text("".join(line for line in path.read_text().splitlines(keepends=True) if "chat_template" not in line))
    summary = run(config, tmp_path / "r", world=_sized(world, 4), quiet=True, resume=True)
    assert summary["final_utility"] == run(config, tmp_path / "whole", world=_sized(world, 4), quiet=True)["final_utility"]
    path.write_text(path.read_text().replace("rounds: 4", "rounds: 5"))
    with pytest.raises(RunDirError, match="differs"):
        run(config, tmp_path / "r", world=_sized(world, 4), quiet=True, resume=True)


def test_run_dir_layout(world, tmp_path):
    run(_config(world, "read", rounds=3), tmp_path / "r", world=_sized(world, 3), quiet=True)
    d = tmp_path / "r"
    for name in ("config.yaml", "env.json", "ledger.jsonl", "state.json", "summary.json", "student/round.json", "student/policy.json"):
        assert (d / name).exists(), name
    # Rounds are numbered 1..n, as the console prints them.
    assert sorted(p.name for p in (d / "rounds").iterdir()) == ["0001", "0002", "0003"]
    for t in (1, 2, 3):
        for name in ("allocation.json", "profile.json", "reward.json", "examples.jsonl"):
            assert (d / f"rounds/{t:04d}/{name}").exists()
    assert not (d / "student.tmp").exists()
    assert not (d / "report.html").exists(), "sim runs render no report unless run.report=true"


@pytest.mark.parametrize(
    "allocation",
    [(1, 0, 0, 0, 0, 0, 0, 0), (0.5, 0, 0, 0.5, 0, 0, 0, 0), (0.1, 0.2, 0.3, 0.05, 0.05, 0.1, 0.1, 0.1)],
)
def test_realised_token_shares_match_the_allocation(world, allocation):
    """Drawing capabilities from w fills each capability's share of the round's tokens."""
    sized = world.with_example_tokens(10_000_000, 10)  # ~40 examples a round
    gen = Generator(sized, Config().generation, seed=0)
    ledger = Ledger(None, 10**9)
    examples = gen.generate_round(sized.teachers(), allocation, 1_000_000, ledger, 0, 0.0, np.random.default_rng(0))
    tokens = np.zeros(8)
    for e in examples:
        tokens[sized.capabilities.index(e.capability)] += e.completion_tokens
    share = tokens / tokens.sum()
    assert np.abs(share - np.asarray(allocation)).max() <= 1.0 / len(examples) + 1e-9


def test_public_sim_entry_points(world):
    result = sim.run(world, "task_static", budget_tokens=BUDGET, rounds=5, seed=1)
    assert len(result.allocations) == 5 and len(result.profiles) == 6
    assert result.final_utility != result.initial_utility


def test_the_run_holds_its_directory_lock_while_it_works(world, tmp_path):
    import os

    from read_distill.rundir import hold_run_dir

    d, sized, seen = tmp_path / "r", _sized(world, 2), []
    evaluate = sized.evaluate

    def evaluate_and_try_the_lock(*args, **kwargs):
        try:
            with hold_run_dir(d):
                seen.append("free")
        except RunDirError as e:
            seen.append(str(e))
        return evaluate(*args, **kwargs)

    sized.evaluate = evaluate_and_try_the_lock
    run(_config(world, "uniform", rounds=2), d, world=sized, quiet=True)
    assert seen and all(f"in use by process {os.getpid()}" in s for s in seen)
    with hold_run_dir(d):  # released when the run ends
        pass


class _ThirdReadsHigher:
    """The sized simulated world with 48 probe items per capability whose first third reads
    7 points above the whole: a full measurement carries the item scores (mean unchanged),
    the probes after a round (``sequential``) read the first third."""

    def __init__(self, world):
        self._world = world

    def __getattr__(self, name):
        return getattr(self._world, name)

    def probe(self, student, ledger, round, capabilities=None, sequential=False):
        measured = self._world.probe(student, ledger, round, capabilities, sequential)
        if sequential:
            return Profile({c: v + 7.0 for c, v in measured.scores.items()}, measured.intervals)
        items = {c: (v + 7.0,) * 16 + (v - 3.5,) * 32 for c, v in measured.scores.items()}
        return Profile(measured.scores, measured.intervals, items)


def test_round_one_changes_start_from_what_the_probes_after_a_round_read(world, tmp_path):
    """The initial measurement (every item) is the run's initial profile; the scores the
    round-1 change starts from are read as the probes after a round read (the first third
    of the items in a real world), so round 1's change compares like with like."""
    config = _config(world, "read")
    shifted, plain = tmp_path / "shifted", tmp_path / "plain"
    run(config, shifted, world=_ThirdReadsHigher(_sized(world)), quiet=True, stop_after_round=1)
    run(config, plain, world=_sized(world), quiet=True, stop_after_round=1)
    state, unshifted = (json.loads((d / "state.json").read_text()) for d in (shifted, plain))
    # The 7 points both sequential readings add cancel out of round 1's change...
    reward = [json.loads((d / "rounds/0001/reward.json").read_text()) for d in (shifted, plain)]
    assert reward[0]["gain"] == pytest.approx(reward[1]["gain"])
    # ...while the initial profile is the full measurement's.
    assert state["initial_profile"] == unshifted["initial_profile"]

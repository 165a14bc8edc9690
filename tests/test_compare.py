"""compare across budgets on a simulated world: tables per budget, the equivalent-budget
ratio, methods as override bundles, and resume of an interrupted comparison."""

import json
from pathlib import Path

import pytest

from read_distill.config import ConfigError, dump_config, load_config
from read_distill.experiments.compare import compare, equivalent_budget, run_metrics, task_card
from read_distill.experiments.methods import METHODS, method_config
from read_distill.rewards import essential
from read_distill.runner import run
from read_distill.tasks import card_requirement

SIM = "world: {kind: sim}\nrun: {rounds: 4}\nbudget: {total_tokens: 8000000}\n"


def _table(budget, means):
    return {"budget": budget, "results": {m: {"final_utility": {"mean": u}} for m, u in means.items()}}


def test_equivalent_budget_interpolates_in_log_budget_and_says_its_bounds():
    tables = [_table(1000, {"read": 30.0, "a": 10.0, "b": 20.0}), _table(4000, {"read": 60.0, "a": 40.0, "b": 25.0}),
              _table(16000, {"read": 90.0, "a": 50.0, "b": 30.0})]
    rows = equivalent_budget(tables, ["a", "b"])
    # read's 30 at 1,000 lies between the best baseline's 20 (1,000) and 40 (4,000): half way
    # in utility, so half way in log budget: 2,000 tokens, ratio 2.
    assert rows[0]["baseline_budget"] == pytest.approx(2000.0) and rows[0]["ratio"] == pytest.approx(2.0)
    assert rows[0]["bound"] == "interpolated"
    assert rows[1]["bound"] == rows[2]["bound"] == "not reached" and rows[1]["ratio"] == pytest.approx(4.0)
    easy = equivalent_budget([_table(1000, {"read": 5.0, "a": 10.0}), _table(2000, {"read": 6.0, "a": 11.0})], ["a"])
    assert easy[0]["bound"] == "at most" and easy[0]["ratio"] == pytest.approx(1.0)


def test_methods_are_override_bundles_checked_like_the_command_line(tmp_path):
    cfg = tmp_path / "sim.yaml"
    cfg.write_text(SIM)
    config = load_config(cfg)
    kd = method_config(config, "logit_kd", seed=3, budget=123456)
    assert (kd.policy.name, kd.train.signal, kd.train.objective) == ("one_hot", "logit", "kd")
    assert (kd.run.seed, kd.budget.total_tokens, config.policy.name) == (3, 123456, "read")
    assert method_config(config, "read_no_identification", 0).task.requirement == "uniform"
    with pytest.raises(ConfigError, match="method 'nope': unknown"):
        method_config(config, "nope", 0)
    with pytest.raises(ConfigError, match="budget.total_tokens"):
        method_config(config, "read", 0, budget=0)
    assert {"read", "task_static", "resp_sft", "cot_kd", "logit_sft"} <= set(METHODS)


def test_compare_over_budgets_resumes_an_interrupted_run_and_reports_equivalent_budget(tmp_path):
    cfg = tmp_path / "sim.yaml"
    cfg.write_text(SIM)
    config = load_config(cfg)
    methods, seeds, budgets = ["read", "cot_sft", "task_static"], [0, 1], [2_000_000, 8_000_000]
    whole = compare(config, methods, seeds, tmp_path / "whole", budgets=budgets, quiet=True)
    # The same comparison, killed after round 2 of one run: compare continues that run.
    stopped = tmp_path / "cut" / "8000000" / "read" / "seed1"
    run(method_config(config, "read", 1, 8_000_000), stopped, quiet=True, stop_after_round=2)
    assert not (stopped / "summary.json").exists()
    # And one killed before its first round committed: only its config was written.
    early = tmp_path / "cut" / "2000000" / "task_static" / "seed0"
    early.mkdir(parents=True)
    (early / "config.yaml").write_text(dump_config(method_config(config, "task_static", 0, 2_000_000)))
    cut = compare(config, methods, seeds, tmp_path / "cut", budgets=budgets, quiet=True)
    assert json.dumps(cut["tables"]) == json.dumps(whole["tables"])
    assert [t["budget"] for t in whole["tables"]] == budgets
    assert all(set(t["results"]) == set(methods) for t in whole["tables"])
    assert [r["budget"] for r in whole["equivalent_budget"]] == budgets
    text = (tmp_path / "whole" / "comparison.md").read_text()
    assert "### Budget 2,000,000 tokens" in text and "Equivalent budget" in text
    page = (tmp_path / "whole" / "comparison.html").read_text()
    assert page.count('<svg class="chart"') == 3 and "Utility against budget" in page and "cot_sft" in page
    summary = json.loads((tmp_path / "whole" / "2000000" / "cot_sft" / "seed0" / "summary.json").read_text())
    assert summary["policy"] == "one_hot" and summary["budget_tokens"] == 2_000_000
    # Negative transfer is the off-target harm alone: losses, with gains counted as 0.
    r = card_requirement(task_card(config, None), tuple(config.capabilities))
    metrics = run_metrics(summary, r, config.reward.top_k)
    ess = {config.capabilities[i] for i in essential(r, config.reward.top_k)}
    off = [summary["final_profile"][c] - summary["initial_profile"][c] for c in config.capabilities if c not in ess]
    assert any(x > 0 for x in off) and any(x < 0 for x in off), "the case where harm and change differ"
    assert metrics["negative_transfer"] == pytest.approx(sum(min(0.0, x) for x in off) / len(off))
    assert metrics["negative_transfer"] <= min(0.0, metrics["off_target_change"]) + 1e-12
    assert "| negative transfer |" in text


def test_compare_in_worker_processes_equals_one_process(tmp_path, capsys):
    from read_distill.cli import main

    cfg = tmp_path / "sim.yaml"
    cfg.write_text(SIM)
    args = ["compare", str(cfg), "--methods", "read", "uniform", "--seeds", "0", "1", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    assert main([*args, "--jobs", "2", "--out", str(tmp_path / "two")]) == 0
    tables = [json.loads((tmp_path / d / "comparison.json").read_text())["tables"] for d in ("one", "two")]
    assert json.dumps(tables[0]) == json.dumps(tables[1])
    with pytest.raises(SystemExit) as e:
        main([*args, "--jobs", "0"])
    assert e.value.code == 2 and "expected an integer >= 1" in capsys.readouterr().err


def test_the_interaction_ablation_changes_what_read_scores_candidates_by():
    import numpy as np

    from read_distill.policies.read import ReadPolicy

    config = load_config(None, ["world.kind=sim"])
    ablated = method_config(config, "read_no_interaction", 0)
    assert (ablated.reward.beta, ablated.policy.beta, config.policy.beta) == (0.0, 0.0, 0.5)
    r = tuple([0.5, 0.5] + [0.0] * (len(config.capabilities) - 2))
    drop = np.asarray([[[4.0, -6.0]]])  # (member, candidate, needed capability) score changes
    with_spill = ReadPolicy(tuple(config.capabilities), r, config.policy)._rewards(drop)
    without = ReadPolicy(tuple(config.capabilities), r, ablated.policy)._rewards(drop)
    assert without.item() == -1.0 and with_spill.item() == -1.0 - 0.5 * 0.5 * 6.0


def test_transfer_runs_one_hot_per_capability_and_its_matrix_is_their_score_changes(tmp_path, capsys):
    from read_distill.cli import main

    cfg = tmp_path / "sim.yaml"
    cfg.write_text(SIM)
    out = tmp_path / "transfer"
    assert main(["transfer", str(cfg), "--budgets", "2000000", "8000000", "--seeds", "0", "1", "--out", str(out), "--quiet"]) == 0
    result = json.loads((out / "transfer.json").read_text())
    caps = result["capabilities"]
    assert [m["budget"] for m in result["matrices"]] == [2_000_000, 8_000_000] and (out / "transfer.png").stat().st_size > 0
    for m in result["matrices"]:
        for i in caps:
            runs = [json.loads((out / str(m["budget"]) / f"only_{i}" / f"seed{s}" / "summary.json").read_text()) for s in (0, 1)]
            assert all(r["allocations"][0][i] == 1.0 for r in runs), "only_<i> spends the whole budget on i"
            for j in caps:
                mean, low, high = m["matrix"][i][j]
                assert mean == pytest.approx(sum(r["final_profile"][j] - r["initial_profile"][j] for r in runs) / 2)
                assert low <= mean <= high
    assert "T_ij at 8,000,000 tokens" in capsys.readouterr().out
    # A second call reads every run back instead of running it again.
    mtimes = {p: p.stat().st_mtime_ns for p in out.glob("*/*/seed*/summary.json")}
    assert main(["transfer", str(cfg), "--budgets", "2000000", "8000000", "--seeds", "0", "1", "--out", str(out), "--quiet"]) == 0
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/*/seed*/summary.json")} == mtimes


def test_an_unknown_only_capability_is_one_line_before_anything_runs(tmp_path, capsys):
    from read_distill.cli import main

    cfg = tmp_path / "sim.yaml"
    cfg.write_text(SIM)
    assert main(["compare", str(cfg), "--methods", "only_mathh", "--seeds", "0", "--out", str(tmp_path / "c")]) == 2
    assert "only_mathh" in capsys.readouterr().err and not (tmp_path / "c").exists()


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="workers follow their parent by prctl, Linux only")
def test_killing_a_comparison_ends_its_workers_and_a_restart_resumes(tmp_path):
    """`kill -9` of a running `compare --jobs 2`: its workers end with it (none left holding
    a run directory's lock), and the same command run again finishes the comparison."""
    import os
    import signal
    import subprocess
    import sys
    import time

    cfg = tmp_path / "sim.yaml"
    cfg.write_text(SIM.replace("rounds: 4", "rounds: 20"))
    cmd = [sys.executable, "-m", "read_distill", "compare", str(cfg), "--methods", "read", "uniform",
           "--seeds", *map(str, range(12)), "--jobs", "2", "--out", str(tmp_path / "cmp")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.stdout.readline().startswith(b"[compare] done")  # the workers are running
    workers = [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
    assert len([w for w in workers if Path(f"/proc/{w}/cmdline").read_bytes().find(b"spawn_main") >= 0]) == 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{w}").exists() and b"State:\tZ" not in Path(f"/proc/{w}/status").read_bytes() for w in workers):
        assert time.monotonic() < deadline, "a worker outlived the comparison"
        time.sleep(0.1)
    again = subprocess.run(cmd, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert again.returncode == 0, (again.stdout + again.stderr).decode()[-2000:]
    assert (tmp_path / "cmp" / "comparison.json").exists()


def test_a_finished_run_of_another_config_is_refused_not_read_back(tmp_path, capsys):
    from read_distill.cli import main

    cfg = tmp_path / "sim.yaml"
    cfg.write_text(SIM)
    args = ["compare", str(cfg), "--methods", "read", "uniform", "--seeds", "0", "--quiet", "--out", str(tmp_path / "c")]
    assert main(args) == 0
    before = (tmp_path / "c" / "comparison.json").read_text()
    # The same out with an edited config: its finished runs would be stale rows.
    assert main([*args, "reward.beta=0.25"]) == 2
    err = capsys.readouterr().err
    assert "was run with another config (reward.beta (0.5 there, 0.25 given))" in err and err.count("\n") == 1
    assert (tmp_path / "c" / "comparison.json").read_text() == before

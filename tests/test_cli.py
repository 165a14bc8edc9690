"""The command line: exit codes, messages, and the sim path end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from read_distill.cli import main


def test_import_and_help_do_not_import_torch():
    code = "import sys, read_distill, read_distill.cli\ntry:\n  read_distill.cli.main(['--help'])\nexcept SystemExit:\n  pass\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("False")


def test_validate_ok_and_bad(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text("world: {kind: sim}\n")
    assert main(["validate", str(good)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("budget: {total_tokens: lots}\n")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "budget.total_tokens" in err
    assert main(["validate", str(good), "policy.nme=x"]) == 2
    assert "unknown key 'policy.nme'" in capsys.readouterr().err


def test_unknown_task_card_exits_2(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("task: {card: does_not_exist}\n")
    assert main(["validate", str(cfg)]) == 2
    assert "unknown task card" in capsys.readouterr().err


def test_run_resume_and_refusal(tmp_path, capsys):
    cfg = tmp_path / "sim.yaml"
    cfg.write_text("world: {kind: sim}\nrun: {rounds: 4}\nbudget: {total_tokens: 400000}\n")
    d = tmp_path / "run"
    assert main(["run", str(cfg), "policy.name=task_static", "--run-dir", str(d), "--quiet"]) == 0
    summary = json.loads((d / "summary.json").read_text())
    assert summary["ledger"]["billable"] == 400000 and summary["policy"] == "task_static"
    before = (d / "ledger.jsonl").read_text()
    assert main(["run", str(cfg), "policy.name=task_static", "--run-dir", str(d), "--quiet"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert (d / "ledger.jsonl").read_text() == before
    assert main(["run", str(cfg), "policy.name=task_static", "--run-dir", str(d), "--resume", "--quiet"]) == 0
    assert main(["ls", str(tmp_path)]) == 0
    assert "done" in capsys.readouterr().out


def test_compare_writes_table_with_p_values(tmp_path, capsys):
    cfg = tmp_path / "sim.yaml"
    cfg.write_text("world: {kind: sim}\nrun: {rounds: 5}\nbudget: {total_tokens: 20000000}\n")
    out = tmp_path / "cmp"
    assert main(["compare", str(cfg), "--policies", "read", "uniform", "--seeds", "0", "1", "2", "--out", str(out), "--quiet"]) == 0
    result = json.loads((out / "comparison.json").read_text())
    assert set(result["results"]) == {"read", "uniform"}
    p = result["results"]["uniform"]["welch_vs_read"]["p"]
    assert 0.0 <= p <= 1.0
    table = (out / "comparison.md").read_text()
    assert "| uniform |" in table and "p (vs read)" in table


def test_typo_in_policy_name_exits_2_before_creating_anything(tmp_path, capsys):
    cfg = tmp_path / "sim.yaml"
    cfg.write_text("world: {kind: sim}\npolicy: {name: task_statc}\n")
    run_dir = tmp_path / "run"
    assert main(["run", str(cfg), "--run-dir", str(run_dir), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "policy.name: unknown policy; expected one of read, greedy, uniform, task_static" in err
    assert not run_dir.exists()
    with pytest.raises(SystemExit) as e:
        main(["compare", str(cfg), "--policies", "read", "unifrom"])
    assert e.value.code == 2


@pytest.mark.parametrize("argv", [["run"], ["compare"], ["bogus"]])
def test_usage_errors_exit_2(argv):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2


def test_every_shipped_config_validates():
    from pathlib import Path

    root = Path(__file__).parent.parent / "configs"
    configs = sorted(root.glob("**/*.yaml"))
    configs = [c for c in configs if "tasks" not in c.parts]
    assert len(configs) >= 4
    for c in configs:
        assert main(["validate", str(c)]) == 0, c

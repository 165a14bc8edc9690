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
    assert main(["compare", str(cfg), "--methods", "read", "uniform", "--seeds", "0", "1", "2", "--out", str(out), "--quiet"]) == 0
    result = json.loads((out / "comparison.json").read_text())
    (table,) = result["tables"]
    assert table["budget"] == 20000000 and set(table["results"]) == {"read", "uniform"}
    tests = table["results"]["uniform"]["vs_read"]
    for kind in ("welch", "paired"):
        assert 0.0 <= tests[kind]["p"] <= tests[kind]["p_holm"] <= 1.0
    read, uniform = (table["results"][p]["final_utility"]["values"] for p in ("read", "uniform"))
    assert tests["paired"]["diff"] == pytest.approx(sum(read) / 3 - sum(uniform) / 3)
    table = (out / "comparison.md").read_text()
    assert "| uniform |" in table and "p paired (Holm)" in table


def test_typo_in_policy_name_exits_2_before_creating_anything(tmp_path, capsys):
    cfg = tmp_path / "sim.yaml"
    cfg.write_text("world: {kind: sim}\npolicy: {name: task_statc}\n")
    run_dir = tmp_path / "run"
    assert main(["run", str(cfg), "--run-dir", str(run_dir), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "policy.name: unknown policy; expected one of read, greedy, uniform, task_static" in err
    assert not run_dir.exists()
    cfg.write_text("world: {kind: sim}\n")
    assert main(["compare", str(cfg), "--methods", "read", "unifrom", "--out", str(run_dir)]) == 2
    assert "method 'unifrom': unknown" in capsys.readouterr().err
    assert not run_dir.exists()


@pytest.mark.parametrize("argv", [["run"], ["compare"], ["bogus"]])
def test_usage_errors_exit_2(argv):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2


def test_every_shipped_config_validates():
    from pathlib import Path

    root = Path(__file__).parent.parent / "configs"
    configs = sorted(root.glob("**/*.yaml"))
    # configs/accelerate holds accelerate's launch configs, not read-distill's.
    configs = [c for c in configs if "tasks" not in c.parts and "accelerate" not in c.parts]
    assert len(configs) >= 4
    for c in configs:
        assert main(["validate", str(c)]) == 0, c


SIM = "world: {kind: sim}\nrun: {rounds: 2}\nbudget: {total_tokens: 200000}\n"
#: A second process that holds a run directory's lock until its stdin closes.
HOLD_LOCK = (
    "import sys\nfrom pathlib import Path\nfrom read_distill.rundir import hold_run_dir\n"
    "with hold_run_dir(Path(sys.argv[1])):\n    print('locked', flush=True)\n    sys.stdin.read()\n"
)


def _one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_a_second_writer_is_refused_and_a_dead_holders_lock_blocks_nothing(tmp_path, capsys):
    cfg = tmp_path / "sim.yaml"
    cfg.write_text(SIM)
    d = tmp_path / "run"
    assert main(["run", str(cfg), "--run-dir", str(d), "--quiet"]) == 0
    before = {name: (d / name).read_bytes() for name in ("state.json", "ledger.jsonl", "summary.json")}
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(d)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        capsys.readouterr()
        assert main(["run", str(cfg), "--run-dir", str(d), "--resume", "--quiet"]) == 2
        assert f"in use by process {holder.pid}" in _one_line(capsys.readouterr().err)
        assert main(["run", str(cfg), "--run-dir", str(d), "--overwrite", "--quiet"]) == 2
        assert f"in use by process {holder.pid}" in _one_line(capsys.readouterr().err)
        assert {name: (d / name).read_bytes() for name in before} == before
    finally:
        holder.kill()  # dies holding the lock; the kernel releases it
        holder.wait()
    assert (d / "run.lock").read_text().strip() == str(holder.pid)
    assert main(["run", str(cfg), "--run-dir", str(d), "--resume", "--quiet"]) == 0


def test_overwrite_replaces_a_run_on_purpose_only(tmp_path, capsys):
    cfg = tmp_path / "sim.yaml"
    cfg.write_text(SIM)
    d = tmp_path / "run"
    assert main(["run", str(cfg), "--run-dir", str(d), "--quiet"]) == 0
    ledger = (d / "ledger.jsonl").read_text()
    (d / "stale.txt").write_text("left by an earlier run")
    capsys.readouterr()
    assert main(["run", str(cfg), "--run-dir", str(d), "--quiet"]) == 2
    assert "run directory exists" in _one_line(capsys.readouterr().err) and (d / "stale.txt").exists()
    assert main(["run", str(cfg), "--run-dir", str(d), "--overwrite", "--resume", "--quiet"]) == 2
    assert "exclude each other" in _one_line(capsys.readouterr().err)
    assert main(["run", str(cfg), "--run-dir", str(d), "--overwrite", "--quiet"]) == 0
    assert not (d / "stale.txt").exists() and (d / "ledger.jsonl").read_text() == ledger
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("not a run")
    capsys.readouterr()
    assert main(["run", str(cfg), "--run-dir", str(foreign), "--overwrite", "--quiet"]) == 2
    assert "not a run directory" in _one_line(capsys.readouterr().err) and (foreign / "mine.txt").exists()


def test_overrides_may_stand_anywhere(tmp_path, capsys):
    cfg = tmp_path / "sim.yaml"
    cfg.write_text(SIM)
    d = tmp_path / "a=b"  # an option's value is never taken for an override
    argv = ["run", "--quiet", str(cfg), "--run-dir", str(d), "policy.name=task_static", "--quiet", "budget.total_tokens=100000"]
    assert main(argv) == 0
    summary = json.loads((d / "summary.json").read_text())
    assert summary["policy"] == "task_static" and summary["budget_tokens"] == 100000
    out = tmp_path / "cmp"
    assert main(["compare", str(cfg), "--methods", "read", "uniform", "run.rounds=3", "--seeds", "0", "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "comparison.json").read_text())["config"]["run"]["rounds"] == 3
    assert main(["validate", "run.seed=3", str(cfg)]) == 0


CARD = "name: t\ndescription: d\nrequirement: {math: 1}\ndata: {dev: dev.jsonl, test: test.jsonl}\n"
ROW = b'{"prompt": "1+1 A:", "answer": "2", "grader": "numeric"}\n'


@pytest.mark.parametrize(
    "dev, card, override, needle",
    [
        (b'{"prompt": "p", "answer": "a", "grader": "exakt"}\n', CARD, "run.seed=0", "dev.jsonl:1: grader: unknown grader 'exakt'"),
        (ROW + b'{"prompt": "p" "answer": "a"}\n', CARD, "run.seed=0", "dev.jsonl:2: not valid JSON (Expecting ',' delimiter at column 16)"),
        (ROW + b'{"prompt": "\xff", "answer": "a"}\n', CARD, "run.seed=0", "dev.jsonl:2: not valid UTF-8 (byte 0xff)"),
        (ROW, CARD.replace("math: 1", "mth: 1"), "run.seed=0", "requirement names unknown capabilities ['mth']"),
        (ROW, CARD, "policy.name=raed", "policy.name: unknown policy; expected one of read"),
        (ROW, CARD, "task.requirement={math: 1e308, code: 1e308}", "requirement weights add up to inf"),
    ],
)
def test_bad_cards_and_data_stop_validate_and_run_before_anything_exists(tmp_path, capsys, dev, card, override, needle):
    (tmp_path / "card.yaml").write_text(card)
    (tmp_path / "dev.jsonl").write_bytes(dev)
    (tmp_path / "test.jsonl").write_bytes(ROW)
    cfg = tmp_path / "micro.yaml"
    cfg.write_text(f"world: {{kind: micro}}\ntask: {{card: {tmp_path / 'card.yaml'}}}\n")
    d = tmp_path / "run"
    assert main(["validate", str(cfg), override]) == 2
    validate_err = _one_line(capsys.readouterr().err)
    assert needle in validate_err
    assert main(["run", str(cfg), "--run-dir", str(d), override]) == 2
    assert _one_line(capsys.readouterr().err) == validate_err
    assert not d.exists()
    # Fixed, the same command is not blocked by anything the failed one left.
    (tmp_path / "card.yaml").write_text(CARD)
    (tmp_path / "dev.jsonl").write_bytes(ROW)
    assert main(["validate", str(cfg)]) == 0


def test_run_dir_that_is_a_file_is_refused(tmp_path, capsys):
    cfg = tmp_path / "sim.yaml"
    cfg.write_text(SIM)
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["run", str(cfg), "--run-dir", str(f), "--quiet"]) == 2
    assert "not a directory" in _one_line(capsys.readouterr().err) and f.read_text() == "x"

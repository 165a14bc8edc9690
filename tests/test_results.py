"""make results (read_distill.experiments.results) on simulated worlds: every table, the
targets' verdicts, the transfer study and the time per part, resumed without rerunning."""

import pytest

from read_distill.config import load_config
from read_distill.experiments import results


@pytest.fixture
def small_plan(tmp_path, monkeypatch):
    cfg = tmp_path / "sim.yaml"
    cfg.write_text("world: {kind: sim}\nrun: {rounds: 4}\n")
    # Two simulated environments stand in for the composite tasks; the plan's shape is the real one.
    monkeypatch.setattr(results, "_config", lambda task, *extra: load_config(cfg, [f"world.sim_environment={task}", *extra]))
    monkeypatch.setattr(results, "TASKS", {"paper_20m": (2_000_000, 8_000_000), "paper_steer_math_150m": (2_000_000, 8_000_000)})
    monkeypatch.setattr(results, "SEEDS", [0, 1])
    # A simulated student does not sample: on-policy distillation needs a real one.
    monkeypatch.setattr(results, "TABLE_1", [m for m in results.TABLE_1 if m != "on_policy"])
    monkeypatch.setattr(results, "TRANSFER_BUDGETS", [1_000_000, 4_000_000])
    monkeypatch.setattr(results, "TRANSFER_TASK", "paper_20m")
    return tmp_path


def test_results_writes_both_tables_targets_transfer_and_times_and_resumes(small_plan):
    out, doc = small_plan / "runs", small_plan / "docs" / "results.md"
    doc.parent.mkdir()
    text = results.produce(out, doc, jobs=1, quiet=True)
    assert doc.read_text() == text and (doc.parent / "results_transfer.png").stat().st_size > 0
    for task in results.TASKS:
        assert (doc.parent / f"results_{task}.png").stat().st_size > 0 and f"![utility against budget](results_{task}.png)" in text
    # Where each schedule spent its rounds: task_static never leaves r, uniform always does.
    assert text.count("### Where the schedules spent their rounds, ") == 4
    assert "| task_static | 0 / 0 of 4 |" in text and "| uniform | 4 / 4 of 4 |" in text
    for task in results.TASKS:
        assert f"## {task} (r: " in text
        for budget in ("2,000,000", "8,000,000"):
            assert f"### Table 1 analogue: single-capability objectives, {budget} tokens" in text
            assert f"### Table 2 analogue: schedules and ablations, {budget} tokens" in text
    assert text.count("| student base | ") == 4 and "Final probe score per capability" in text
    # Every method of both tables is a row; read's family ran last, after every baseline.
    for method in results.TABLE_1 + results.TABLE_2:
        assert f"| {method} | " in text
    order = sorted(out.glob("*/*/*/seed0/summary.json"), key=lambda p: p.stat().st_mtime_ns)
    first_read = next(i for i, p in enumerate(order) if p.parts[-3].startswith("read"))
    assert all(p.parts[-3].startswith("read") for p in order[first_read:])
    assert text.count("read above every baseline (Holm p < 0.05)") == 2
    assert text.count("no method at the ceiling (best mean below 99)**: 2,000,000: ") == 2
    # grid searched its allocation on pilots: a profiling budget of half of B, outside B.
    grid = (out / "paper_20m" / "8000000" / "grid" / "seed0" / "config.yaml").read_text()
    assert "profiling_tokens: 4000000" in grid
    assert "Transfer off-diagonals growing more negative with budget**: " in text
    assert "| total | " in text and "| transfer | " in text and "| part | wall time | run time |" in text
    # A second invocation runs nothing again and writes the same tables.
    mtimes = {p: p.stat().st_mtime_ns for p in out.glob("**/summary.json")}
    again = results.produce(out, doc, jobs=1, quiet=True)
    assert {p: p.stat().st_mtime_ns for p in out.glob("**/summary.json")} == mtimes
    assert again.split("## Time")[0] == text.split("## Time")[0]
    # A fresh clone has only the record beside the document: nothing runs again, same tables.
    records = doc.parent / "results_runs"
    assert sorted(p.name for p in records.iterdir()) == ["paper_20m.jsonl", "paper_steer_math_150m.jsonl", "timings.json", "transfer.jsonl"]
    assert sum(len(p.read_text().splitlines()) for p in records.glob("*.jsonl")) == len(mtimes)
    elsewhere = small_plan / "clone"
    fresh = results.produce(elsewhere, doc, jobs=1, quiet=True)
    assert fresh.split("## Time")[0] == text.split("## Time")[0]
    assert list(out.glob("**/state.json")) and not list(elsewhere.glob("**/state.json"))  # no run was started


def test_fixed_methods_come_before_reads_family():
    methods = results.methods()
    first = next(i for i, m in enumerate(methods) if m.startswith("read"))
    assert all(m.startswith("read") for m in methods[first:]) and set(methods) == set(results.TABLE_1 + results.TABLE_2)


def test_the_command_refuses_a_bad_jobs_value_in_one_line(capsys):
    from read_distill.cli import main

    with pytest.raises(SystemExit) as e:
        main(["results", "--jobs", "0"])
    assert e.value.code == 2 and "expected an integer >= 1" in capsys.readouterr().err

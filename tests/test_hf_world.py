"""The HF world end to end on two tiny random Llama models built in-process (CPU, no hub)."""

from __future__ import annotations

import json
import sqlite3

import pytest
import yaml

from read_distill.config import Config, ConfigError, load_config
from read_distill.templates import prompt_hash
from read_distill.types import CAPABILITIES

pytestmark = pytest.mark.tiny


def test_run_two_rounds_with_hf_world(hf_config, models, card, tmp_path):
    from read_distill.runner import run

    config = hf_config()
    summary = run(config, tmp_path / "run", quiet=True)
    assert (tmp_path / "run" / "summary.json").exists()
    assert 0 < summary["ledger"]["billable"] <= config.budget.total_tokens
    assert set(summary["final_profile"]) == set(CAPABILITIES)
    assert 0 <= summary["final_utility"] <= 100
    cache = tmp_path / "run" / "teacher_cache.sqlite"
    assert cache.exists(), "the runner keeps a teacher cache"
    with sqlite3.connect(cache) as db:
        assert db.execute("SELECT COUNT(*) FROM generations").fetchone()[0] > 0
    examples = [json.loads(line) for line in (tmp_path / "run" / "rounds" / "0001" / "examples.jsonl").read_text().splitlines()]
    assert examples and all(e["template"].startswith(e["capability"] + ".") for e in examples)


def test_probe_scores_by_teacher_answer_and_keeps_it(hf_config, models, card):
    from read_distill.hf_world import make_world
    from read_distill.ledger import Ledger
    from read_distill.templates import prompt_hash

    world = make_world(hf_config(world={"probe_scoring": "teacher_logprob"}))
    assert all(not it.answer and not it.grader for items in world.suite.values() for it in items)
    ledger = Ledger(None, 1)
    student = world.student(0)
    first = world.probe(student, ledger, 0)
    charged = sum(e.tokens for e in ledger.entries)
    references = {c: [it.answer for it in items] for c, items in world._with_teacher_answers(ledger, 0).items()}
    second = world.probe(student, ledger, 1)
    # The teacher answered once: the second probe charges only the student's work again.
    assert sum(e.tokens for e in ledger.entries) - charged < charged
    assert first.scores == second.scores and all(0 < v <= 100 for v in first.scores.values())
    assert all(refs for refs in references.values())
    # Training draws never reuse a probe prompt's seed range, and the filter sees every probe.
    hashes = world.evaluation_hashes()
    assert {prompt_hash(it.prompt) for items in world.suite.values() for it in items} <= hashes
    assert world.draw("math", "medium", 2**62 + 5) == world.draw("math", "medium", 2**62 + 5)


def test_missing_models_are_config_errors(card):
    from read_distill.hf_world import make_world

    config = Config.model_validate({"world": {"kind": "hf"}, "task": {"card": card}})
    with pytest.raises(ConfigError, match=r"world\.teacher: required for world\.kind=hf"):
        make_world(config)
    with pytest.raises(ConfigError, match="world.template_dir"):
        make_world(Config.model_validate({"world": {"kind": "hf", "teacher": "t", "student": "s", "template_dir": "/nonexistent"}}))


def test_answer_form_is_the_one_needed_capability_graded_like_the_task(hf_config, models, card):
    """The card's rows are graded as tool calls and only tool_use's probes are: tool_use is
    the task's answer form. Without graded probes, or with tool_use not needed, none is."""
    from read_distill.hf_world import make_world

    caps = list(CAPABILITIES)
    need = {"tool_use": 0.6, "math": 0.4}
    r = tuple(need.get(c, 0.0) for c in caps)
    form = make_world(hf_config()).answer_form(r)
    assert [c for c, a in zip(caps, form, strict=True) if a] == ["tool_use"]
    assert make_world(hf_config(world={"probe_scoring": "teacher_logprob"})).answer_form(r) == ()
    assert make_world(hf_config()).answer_form(tuple(float(c == "math") for c in caps)) == ()


def test_logit_kd_across_two_vocabularies_stops_before_anything_is_created(hf_config, models, card, tmp_path, capsys):
    """A student whose tokenizer differs from the teacher's: logit KD is refused in one line
    naming both tokenizers, before a run directory exists; text SFT is accepted."""
    import shutil

    import yaml
    from transformers import AutoTokenizer

    from read_distill.cli import main

    student = tmp_path / "other-student"
    shutil.copytree(models["student"], student)
    tok = AutoTokenizer.from_pretrained(student)
    tok.add_tokens(["<extra>"])
    tok.save_pretrained(student)
    raw = hf_config().model_dump(mode="json", exclude_defaults=True)
    raw["world"]["student"] = str(student)
    path = tmp_path / "config.yaml"
    for train, rc in (({"signal": "logit", "objective": "kd"}, 2), ({"signal": "cot", "objective": "sft"}, 0)):
        path.write_text(yaml.safe_dump({**raw, "train": {**raw.get("train", {}), **train}}))
        assert main(["validate", str(path)]) == rc
        err = capsys.readouterr().err
        if rc == 2:
            assert err.count("\n") == 1 and "train.signal=logit" in err and str(student) in err and models["teacher"] in err, err
            assert main(["run", str(path), "--run-dir", str(tmp_path / "run"), "--quiet"]) == 2
            assert not (tmp_path / "run").exists()


def test_a_capability_can_be_probed_on_benchmark_rows(hf_config, models, card, tmp_path, capsys):
    from read_distill.cli import main
    from read_distill.hf_world import make_world

    rows = [{"prompt": f"What is {a} + {a}? Answer:", "answer": str(2 * a), "grader": "gsm8k"} for a in range(6)]
    path = tmp_path / "math.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    world = make_world(hf_config(probe={"suites": {"math": {"path": str(path), "size": 4, "seed": 1}}}))
    suite = world.suite["math"]
    assert len(suite) == 4 and {it.prompt for it in suite} < {r["prompt"] for r in rows}
    assert all(it.grader == "gsm8k" for it in suite) and len(world.suite["code"]) == 2
    # Held out from training like every probe, and scored through the same probe.
    assert {prompt_hash(it.prompt) for it in suite} <= world.evaluation_hashes()
    with pytest.raises(ConfigError, match=r"probe.suites.math.size: 9 asked, .* has 6 rows"):
        make_world(hf_config(probe={"suites": {"math": {"path": str(path), "size": 9}}}))
    # A broken row is one line naming the file and line, from validate, before any run.
    path.write_text(path.read_text() + '{"prompt": "x"}\n')
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(hf_config(probe={"suites": {"math": {"path": str(path)}}}).model_dump(mode="json")))
    assert main(["validate", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"read-distill: error: {path}:7: answer: missing;") and len(err.splitlines()) == 1
    with pytest.raises(ConfigError, match="probe.suites: unknown capabilities"):
        load_config(cfg, ["probe.suites={mth: {path: x}}"])

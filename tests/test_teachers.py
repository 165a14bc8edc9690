"""A teacher per capability (``world.teachers``): config checks, routing in a real run with
two in-process teachers and with two served ones, tokens per teacher in the ledger,
summary and report, and a resume that pays no teacher twice."""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from conftest import start_server

from read_distill.config import ConfigError, load_config


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["world.teachers.maths.path=/m"], "world.teachers: unknown capabilities ['maths']"),
        (["world.teachers.math.url=http://127.0.0.1:1/v1"], "world.teachers.math.model: required with world.teachers.math.url"),
        (["world.teachers.math.engine=vllm"], "world.teachers.math: expected a local model (path) or a server"),
        (["world.teachers.math.path=/m", "world.teachers.math.url=http://a/v1"], "world.teachers.math.url: a teacher is a local model (path) or a server (url), not both"),
        (["world.teachers.math.url=ftp://a", "world.teachers.math.model=m"], "world.teachers.math.url: expected an http(s) base URL"),
        (["world.teachers.default.path=/m", "world.teacher_url=http://a/v1", "world.teacher_model=m"], "world.teachers.default: the default teacher is also given"),
        (["world.teachers.math.path=/m", "train.objective=reverse_kl"], "several teachers (world.teachers) give no one distribution"),
        (["world.teachers.math.path=/m", "train.signal=logit", "train.objective=kd"], "generation.top_logprobs: train.signal=logit with several teachers"),
        (["world.kind=sim", "world.teachers.math.path=/m"], "world.teachers: world.kind=sim has no teacher models"),
    ],
)
def test_bad_teachers_are_one_line_naming_the_field(overrides, message):
    with pytest.raises(ConfigError, match=None) as e:
        load_config("configs/demo.yaml", overrides)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_missing_engine_is_refused_before_anything_loads():
    from read_distill.preflight import check_inputs

    pytest.importorskip("openai")
    if __import__("importlib").util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    config = load_config("configs/demo.yaml", ["world.teachers.code.path=org/coder-model", "world.teachers.code.engine=vllm"])
    with pytest.raises(ConfigError, match=r"world.teachers.code.engine: vllm is not installed; pip install 'read-distill\[vllm\]'"):
        check_inputs(config)
    config = load_config("configs/demo.yaml", ["world.teachers.code.path=/models/none-here"])
    with pytest.raises(ConfigError, match="world.teachers.code.path: /models/none-here is not a model directory"):
        check_inputs(config)
    config = load_config("configs/demo.yaml", ["world.teachers.code.url=http://127.0.0.1:1/v1", "world.teachers.code.model=m",
                                               "world.teachers.code.api_key_env=READ_TEST_UNSET_KEY"])
    with pytest.raises(ConfigError, match="world.teachers.code.api_key_env: the environment variable READ_TEST_UNSET_KEY is not set"):
        check_inputs(config)


def _routing_config(hf_config, **world):
    """Three rounds of text SFT on a uniform allocation, so every capability is asked for."""
    return hf_config(run={"name": "teachers", "rounds": 3, "dev_every": 3}, budget={"total_tokens": 600},
                     train={"signal": "cot", "objective": "sft"}, world=world)


def _examples(run_dir: Path) -> list[dict]:
    return [json.loads(line) for rd in sorted((run_dir / "rounds").iterdir()) for line in (rd / "examples.jsonl").read_text().splitlines()]


@pytest.mark.tiny
def test_two_in_process_teachers_route_by_capability(hf_config, models, tmp_path):
    """math prompts go to the second model, every other prompt to the default; each example,
    ledger charge and the summary say which teacher wrote what, and the report tables it."""
    from read_distill.backends.hf import HFTeacher
    from read_distill.report import write_report
    from read_distill.runner import run

    config = _routing_config(hf_config, teachers={"math": {"path": models["student"]}})
    summary = run(config, tmp_path / "run", quiet=True)
    default, second = f"hf:{models['teacher']}", f"hf:{models['student']}"
    assert summary["teachers"] == {"default": default, "math": second}
    examples = _examples(tmp_path / "run")
    assert {e["teacher"] for e in examples if e["capability"] == "math"} == {second}
    assert {e["teacher"] for e in examples if e["capability"] != "math"} == {default}
    assert Counter(e["capability"] for e in examples)["math"] > 0
    # The second teacher really wrote the math examples: its own greedy completions.
    math = [e for e in examples if e["capability"] == "math"]
    alone = HFTeacher.from_pretrained(models["student"], dtype="float32", device="cpu")
    gens = alone.generate([e["prompt"] for e in math], {"max_new_tokens": 6, "temperature": 0.0})
    assert [g.text for g in gens] == [e["completion"] for e in math]
    # Tokens per teacher add up to the ledger's teacher phases.
    tokens, totals = summary["teacher_tokens"], summary["ledger"]
    assert set(tokens) == {default, second}
    assert sum(t["prompt"] for t in tokens.values()) == totals["teacher_prompt"]
    assert sum(t["generated"] for t in tokens.values()) == totals["teacher_gen"]
    assert tokens[second]["generated"] == sum(e["completion_tokens"] for e in math)
    html = write_report(tmp_path / "run").read_text()
    assert "Tokens per teacher" in html and second in html and default in html


@pytest.mark.tiny
def test_two_served_teachers_route_by_capability_and_a_resume_pays_neither_again(hf_config, models, tmp_path):
    """Two servers, one per model: the run writes what the two in-process teachers write;
    killed after round 1 and resumed, it asks neither server for a prompt twice."""
    from read_distill.runner import run

    servers = [start_server(models["teacher"]), start_server(models["student"])]
    try:
        (_, url_a), (_, url_b) = servers
        world = {"teacher": None, "teachers": {"default": {"url": url_a, "model": models["teacher"]},
                                                "math": {"url": url_b, "model": models["student"]}}}
        before = [_prompts_served(url) for url in (url_a, url_b)]
        served = run(_routing_config(hf_config, **world), tmp_path / "served", quiet=True)
        uninterrupted = [_prompts_served(url) - b for url, b in zip((url_a, url_b), before, strict=True)]
        assert all(n > 0 for n in uninterrupted)
        run(_routing_config(hf_config, teachers={"math": {"path": models["student"]}}), tmp_path / "local", quiet=True)
        names = {f"openai-completions:{url_a}:{models['teacher']}", f"openai-completions:{url_b}:{models['student']}"}
        assert set(served["teacher_tokens"]) == names
        strip = lambda es: [{k: v for k, v in e.items() if k != "teacher"} for e in es]  # noqa: E731
        assert strip(_examples(tmp_path / "served")) == strip(_examples(tmp_path / "local"))

        # Killed after round 1 and resumed: the same run, and each server completes as
        # many prompts as for the uninterrupted run (the probes' teacher answers and every
        # round's prompts are cached, so none is asked twice).
        before = [_prompts_served(url) for url in (url_a, url_b)]
        run(_routing_config(hf_config, **world), tmp_path / "resumed", quiet=True, stop_after_round=1)
        resumed = run(_routing_config(hf_config, **world), tmp_path / "resumed", resume=True, quiet=True)
        assert [_prompts_served(url) - b for url, b in zip((url_a, url_b), before, strict=True)] == uninterrupted
        assert resumed["final_utility"] == served["final_utility"]
        assert resumed["teacher_tokens"] == served["teacher_tokens"]
    finally:
        for proc, _ in servers:
            proc.terminate()
            proc.wait(timeout=30)


def _prompts_served(url: str) -> int:
    """Prompts the server has completed so far (its /health counter)."""
    with urllib.request.urlopen(url.removesuffix("/v1") + "/health", timeout=5) as r:
        return int(json.loads(r.read()).get("prompts", 0))

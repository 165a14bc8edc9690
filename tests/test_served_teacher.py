"""A served teacher: ``read-distill serve-teacher`` as a real subprocess on 127.0.0.1, and the
OpenAI backend a run calls it through, against the in-process teacher (tiny models, CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import start_server

from read_distill.config import Config, ConfigError, load_config

pytestmark = pytest.mark.tiny


@pytest.fixture(scope="module")
def served(models):
    """``serve-teacher`` on the tiny teacher; yields its base URL."""
    proc, url = start_server(models["teacher"])
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def _run_config(hf_config, **world) -> Config:
    """Three rounds of top-k KD (Logit-KD on 5 recorded log-probs per token)."""
    return hf_config(
        run={"name": "served", "rounds": 3, "dev_every": 3},
        budget={"total_tokens": 450},
        generation={"top_logprobs": 5},
        train={"signal": "logit", "objective": "kd"},
        world=world,
    )


def _rounds(run_dir: Path) -> list[tuple[list[dict], float]]:
    out = []
    for rd in sorted((run_dir / "rounds").iterdir()):
        examples = [json.loads(line) for line in (rd / "examples.jsonl").read_text().splitlines()]
        out.append((examples, json.loads((rd / "reward.json").read_text())["mean_loss"]))
    return out


def test_distilling_through_the_server_equals_the_in_process_teacher(hf_config, models, card, served, tmp_path, monkeypatch):
    """Same examples (greedy text, token counts, top-k records) and the same top-k KD loss
    in every round, and the same ledger.

    The in-process run's student is denied the resident teacher model, so both train on the
    recorded top-k alone: an example whose re-tokenization does not line up with its record
    (random tiny models write such text) would otherwise take the resident model's full
    distribution, which no server gives, and train with CE when served."""
    from read_distill.hf_world import ModelWorld
    from read_distill.runner import run

    student = ModelWorld.student

    def without_teacher_model(world, seed):
        s = student(world, seed)
        s.teacher_model = None
        return s

    with monkeypatch.context() as patch:
        patch.setattr(ModelWorld, "student", without_teacher_model)
        local = run(_run_config(hf_config), tmp_path / "local", quiet=True)
    remote = run(_run_config(hf_config, teacher_url=served, teacher_model=models["teacher"]), tmp_path / "served", quiet=True)
    assert remote["ledger"] == local["ledger"]
    rounds = list(zip(_rounds(tmp_path / "local"), _rounds(tmp_path / "served"), strict=True))
    assert len(rounds) == 3
    for (ex_local, loss_local), (ex_served, loss_served) in rounds:
        # The same examples, each naming the teacher that wrote it (the server, the model).
        assert [{k: v for k, v in e.items() if k not in ("top_logprobs", "teacher")} for e in ex_served] == [
            {k: v for k, v in e.items() if k not in ("top_logprobs", "teacher")} for e in ex_local
        ]
        assert {e["teacher"] for e in ex_served} == {f"openai-completions:{served}:{models['teacher']}"}
        for a, b in zip(ex_local, ex_served, strict=True):
            assert [sorted(p) for p in a["top_logprobs"]] == [sorted(p) for p in b["top_logprobs"]]
            for pa, pb in zip(a["top_logprobs"], b["top_logprobs"], strict=True):
                assert [pb[k] for k in sorted(pa)] == pytest.approx([pa[k] for k in sorted(pa)], abs=1e-5)
        assert loss_served == pytest.approx(loss_local, rel=1e-4)


def test_served_scoring_matches_the_model(models, served):
    """``score`` (echo) gives the model's own prompt log-probs at the asked positions (the
    chat endpoint, on an instruct model, is tests/test_chat_template.py's)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from read_distill import train
    from read_distill.backends.hf import prompt_logprobs
    from read_distill.backends.openai_api import OpenAITeacher

    model = AutoModelForCausalLM.from_pretrained(models["teacher"]).eval()
    tok = AutoTokenizer.from_pretrained(models["teacher"])
    pairs = [("Call add for 2 and 3.", " add(a=2, b=3)"), ("Sum 7 and 5, please.", " 12")]
    sequences = [train.encode_prompt(tok, p) + train.encode_completion(tok, c) for p, c in pairs]
    start = [len(train.encode_prompt(tok, p)) for p, _ in pairs]
    teacher = OpenAITeacher(served, models["teacher"])
    scored = teacher.score(sequences, start, top_logprobs=3)
    want = prompt_logprobs(model, tok, sequences, top_logprobs=3)
    for got, full, s in zip(scored, want, start, strict=True):
        expected = full[s - 1 :]
        assert [sorted(p) for p in got] == [sorted(p) for p in expected]
        assert [p[k] for p in got for k in sorted(p)] == pytest.approx([p[k] for p in expected for k in sorted(p)], abs=1e-5)


def test_served_teacher_settings_are_checked_in_one_line(card, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"world: {{kind: hf, student: s}}\ntask: {{card: {card}}}\n")
    with pytest.raises(ConfigError, match="world.teacher_model: required with world.teacher_url"):
        load_config(cfg, ["world.teacher_url=http://127.0.0.1:8000/v1"])
    with pytest.raises(ConfigError, match="world.teacher_url: expected an http"):
        load_config(cfg, ["world.teacher_url=127.0.0.1:8000", "world.teacher_model=m"])
    with pytest.raises(ConfigError, match="needs the teacher's full distribution"):
        load_config(cfg, ["world.teacher_url=http://h/v1", "world.teacher_model=m", "train.objective=kd"])
    with pytest.raises(ConfigError, match="generation.top_logprobs"):
        load_config(cfg, ["world.teacher_url=http://h/v1", "world.teacher_model=m", "train.signal=logit"])
    with pytest.raises(ConfigError, match="train.objective=reverse_kl needs the teacher's full distribution at every student token"):
        load_config(cfg, ["world.teacher_url=http://h/v1", "world.teacher_model=m", "train.signal=on_policy", "train.objective=reverse_kl"])
    with pytest.raises(ConfigError, match="only used with world.teacher_url"):
        load_config(cfg, ["world.teacher_model=m"])


def test_the_api_key_comes_from_the_environment_and_is_never_written(models, card, tmp_path, monkeypatch):
    from read_distill import cli

    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"world: {{kind: hf, student: {models['student']}, dtype: float32, device: cpu}}\ntask: {{card: {card}}}\n")
    served = ["world.teacher_url=http://127.0.0.1:9/v1", "world.teacher_model=m", "world.teacher_api_key_env=RD_TEST_KEY"]
    monkeypatch.delenv("RD_TEST_KEY", raising=False)
    assert cli.main(["validate", str(cfg), *served]) == 2
    monkeypatch.setenv("RD_TEST_KEY", "sk-secret-123")
    assert cli.main(["validate", str(cfg), *served]) == 0
    from read_distill.backends.openai_api import OpenAITeacher

    teacher = OpenAITeacher.from_spec(load_config(cfg, served).world.teacher_specs()["default"])
    assert "sk-secret-123" not in teacher.name and "sk-secret-123" not in json.dumps(load_config(cfg, served).model_dump())

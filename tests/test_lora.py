"""LoRA students (train.lora, through peft) on the tiny HF models built in-process (CPU, no hub)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from read_distill.backends.hf import HFStudent, HFTeacher
from read_distill.cli import main
from read_distill.config import ConfigError, LoraConfig, TrainConfig
from read_distill.ledger import Ledger
from read_distill.runner import MEASURED, run
from read_distill.types import Example

pytestmark = pytest.mark.tiny

LORA = {"lora": {"r": 4, "alpha": 8, "dropout": 0.1}}
PROMPTS = ["Call add for 2 and 3.", "What is 7 plus 5?", "Name a colour."]


def _comparable(summary):
    return {k: v for k, v in summary.items() if k not in MEASURED}


def _ledger(run_dir):
    return [(e["round"], e["phase"], e["tokens"], e["billable"]) for e in map(json.loads, (run_dir / "ledger.jsonl").read_text().splitlines())]


def test_lora_run_checkpoints_adapters_resumes_exactly_and_merges(hf_config, models, tmp_path):
    config = hf_config(train=LORA)
    whole = run(config, tmp_path / "whole", quiet=True)
    checkpoint = tmp_path / "whole" / "student"
    adapters = load_file(checkpoint / "adapter_model.safetensors")
    assert not (checkpoint / "model.safetensors").exists(), "the checkpoint holds the adapters, not the model"
    assert adapters and all("lora_" in k for k in adapters)
    assert any(v.abs().sum() > 0 for k, v in adapters.items() if "lora_B" in k), "the adapters trained"

    stopped = tmp_path / "stopped"
    run(config, stopped, quiet=True, stop_after_round=1)
    assert json.loads((stopped / "student" / "round.json").read_text()) == {"round": 1}
    assert (stopped / "student" / "adapter_model.safetensors").exists()
    resumed = run(config, stopped, quiet=True, resume=True)
    assert _comparable(resumed) == _comparable(whole)
    assert _ledger(stopped) == _ledger(tmp_path / "whole")
    again = load_file(stopped / "student" / "adapter_model.safetensors")
    assert adapters.keys() == again.keys() and all(torch.equal(adapters[k], again[k]) for k in adapters)

    assert main(["merge", str(tmp_path / "whole")]) == 0
    merged = HFStudent.from_pretrained(tmp_path / "whole" / "merged", dtype="float32", device="cpu", quiet=True)
    assert not any("lora" in k for k in merged.model.state_dict())
    adapted = HFStudent.from_pretrained(models["student"], config=config.train, dtype="float32", device="cpu", quiet=True)
    adapted.load(checkpoint)
    ids = torch.tensor([merged.tokenizer(p)["input_ids"] for p in PROMPTS[:1]])
    with torch.no_grad():
        torch.testing.assert_close(merged.model(input_ids=ids).logits, adapted.model(input_ids=ids).logits, atol=1e-5, rtol=1e-5)
    assert merged.generate(PROMPTS, 12) == adapted.generate(PROMPTS, 12)
    assert merged.score(PROMPTS, ["5", "12", "red"]) == pytest.approx(adapted.score(PROMPTS, ["5", "12", "red"]), abs=1e-5)


@pytest.mark.parametrize(("objective", "signal"), [("sft", "cot"), ("kd", "cot"), ("kd", "logit")])
def test_lora_trains_only_adapters_under_each_objective(models, objective, signal):
    teacher = HFTeacher.from_pretrained(models["teacher"], dtype="float32", device="cpu")
    examples = [
        Example(prompt=p, completion=f" step by step #### {a}", capability="math", prompt_tokens=0, completion_tokens=0)
        for p, a in zip(PROMPTS * 3, ["5", "12", "red"] * 3, strict=True)
    ]

    def student(lora):
        config = TrainConfig(objective=objective, signal=signal, batch_size=3, lora=lora, lr=1e-2, warmup_frac=0.0)
        return HFStudent.from_pretrained(models["student"], config=config, teacher=teacher, dtype="float32", device="cpu", quiet=True)

    adapted, full = student(LoraConfig(r=4, alpha=8, dropout=0.1)), student(None)
    before = {k: v.clone() for k, v in adapted.model.state_dict().items()}
    stats = adapted.fit(examples, 10_000, Ledger(None, 10_000), 1)
    after = adapted.model.state_dict()
    assert stats.optimizer_steps == 3 and all(torch.isfinite(torch.tensor(loss)) for _, loss, _ in stats.steps)
    assert all(torch.equal(before[k], after[k]) for k in before if "lora_" not in k), "base weights stay frozen"
    assert any(not torch.equal(before[k], after[k]) for k in before if "lora_B" in k), "the adapters train"
    # Fresh adapters add nothing (B = 0): the first step's loss is the full model's.
    first = full.fit(examples, 10_000, Ledger(None, 10_000), 1).steps[0][1]
    assert stats.steps[0][1] == pytest.approx(first, rel=1e-6)


def test_lora_config_errors_are_one_line_before_anything(hf_config, world, tmp_path, monkeypatch, capsys):
    from read_distill.preflight import check_inputs
    from read_distill.sim import sim_config

    sim = sim_config(world, "uniform", 1000, 2, 0)
    with pytest.raises(ConfigError, match=r"^train.lora: world.kind=sim has no model to adapt"):
        check_inputs(sim.model_copy(update={"train": TrainConfig(lora=LoraConfig())}))

    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "peft" else real(name, *a))
    with pytest.raises(ConfigError, match=r"pip install 'read-distill\[lora\]'"):
        run(hf_config(train=LORA), tmp_path / "never", quiet=True)
    assert not (tmp_path / "never").exists()
    monkeypatch.undo()

    (tmp_path / "full").mkdir()
    assert main(["merge", str(tmp_path / "full")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no LoRA adapters" in err and "train.lora" in err

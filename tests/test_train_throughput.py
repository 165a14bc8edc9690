"""What ``benchmarks/training.py`` compares holds: ``fit`` skipping the vocabulary projection
of prompt positions trains as with full logits, and ``fit`` and ``Trainer`` process the
same real tokens (on the shipped micro-world's student and teacher)."""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from read_distill import train
from read_distill.config import TrainConfig
from read_distill.ledger import Ledger

pytestmark = pytest.mark.tiny


@pytest.fixture(scope="module")
def bench():
    """``benchmarks/training.py`` as a module (benchmarks/ is no package)."""
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "training.py"
    spec = importlib.util.spec_from_file_location("benchmark_training", path)
    module = importlib.util.module_from_spec(spec)
    # Its dataclasses look their module up by name.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.fixture(scope="module")
def world(bench):
    """The world's tokenizer, student and teacher, and 8 teacher examples."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(bench.WORLD_DIR / "student"))
    teacher = AutoModelForCausalLM.from_pretrained(str(bench.WORLD_DIR / "teacher"), dtype=torch.float32).eval()
    return tokenizer, bench.load_model("micro", tokenizer), teacher, bench.world_examples(8)


def test_fit_without_prompt_logits_trains_as_with_them(world, monkeypatch):
    tokenizer, student, teacher, examples = world
    assert train._takes_logits_to_keep(student)
    budget = sum(len(train.encode_completion(tokenizer, ex.completion)) for ex in examples)
    for objective in ("sft", "kd"):
        config = TrainConfig(lr=1e-3, batch_size=4, objective=objective, mixed_precision="no")
        runs = []
        for keeps in (True, False):
            monkeypatch.setattr(train, "_takes_logits_to_keep", lambda model, keeps=keeps: keeps)
            model = copy.deepcopy(student)
            stats = train.fit(model, tokenizer, examples, budget, Ledger(None, budget, "train"), 0, config,
                              teacher_model=teacher, quiet=True)
            runs.append((stats, model.state_dict()))
        (kept, kept_weights), (full, full_weights) = runs
        assert kept.optimizer_steps == full.optimizer_steps == 2
        assert kept.mean_loss == pytest.approx(full.mean_loss, rel=1e-5)
        for name, value in kept_weights.items():
            torch.testing.assert_close(value, full_weights[name], rtol=1e-4, atol=1e-6)


def test_fit_and_trainer_process_the_same_real_tokens(bench, world, tmp_path):
    tokenizer, student, _, examples = world
    rows = bench.tokenized(examples, tokenizer)
    real = sum(len(r["input_ids"]) for r in rows)
    labels = sum(t != train.IGNORE_INDEX for r in rows for t in r["labels"])
    config = bench.fit_config(batch_size=4, lr=1e-3)
    fit = bench.run_fit(copy.deepcopy(student), tokenizer, examples, config, labels)
    trainers = [
        bench.run_trainer(copy.deepcopy(student), tokenizer, rows, config, path, str(tmp_path))
        # TRL's SFTTrainer comes with the bench extra (the Makefile installs it).
        for path in ("Trainer", "Trainer group_by_length", "SFTTrainer")
    ]
    for result in (fit, *trainers):
        assert result.tokens.real == real
        assert result.tokens.padded >= real
        assert result.steps == len(result.marks) == 2
        assert result.steady > 0

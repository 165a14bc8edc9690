"""Shared fixtures: tests run on small budgets and temporary run dirs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml

from read_distill.sim.environments import paper_world


def free_port() -> int:
    """A port nothing listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_dir: str) -> tuple[subprocess.Popen, str]:
    """``read-distill serve-teacher`` on ``model_dir`` as a real subprocess on 127.0.0.1,
    once it answers /health: the process and its base URL. The caller terminates it."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "read_distill", "serve-teacher", model_dir, "--port", str(port), "--batch-size", "8"],
        env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            return proc, f"http://127.0.0.1:{port}/v1"
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"serve-teacher did not come up: {proc.stdout.read().decode()}")
            time.sleep(0.2)


@pytest.fixture
def world():
    """The paper-dynamics simulated world (noisy probes)."""
    return paper_world()


@pytest.fixture(autouse=True)
def _one_torch_thread(request):
    """`tiny` tests run torch on one thread: the machine's cores are shared, small matrices
    gain nothing from more, and one thread keeps float sums in a fixed order."""
    if request.node.get_closest_marker("tiny") is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Teacher (2 layers) and student (1 layer) directories sharing a BPE tokenizer trained
    on prompts of the shipped template pools."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    from read_distill.templates import load_pools

    root = tmp_path_factory.mktemp("hf-models")
    texts = [t.instantiate(s, d).prompt for t in load_pools() for s, d in ((0, "easy"), (1, "hard"))]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1024, special_tokens=["<pad>", "<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    bpe.train_from_iterator(texts, trainer)
    bpe.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", bpe.token_to_id("<s>"))])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<pad>", bos_token="<s>", eos_token="</s>")
    return save_model_pair(tok, root)


def save_model_pair(tok, root) -> dict[str, str]:
    """A random teacher (2 layers) and student (1 layer) over ``tok``, saved under ``root``:
    their directories by role."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = {}
    for role, layers, seed in (("teacher", 2, 1), ("student", 1, 2)):
        torch.manual_seed(seed)
        config = LlamaConfig(
            vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=layers, num_attention_heads=2,
            num_key_value_heads=2, max_position_embeddings=8192, tie_word_embeddings=True,
            pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        )
        model = LlamaForCausalLM(config)
        model.generation_config.pad_token_id = tok.pad_token_id
        model.save_pretrained(root / role)
        tok.save_pretrained(root / role)
        out[role] = str(root / role)
    return out


@pytest.fixture(scope="module")
def card(tmp_path_factory):
    """A tiny JSONL task card: arithmetic tool calls."""
    root = tmp_path_factory.mktemp("card")
    rows = {
        "dev": [("Call add for 2 and 3.", "add(a=2, b=3)"), ("Call add for 4 and 1.", "add(a=4, b=1)")],
        "test": [("Call add for 7 and 5.", "add(a=7, b=5)"), ("Call add for 1 and 9.", "add(a=1, b=9)"), ("Call add for 6 and 6.", "add(a=6, b=6)")],
    }
    for split, pairs in rows.items():
        (root / f"{split}.jsonl").write_text("".join(json.dumps({"prompt": p, "answer": a, "grader": "tool_call"}) + "\n" for p, a in pairs))
    card = {
        "name": "tiny_add",
        "description": "Turn an addition request into a tool call.",
        "requirement": {"tool_use": 0.6, "math": 0.4},
        "metric": "tool_call",
        "data": {"dev": "dev.jsonl", "test": "test.jsonl"},
    }
    path = root / "card.yaml"
    path.write_text(yaml.safe_dump(card))
    return str(path)


@pytest.fixture(scope="module")
def hf_config(models, card):
    """A builder of tiny HF-world configs over ``models`` and ``card`` (small budgets, CPU,
    fp32); each keyword names a section whose keys update the base's."""
    from read_distill.config import Config
    from read_distill.types import CAPABILITIES

    base = {
        "run": {"name": "hf-tiny", "rounds": 2, "dev_every": 1},
        "budget": {"total_tokens": 300},
        "policy": {"name": "uniform"},
        "generation": {"batch_size": 8, "max_new_tokens": dict.fromkeys(CAPABILITIES, 6)},
        "train": {"batch_size": 4, "max_seq_tokens": 256, "micro_batch_tokens": 2048},
        "probe": {"items_per_capability": 2},
        "world": {"kind": "hf", "teacher": models["teacher"], "student": models["student"], "dtype": "float32", "device": "cpu"},
        "task": {"card": card},
    }

    def build(**sections) -> Config:
        return Config.model_validate({k: {**v, **sections.get(k, {})} for k, v in base.items()})

    return build

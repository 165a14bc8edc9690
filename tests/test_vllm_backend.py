"""The vLLM teacher up to the import boundary: vLLM itself needs a CUDA GPU, so the engine
here is a fake ``vllm`` module whose classes mirror vLLM 0.33.0's (``vllm/outputs.py``,
``vllm/logprobs.py``, ``vllm/sampling_params.py``, ``vllm/entrypoints/llm.py``) and whose
``LLM.generate`` runs a real tiny model greedily, token by token, as the engine would."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import types
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from read_distill.backends import vllm as vb
from read_distill.types import Generation


# -- vLLM-shaped outputs: same class and attribute names as vllm 0.33.0 ----------------------
@dataclass
class Logprob:
    """Mirrors ``vllm.logprobs.Logprob`` (vllm 0.33.0)."""

    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass
class CompletionOutput:
    """Mirrors ``vllm.outputs.CompletionOutput`` (vllm 0.33.0; later optional fields left out)."""

    index: int
    text: str
    token_ids: Sequence[int]
    cumulative_logprob: float | None
    logprobs: list[dict[int, Logprob]] | None
    finish_reason: str | None = None
    stop_reason: int | str | None = None


@dataclass
class RequestOutput:
    """Mirrors ``vllm.outputs.RequestOutput``'s attributes (vllm 0.33.0)."""

    request_id: str
    prompt: str | None
    prompt_token_ids: list[int] | None
    prompt_logprobs: list[dict[int, Logprob] | None] | None
    outputs: list[CompletionOutput]
    finished: bool


@dataclass
class SamplingParams:
    """The ``vllm.SamplingParams`` fields this backend sets, with vLLM 0.33.0's defaults and
    the checks of its ``_verify_args`` that they meet; an unknown keyword is a TypeError."""

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    max_tokens: int | None = 16
    logprobs: int | None = None
    prompt_logprobs: int | None = None
    stop_token_ids: list[int] | None = None
    detokenize: bool = True
    skip_special_tokens: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.temperature <= 2.0:
            raise ValueError(f"temperature must be in [0, 2], got {self.temperature}.")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}.")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}.")


def lp(value: float, rank: int = 1) -> Logprob:
    return Logprob(logprob=value, rank=rank, decoded_token=None)


def request(prompt_ids, token_ids, *, logprobs=None, finish="length", text="", prompt_logprobs=None) -> RequestOutput:
    done = CompletionOutput(0, text, token_ids, None, logprobs, finish_reason=finish)
    return RequestOutput("0", None, prompt_ids, prompt_logprobs, [done], True)


# -- (1) the import boundary ---------------------------------------------------------------
def test_importing_the_backend_does_not_import_vllm():
    code = "import sys, read_distill, read_distill.backends.vllm; assert 'vllm' not in sys.modules, 'vllm imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_from_pretrained_without_vllm_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` now fails, installed or not
    with pytest.raises(ImportError) as info:
        vb.VLLMTeacher.from_pretrained(tmp_path)
    assert str(info.value) == 'the vllm teacher needs vLLM: pip install -e ".[vllm]" (Linux with a CUDA GPU)'


# -- (2) sampling ----------------------------------------------------------------------------
def test_greedy_is_temperature_zero_without_seed_or_truncation():
    params = vb.sampling_params({"max_new_tokens": 7, "top_p": 0.5, "seed": 3}, prompt="p")
    assert params == {"n": 1, "temperature": 0.0, "top_p": 1.0, "max_tokens": 7, "logprobs": None, "seed": None, "stop_token_ids": [], "detokenize": False}
    SamplingParams(**params)  # every keyword is a SamplingParams field


def test_sampled_requests_carry_temperature_top_p_and_a_per_prompt_seed():
    sampling = {"max_new_tokens": 5, "temperature": 0.7, "top_p": 0.9, "top_logprobs": 4, "seed": 11}
    a = vb.sampling_params(sampling, prompt="a")
    assert (a["temperature"], a["top_p"], a["max_tokens"], a["logprobs"]) == (0.7, 0.9, 5, 4)
    assert a == vb.sampling_params(sampling, prompt="a")  # reproducible
    assert a["seed"] != vb.sampling_params(sampling, prompt="b")["seed"]  # one stream per prompt
    assert a["seed"] != vb.sampling_params({**sampling, "seed": 12}, prompt="a")["seed"]
    # Without a seed in ``sampling``, the teacher's own.
    assert vb.sampling_params({**sampling, "seed": 5}, prompt="a") == vb.sampling_params(
        {k: v for k, v in sampling.items() if k != "seed"}, seed=5, prompt="a"
    )
    assert 0 <= a["seed"] < 2**32
    SamplingParams(**a)


def test_top_logprobs_over_the_engine_limit_is_one_clear_error():
    with pytest.raises(ValueError, match=r"^top_logprobs 21 exceeds the vLLM teacher's max_logprobs 20; start it with max_logprobs >= 21$"):
        vb.sampling_params({"max_new_tokens": 4, "top_logprobs": 21})
    assert vb.sampling_params({"max_new_tokens": 4, "top_logprobs": 20})["logprobs"] == 20
    assert vb.sampling_params({"max_new_tokens": 4, "top_logprobs": 50}, max_logprobs=64)["logprobs"] == 50
    assert vb.sampling_params({"max_new_tokens": 4, "top_logprobs": 500}, max_logprobs=-1)["logprobs"] == 500  # -1: whole vocab
    with pytest.raises(ValueError, match="max_logprobs 8"):
        vb.scoring_params(9, max_logprobs=8)
    assert vb.scoring_params(3) == {"n": 1, "temperature": 0.0, "max_tokens": 1, "prompt_logprobs": 3, "detokenize": False}


# -- (3) conversion of vLLM-shaped outputs -------------------------------------------------------
def test_a_length_capped_output_keeps_every_token_and_the_chosen_logprob():
    positions = [
        {5: lp(-0.1), 6: lp(-2.0, 2)},  # chosen among the top 2
        {6: lp(-0.5), 7: lp(-1.0, 2), 9: lp(-3.0, 7)},  # chosen (9) outside the top 2: k + 1 entries
    ]
    out = request([1, 2, 3], [5, 9], logprobs=positions, text="vLLM's text")
    assert vb.to_generation(out, 2) == Generation(
        text="vLLM's text", prompt_tokens=3, completion_tokens=2, top_logprobs=[{5: -0.1, 6: -2.0}, {6: -0.5, 7: -1.0, 9: -3.0}]
    )
    decoded = vb.to_generation(out, 2, decode=lambda ids: "+".join(map(str, ids)))
    assert decoded.text == "5+9"  # nothing dropped when no stop token ended it
    assert vb.to_generation(out, 0).top_logprobs is None


def test_a_stopped_output_counts_its_stop_token_but_leaves_it_out_of_the_text():
    out = request([1, 4], [7, 8, 2], finish="stop", logprobs=[{7: lp(-1)}, {8: lp(-1)}, {2: lp(-0.2)}])
    g = vb.to_generation(out, 1, decode=lambda ids: "+".join(map(str, ids)))
    assert (g.text, g.prompt_tokens, g.completion_tokens) == ("7+8", 2, 3)
    assert g.top_logprobs == [{7: -1.0}, {8: -1.0}, {2: -0.2}]


def test_malformed_logprobs_are_refused():
    with pytest.raises(ValueError, match="no log-prob for token 9"):
        vb.to_generation(request([1], [9], logprobs=[{5: lp(-0.1)}]), 1)
    with pytest.raises(ValueError, match="log-probs for 0 of 1"):
        vb.to_generation(request([1], [9]), 1)


def test_prompt_logprobs_become_scores_from_start():
    prompt_logprobs = [None, {4: lp(-0.3), 8: lp(-1.5, 2)}, {5: lp(-2.0, 3), 4: lp(-0.2)}, {6: lp(-0.9)}]
    out = request([1, 8, 5, 6], [0], prompt_logprobs=prompt_logprobs)
    assert vb.to_scores(out, 1) == [{4: -0.3, 8: -1.5}, {5: -2.0, 4: -0.2}, {6: -0.9}]
    assert vb.to_scores(out, 3) == [{6: -0.9}]


# -- (4) end to end: a fake engine over a real tiny model -----------------------------------------
class FakeLLM:
    """``vllm.LLM`` as the backend calls it (same keywords as vllm 0.33.0's constructor and
    ``generate``), decoding greedily with one forward pass of the whole sequence per token.
    Stops like vLLM's ``check_stop``: at the tokenizer's EOS or any ``eos_token_id`` of the
    model's generation config, keeping the stop token in ``token_ids``."""

    def __init__(self, model: str, *, tokenizer: str, tensor_parallel_size: int = 1, dtype: str = "auto",
                 gpu_memory_utilization: float = 0.92, seed: int = 0, **engine_args: Any) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

        self.args = {"model": model, "tokenizer": tokenizer, "tensor_parallel_size": tensor_parallel_size, "dtype": dtype,
                     "gpu_memory_utilization": gpu_memory_utilization, "seed": seed, **engine_args}
        self.model = AutoModelForCausalLM.from_pretrained(model).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer)
        configured = GenerationConfig.from_pretrained(model).eos_token_id
        configured = [] if configured is None else configured if isinstance(configured, list) else [configured]
        self.eos = {self.tokenizer.eos_token_id, *configured}
        self.requests: list[Any] = []

    def generate(self, prompts, sampling_params=None, *, use_tqdm=True):
        import torch
        import torch.nn.functional as F

        params = sampling_params if isinstance(sampling_params, list) else [sampling_params] * len(prompts)
        assert len(params) == len(prompts)
        self.requests.append((prompts, params))
        outputs = []
        for n, (prompt, p) in enumerate(zip(prompts, params, strict=True)):
            assert set(prompt) == {"prompt_token_ids"}, "a TokensPrompt"
            assert p.temperature == 0, "the fake engine decodes greedily only"

            def logprobs_at(row, token, k):
                rank = int((row > row[token]).sum()) + 1
                top = {int(i): Logprob(float(row[i]), r + 1) for r, i in enumerate(row.topk(k).indices)}
                top.setdefault(token, Logprob(float(row[token]), rank))
                return top

            ids = list(prompt["prompt_token_ids"])
            prompt_lps = None
            if p.prompt_logprobs:
                with torch.no_grad():
                    rows = F.log_softmax(self.model(torch.tensor([ids])).logits[0].float(), dim=-1)
                prompt_lps = [None] + [logprobs_at(rows[t - 1], ids[t], p.prompt_logprobs) for t in range(1, len(ids))]
            new, sample_lps, finish = [], [] if p.logprobs is not None else None, "length"
            for _ in range(p.max_tokens):
                with torch.no_grad():
                    row = F.log_softmax(self.model(torch.tensor([ids + new])).logits[0, -1].float(), dim=-1)
                token = int(row.argmax())
                new.append(token)
                if sample_lps is not None:
                    sample_lps.append(logprobs_at(row, token, p.logprobs))
                if token in self.eos or token in (p.stop_token_ids or ()):  # check_stop in vllm/v1/core/sched/utils.py
                    finish = "stop"
                    break
            text = self.tokenizer.decode(new[:-1] if finish == "stop" else new, skip_special_tokens=True) if p.detokenize else ""
            done = CompletionOutput(0, text, new, None, sample_lps, finish_reason=finish)
            outputs.append(RequestOutput(str(n), None, ids, prompt_lps, [done], True))
        return outputs


@pytest.fixture
def fake_vllm(monkeypatch):
    module = types.ModuleType("vllm")
    module.__version__ = "0.33.0"
    module.LLM, module.SamplingParams = FakeLLM, SamplingParams
    monkeypatch.setitem(sys.modules, "vllm", module)
    return module


PROMPTS = ["Call add for 2 and 3.", "What is 4 plus 4?", "Name a colour, then explain why you like it."]


@pytest.fixture(scope="module")
def stopping_teacher(models, tmp_path_factory):
    """The tiny teacher with a generation config that also stops at the first token it
    writes for the first prompt, so that completion ends at a stop token (random tiny
    models repeat a token; which one depends on the tokenizer trained for the session)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    from read_distill.train import encode_prompt

    path = tmp_path_factory.mktemp("stopping") / "teacher"
    shutil.copytree(models["teacher"], path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    tok = AutoTokenizer.from_pretrained(path)
    with torch.no_grad():
        first = int(model(torch.tensor([encode_prompt(tok, PROMPTS[0])])).logits[0, -1].argmax())
    config = GenerationConfig.from_pretrained(path)
    config.eos_token_id = [tok.eos_token_id, first]
    config.save_pretrained(path)
    return str(path)


@pytest.mark.tiny
@pytest.mark.parametrize("which", ["plain", "stopping"])
def test_vllm_teacher_equals_the_in_process_teacher(fake_vllm, models, stopping_teacher, which):
    from read_distill.backends.hf import HFTeacher
    from read_distill.train import encode_prompt

    path = models["teacher"] if which == "plain" else stopping_teacher
    teacher = vb.VLLMTeacher.from_pretrained(path, max_logprobs=8, seed=4)
    assert teacher.name == f"vllm-0.33.0:{path}"
    assert teacher.llm.args == {"model": path, "tokenizer": path, "tensor_parallel_size": 1, "dtype": "auto",
                                "gpu_memory_utilization": 0.9, "seed": 4, "max_logprobs": 8}
    assert vb.VLLMTeacher.from_pretrained(path, name="mine").name == "mine"

    hf = HFTeacher.from_pretrained(path, dtype="float32", device="cpu", batch_size=1)
    sampling = {"max_new_tokens": 6, "temperature": 0.0, "top_logprobs": 3}
    got, want = teacher.generate(PROMPTS, sampling), hf.generate(PROMPTS, sampling)
    assert [(g.text, g.prompt_tokens, g.completion_tokens) for g in got] == [(g.text, g.prompt_tokens, g.completion_tokens) for g in want]
    for g, w in zip(got, want, strict=True):
        assert [sorted(p) for p in g.top_logprobs] == [sorted(p) for p in w.top_logprobs]
        assert [p[k] for p in g.top_logprobs for k in sorted(p)] == pytest.approx([p[k] for p in w.top_logprobs for k in sorted(p)], abs=1e-5)
    # The engine got the prompts as every backend encodes them (BOS included), as token ids.
    sent, _ = teacher.llm.requests[0]
    assert [r["prompt_token_ids"] for r in sent] == [encode_prompt(teacher.tokenizer, p) for p in PROMPTS]
    assert all(r["prompt_token_ids"][0] == teacher.tokenizer.bos_token_id for r in sent)
    if which == "stopping":
        # The stop token is counted and left out of the text.
        assert (got[0].text, got[0].completion_tokens) == ("", 1)
    assert teacher.generate([], sampling) == []
    with pytest.raises(ValueError, match="top_logprobs 9 exceeds the vLLM teacher's max_logprobs 8"):
        teacher.generate(PROMPTS, {**sampling, "top_logprobs": 9})


@pytest.mark.tiny
def test_vllm_scoring_equals_the_models_prompt_logprobs(fake_vllm, models):
    from transformers import AutoModelForCausalLM

    from read_distill import train
    from read_distill.backends.hf import prompt_logprobs

    teacher = vb.VLLMTeacher.from_pretrained(models["teacher"])
    tok = teacher.tokenizer
    pairs = [("Call add for 2 and 3.", " add(a=2, b=3)"), ("Sum 7 and 5, please.", " 12")]
    sequences = [train.encode_prompt(tok, p) + train.encode_completion(tok, c) for p, c in pairs]
    start = [len(train.encode_prompt(tok, p)) for p, _ in pairs]
    scored = teacher.score(sequences, start, top_logprobs=3)
    model = AutoModelForCausalLM.from_pretrained(models["teacher"]).eval()
    want = prompt_logprobs(model, tok, sequences, top_logprobs=3)
    for got, full, s in zip(scored, want, start, strict=True):
        expected = full[s - 1 :]
        assert [sorted(p) for p in got] == [sorted(p) for p in expected]
        assert [p[k] for p in got for k in sorted(p)] == pytest.approx([p[k] for p in expected for k in sorted(p)], abs=1e-5)
    _, params = teacher.llm.requests[0]
    assert dataclasses.asdict(params[0]) == {**dataclasses.asdict(SamplingParams()), **vb.scoring_params(3)}
    with pytest.raises(ValueError, match="positions start at 1"):
        teacher.score(sequences, [0, 1], top_logprobs=3)


@pytest.mark.tiny
def test_a_run_with_a_vllm_teacher_writes_what_the_in_process_teacher_writes(fake_vllm, hf_config, models, tmp_path, monkeypatch):
    """``world.teachers.default: {path, engine: vllm}`` through the whole run path (preflight,
    loading, the round loop, the cache): the examples of an in-process run, each named by
    the engine's teacher."""
    import importlib.machinery
    import json

    from read_distill.runner import run

    # The engine is "installed" for the preflight's check.
    fake_vllm.__spec__ = importlib.machinery.ModuleSpec("vllm", None)
    sections = {"run": {"name": "vllm", "rounds": 2, "dev_every": 2}, "budget": {"total_tokens": 400},
                "train": {"signal": "cot", "objective": "sft"}}
    run(hf_config(**sections), tmp_path / "local", quiet=True)
    engine = {"teacher": None, "teachers": {"default": {"path": models["teacher"], "engine": "vllm"}}}
    summary = run(hf_config(**sections, world=engine), tmp_path / "vllm", quiet=True)
    assert summary["teachers"] == {"default": f"vllm-0.33.0:{models['teacher']}"}

    def examples(run_dir):
        return [json.loads(line) for rd in sorted((run_dir / "rounds").iterdir()) for line in (rd / "examples.jsonl").read_text().splitlines()]

    got, want = examples(tmp_path / "vllm"), examples(tmp_path / "local")
    assert {e["teacher"] for e in got} == {f"vllm-0.33.0:{models['teacher']}"}
    assert [{k: v for k, v in e.items() if k != "teacher"} for e in got] == [{k: v for k, v in e.items() if k != "teacher"} for e in want]

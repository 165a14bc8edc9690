"""A teacher on vLLM's offline engine (``vllm.LLM``), kept resident for the run; implements
``Teacher``.

Checked call by call against the source of vLLM 0.33.0 (the PyPI wheel):

* ``vllm/entrypoints/llm.py``: ``LLM(model, *, tokenizer, tensor_parallel_size, dtype,
  seed, gpu_memory_utilization, **kwargs)`` with ``max_logprobs`` passed through to
  ``EngineArgs`` (``vllm/engine/arg_utils.py``; default 20 in ``vllm/config/model.py``,
  -1 = the whole vocabulary); ``LLM.generate(prompts, sampling_params, *, use_tqdm)``
  takes one ``SamplingParams`` per prompt and returns the outputs in the prompts' order.
* ``vllm/inputs/llm.py``: ``TokensPrompt`` is a TypedDict, so ``{"prompt_token_ids": ids}``
  is one; the engine adds no BOS to token ids.
* ``vllm/sampling_params.py``: ``SamplingParams`` fields ``n``, ``temperature`` (0 =
  greedy: top_p is then reset to 1), ``top_p``, ``max_tokens`` (>= 1), ``logprobs``
  (None = none; k = the top k plus the sampled token), ``prompt_logprobs``, ``seed``
  (a per-request generator), ``stop_token_ids`` (ends a generation, kept in its ids, as
  ``check_stop`` in ``vllm/v1/core/sched/utils.py`` does), ``detokenize``; ``_validate_logprobs`` refuses k above
  ``max_logprobs``. ``top_k`` is left at its default (disabled; -1 in old releases, 0 now).
* ``vllm/outputs.py``: ``RequestOutput.prompt_token_ids``, ``.prompt_logprobs`` (None for
  the first prompt token), ``.outputs[0]`` a ``CompletionOutput`` with ``.text``,
  ``.token_ids``, ``.logprobs``, ``.finish_reason`` ("stop" / "length").
* ``vllm/logprobs.py``: a position's log-probs are ``{token_id: Logprob(logprob, rank,
  decoded_token)}``; ``FlatLogprobs`` (``flat_logprobs=True``, not asked here) iterates
  as the same dicts.
* ``vllm/v1/core/sched/utils.py`` (``check_stop``), ``vllm/v1/engine/detokenizer.py``,
  ``vllm/v1/engine/output_processor.py``, ``vllm/v1/engine/input_processor.py``: a
  generation stops at the tokenizer's EOS or at any ``eos_token_id`` of the model's
  ``generation_config`` (checked before ``max_tokens``), and that stop token is kept in
  ``token_ids`` (left out of the text); with ``detokenize=False`` the text is empty and
  ``decoded_token`` None.
* ``vllm/config/model.py``: ``logprobs_mode`` defaults to ``raw_logprobs``: sample
  log-probs are the model's own distribution, before temperature and top-p, as
  ``HFTeacher`` records them. (Engines before V1 are not checked here.)

So this teacher sees and reports exactly what an in-process ``HFTeacher`` would: prompts
are encoded by ``train.encode_prompt`` with the model's HF tokenizer and passed as token
ids; the completion is decoded by the same tokenizer as ``HFTeacher`` decodes it (vLLM's
incremental detokenizer is skipped, so the text re-tokenizes as training expects);
``completion_tokens`` counts the generated ids through the stop token; ``top_logprobs``
holds, per generated position, the top k and the chosen token.

Sampling with ``temperature > 0`` is seeded per request from ``sampling["seed"]`` and the
prompt (vLLM's per-request generator), so a prompt's completion does not depend on what
else is in the batch; greedy requests carry no seed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from read_distill.types import Generation

#: The one line a missing vLLM raises.
MISSING = 'the vllm teacher needs vLLM: pip install -e ".[vllm]" (Linux with a CUDA GPU)'


def check_logprobs(k: int, max_logprobs: int) -> None:
    """Refuse ``k`` top log-probs above the engine's ``max_logprobs`` (-1 = no limit), in one line."""
    if max_logprobs >= 0 and k > max_logprobs:
        raise ValueError(
            f"top_logprobs {k} exceeds the vLLM teacher's max_logprobs {max_logprobs}; "
            f"start it with max_logprobs >= {k}"
        )


def request_seed(seed: int, prompt: str) -> int:
    """The seed of one sampled request: from the run's seed and the prompt alone (32 bits)."""
    digest = hashlib.sha256(json.dumps([seed, prompt]).encode()).digest()
    return int.from_bytes(digest[:4], "little")


def sampling_params(
    sampling: dict[str, Any], *, max_logprobs: int = 20, seed: int = 0, prompt: str = "", stop_token_ids: list[int] = ()
) -> dict[str, Any]:
    """The ``vllm.SamplingParams`` keywords of one request of a ``Teacher.generate`` call.

    ``sampling`` as for every teacher: ``max_new_tokens`` (required), ``temperature`` (0 =
    greedy), ``top_p`` (1.0), ``top_logprobs`` (0 = none), ``seed`` (default ``seed``).
    ``stop_token_ids``: ids that end a generation besides the engine's EOS (a chat
    template's end-of-turn token, where ``HFTeacher`` stops too).
    """
    temperature = float(sampling.get("temperature", 0.0))
    k = int(sampling.get("top_logprobs", 0))
    check_logprobs(k, max_logprobs)
    sampled = temperature > 0
    return {
        "n": 1,
        "temperature": temperature,
        "top_p": float(sampling.get("top_p", 1.0)) if sampled else 1.0,
        "max_tokens": int(sampling["max_new_tokens"]),
        "logprobs": k if k > 0 else None,
        "seed": request_seed(int(sampling.get("seed", seed)), prompt) if sampled else None,
        "stop_token_ids": list(stop_token_ids),
        # The text is decoded with the HF tokenizer, as HFTeacher decodes it.
        "detokenize": False,
    }


def scoring_params(top_logprobs: int, *, max_logprobs: int = 20) -> dict[str, Any]:
    """The ``vllm.SamplingParams`` keywords of ``VLLMTeacher.score``: the prompt's top-k log-probs;
    one greedy token is generated (vLLM refuses ``max_tokens`` 0) and dropped."""
    if top_logprobs < 1:
        raise ValueError(f"score: top_logprobs must be at least 1, got {top_logprobs}")
    check_logprobs(top_logprobs, max_logprobs)
    return {"n": 1, "temperature": 0.0, "max_tokens": 1, "prompt_logprobs": top_logprobs, "detokenize": False}


def position(logprobs: dict[int, Any], token: int, where: str) -> dict[int, float]:
    """One position's ``{token_id: Logprob}`` as ``{token_id: logprob}``; the chosen (or given)
    ``token`` must be among them, as vLLM always reports it."""
    out = {int(t): float(lp.logprob) for t, lp in logprobs.items()}
    if token not in out:
        raise ValueError(f"vLLM reported no log-prob for token {token} at {where}")
    return out


def to_generation(output: Any, top_logprobs: int, decode: Callable[[list[int]], str] | None = None) -> Generation:
    """A ``vllm.RequestOutput`` (first completion) as a ``Generation``.

    ``decode(ids)`` gives the text of the generated ids less the stop token (what
    ``HFTeacher`` writes); None keeps vLLM's own ``text``.
    """
    completion = output.outputs[0]
    ids = [int(t) for t in completion.token_ids]
    if decode is None:
        text = completion.text
    else:
        # "stop" without stop strings: the last id is an EOS / stop token, which the text leaves out.
        text = decode(ids[:-1] if completion.finish_reason == "stop" and ids else ids)
    top = None
    if top_logprobs > 0:
        if completion.logprobs is None or len(completion.logprobs) != len(ids):
            raise ValueError(f"vLLM reported log-probs for {0 if completion.logprobs is None else len(completion.logprobs)} of {len(ids)} generated tokens")
        top = [position(lps, t, f"generated position {i}") for i, (t, lps) in enumerate(zip(ids, completion.logprobs, strict=True))]
    return Generation(text=text, prompt_tokens=len(output.prompt_token_ids), completion_tokens=len(ids), top_logprobs=top)


def to_scores(output: Any, start: int) -> list[dict[int, float]]:
    """A ``vllm.RequestOutput`` asked with ``prompt_logprobs``: the top-k (and the given
    token's) log-probs at each prompt position from ``start`` (>= 1) on."""
    ids = [int(t) for t in output.prompt_token_ids]
    logprobs = output.prompt_logprobs
    if logprobs is None or len(logprobs) != len(ids):
        raise ValueError(f"vLLM reported prompt log-probs for {0 if logprobs is None else len(logprobs)} of {len(ids)} prompt tokens")
    return [position(logprobs[i], ids[i], f"prompt position {i}") for i in range(start, len(ids))]


class VLLMTeacher:
    """A model on vLLM's offline engine; ``name`` keys the teacher-output cache.

    ``llm`` is a ``vllm.LLM``, ``tokenizer`` the model's HF tokenizer (prompts are encoded
    and completions decoded with it), ``params`` the ``vllm.SamplingParams`` class.
    ``sampling`` keys as for ``HFTeacher``: ``max_new_tokens``, ``temperature`` (0 =
    greedy), ``top_p``, ``top_logprobs`` (at most ``max_logprobs``), ``seed``.
    """

    def __init__(self, llm: Any, tokenizer: Any, params: Any, *, name: str, max_logprobs: int = 20, seed: int = 0) -> None:
        self.llm = llm
        self.tokenizer = tokenizer
        self.params = params
        self.name = name
        self.max_logprobs = max_logprobs
        self.seed = seed

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        dtype: str = "auto",
        max_logprobs: int = 20,
        seed: int = 0,
        name: str | None = None,
        chat_template: bool = True,
    ) -> VLLMTeacher:
        """Start the engine on the model directory ``path`` once (it stays resident).

        ``name`` defaults to ``vllm-<version>:<path>``: the engine's version is in it since
        its kernels change the outputs; name the weights' version yourself if they change in place.
        ``chat_template=False`` (``world.chat_template: false``): prompts as raw text.
        """
        try:
            import vllm
        except ImportError as e:
            raise ImportError(MISSING) from e
        from read_distill.backends.hf import load_tokenizer

        tokenizer = load_tokenizer(path, chat_template)
        llm = vllm.LLM(
            model=str(path),
            tokenizer=str(path),
            tensor_parallel_size=tensor_parallel_size,
            dtype=dtype,
            gpu_memory_utilization=gpu_memory_utilization,
            seed=seed,
            max_logprobs=max_logprobs,
        )
        version = getattr(vllm, "__version__", "unknown")
        return cls(
            llm, tokenizer, vllm.SamplingParams, name=name or f"vllm-{version}:{path}", max_logprobs=max_logprobs, seed=seed
        )

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def generate(self, prompts: list[str], sampling: dict[str, Any]) -> list[Generation]:
        """Complete ``prompts`` in one engine call; see the class docstring for ``sampling``."""
        from read_distill import train

        if not prompts:
            return []
        k = int(sampling.get("top_logprobs", 0))
        requests = [{"prompt_token_ids": train.encode_prompt(self.tokenizer, p)} for p in prompts]
        # vLLM stops at EOS and the model's configured EOS ids; a chat template's end-of-turn
        # token is added, as HFTeacher stops there.
        stop = train.end_of_turn(self.tokenizer)[-1:]
        params = [
            self.params(**sampling_params(sampling, max_logprobs=self.max_logprobs, seed=self.seed, prompt=p, stop_token_ids=stop))
            for p in prompts
        ]
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        return [to_generation(o, k, self._decode) for o in outputs]

    def score(self, sequences: list[list[int]], start: list[int], top_logprobs: int) -> list[list[dict[int, float]]]:
        """The teacher's top-k log-probs (and the given token's) at each position from
        ``start[i]`` (>= 1: nothing predicts position 0) on of each token sequence: vLLM's
        ``prompt_logprobs``. The caller tokenises (``train.encode_prompt`` +
        ``train.encode_completion``), so the positions are the ones the student trains on."""
        if len(sequences) != len(start):
            raise ValueError("score needs one start per sequence")
        if any(s < 1 for s in start):
            raise ValueError("score: positions start at 1; nothing predicts a sequence's first token")
        if not sequences:
            return []
        params = self.params(**scoring_params(top_logprobs, max_logprobs=self.max_logprobs))
        outputs = self.llm.generate([{"prompt_token_ids": list(s)} for s in sequences], params, use_tqdm=False)
        return [to_scores(o, s) for o, s in zip(outputs, start, strict=True)]

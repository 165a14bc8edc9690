"""lm-evaluation-harness over a student: ``read-distill eval`` (the ``eval`` extra).

:class:`StudentLM` is an lm-eval ``LM`` that answers lm-eval's three requests with this
project's engine, not lm-eval's own HFLM: text is encoded as every run encodes it
(``train.encode_prompt`` for the context, ``train.encode_completion`` without EOS for the
continuation), log-likelihoods come from :func:`backends.hf.continuation_logprobs` (the
forward pass behind ``Student.score``) and generations from
:func:`backends.hf.generate_tokens`. So lm-eval scores the student fed the way it was
trained and probed.

Contexts are encoded raw, never through the student's chat template (``encode_prompt``
with ``chat_template=False``): an lm-eval context is the task's final text (few-shot
examples included), which lm-eval puts through a chat template itself when asked
(``--apply_chat_template``, multi-turn, via ``LM.apply_chat_template``); wrapping it
here as one user message would score another prompt than the task defines, and than any
other lm-eval model is scored on.

Tasks are lm-eval's: its registered names, or YAML task files in ``--include-path``. The
data are the task's own (``dataset_path``); without the Hugging Face hub, a task must name
local files (``dataset_path: json`` with ``dataset_kwargs: {data_files: ...}``).
"""

from __future__ import annotations

import difflib
import warnings
from pathlib import Path
from typing import Any

from lm_eval import simple_evaluate
from lm_eval.api.instance import Instance
from lm_eval.api.model import LM
from lm_eval.tasks import TaskManager
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

from read_distill import train
from read_distill.backends.hf import (
    HFStudent,
    continuation_logprobs,
    generate_tokens,
    merged_lora_model,
    resolve_device,
)
from read_distill.config import ConfigError

#: Generation settings of a task's ``generation_kwargs`` that the student's generation honours.
GENERATION_KEYS = ("until", "max_gen_toks", "do_sample", "temperature", "top_p")
#: lm-eval's default for a task that names no ``max_gen_toks``.
DEFAULT_MAX_GEN_TOKS = 256


class StudentLM(LM):
    """lm-eval's ``LM`` contract over an :class:`HFStudent` (see the module docstring).

    Inputs longer than the model's context (``max_length``) lose their oldest context
    tokens, as lm-eval's own models do; a continuation is always scored whole. ``seed``
    seeds sampling, for tasks that ask for it (``do_sample``).
    """

    def __init__(self, student: HFStudent, *, seed: int = 0) -> None:
        super().__init__()
        self.student = student
        self.seed = seed
        tokenizer = student.tokenizer
        # What an empty context (and a rolling log-likelihood's first token) is conditioned
        # on: the prompt encoding of "" (the BOS where the tokenizer adds one), else one
        # BOS or EOS token, lm-eval's own choice.
        fallback = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        self.prefix = train.encode_prompt(tokenizer, "", chat_template=False) or [int(fallback)]

    @property
    def tokenizer(self) -> Any:
        """The student's tokenizer (lm-eval records its special tokens with the results)."""
        return self.student.tokenizer

    @property
    def max_length(self) -> int:
        """Tokens the model attends to at once (its position embeddings; 2048 if it names none)."""
        config = self.student.model.config
        return int(getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None) or 2048)

    def _context(self, text: str) -> list[int]:
        # Raw, whatever the tokenizer's chat template (see the module docstring). Only an
        # empty context of a tokenizer that adds no BOS encodes to nothing.
        return train.encode_prompt(self.student.tokenizer, text, chat_template=False) or list(self.prefix)

    def _scored(self, pairs: list[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
        """(sum log-prob, greedy) per (context ids, continuation ids); an empty continuation
        has probability 1 and is what greedy decoding produces in zero steps."""
        student = self.student
        student.model.eval()
        todo = [i for i, (_, cont) in enumerate(pairs) if cont]
        out = [(0.0, True)] * len(pairs)
        scored = continuation_logprobs(student.model, student.tokenizer, [pairs[i] for i in todo], batch_size=student.batch_size)
        for i, (logprobs, greedy) in zip(todo, scored, strict=True):
            out[i] = (logprobs.sum().item(), greedy)
        return out

    def _fit(self, context: list[int], reserved: int) -> list[int]:
        """``context`` cut from the left so that ``reserved`` more tokens fit ``max_length``
        (one context token at least: it is what predicts the first of them)."""
        room = self.max_length - reserved
        if room < 1:
            raise ValueError(f"{reserved} tokens to score or generate do not fit the model's context of {self.max_length}")
        return context[-room:]

    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        """Per ``(context, continuation)``: the continuation's summed log-prob given the
        context and whether greedy decoding would produce it."""
        tokenizer = self.student.tokenizer
        pairs = []
        for context, continuation in (r.args for r in requests):
            ids = train.encode_completion(tokenizer, continuation, eos=False)
            pairs.append((self._fit(self._context(context), len(ids)), ids))
        return self._scored(pairs)

    def loglikelihood_rolling(self, requests: list[Instance]) -> list[float]:
        """Per ``(text,)``: the summed log-prob of every token of the text, conditioned on
        the prefix (the BOS) and cut into windows of ``max_length`` tokens, each token
        predicted once with as much context as fits."""
        tokenizer = self.student.tokenizer
        prefix = self.prefix
        windows: list[tuple[int, tuple[list[int], list[int]]]] = []
        for doc, (text,) in enumerate(r.args for r in requests):
            ids = train.encode_completion(tokenizer, text, eos=False)
            rolling = get_rolling_token_windows(token_list=ids, prefix_token=prefix[-1], max_seq_len=self.max_length - len(prefix), context_len=1)
            for k, (context, continuation) in enumerate(map(make_disjoint_window, rolling)):
                # lm-eval's windows start from one prefix token; ours may be longer.
                windows.append((doc, (prefix[:-1] + context if k == 0 else context, continuation)))
        totals = [0.0] * len(requests)
        for (doc, _), (logprob, _) in zip(windows, self._scored([pair for _, pair in windows]), strict=True):
            totals[doc] += logprob
        return totals

    def generate_until(self, requests: list[Instance]) -> list[str]:
        """Per ``(context, generation_kwargs)``: the student's completion (greedy unless
        ``do_sample`` with a ``temperature`` > 0), at most ``max_gen_toks`` tokens, ended at
        EOS and cut before the first of the ``until`` strings."""
        student = self.student
        student.model.eval()
        groups: dict[tuple[int, float, float], list[int]] = {}
        settings = []
        for i, (context, kwargs) in enumerate(r.args for r in requests):
            kwargs = dict(kwargs or {})
            ignored = sorted(set(kwargs) - set(GENERATION_KEYS))
            if ignored:
                warnings.warn(f"generation_kwargs {ignored} are ignored: the student's generation honours {', '.join(GENERATION_KEYS)}", stacklevel=2)
            until = kwargs.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            max_gen_toks = int(kwargs.get("max_gen_toks", DEFAULT_MAX_GEN_TOKS))
            temperature = float(kwargs.get("temperature", 0.0)) if kwargs.get("do_sample") else 0.0
            top_p = float(kwargs.get("top_p", 1.0))
            settings.append((self._fit(self._context(context), max_gen_toks), until))
            groups.setdefault((max_gen_toks, temperature, top_p), []).append(i)
        out = [""] * len(requests)
        # generate_tokens batches by length; requests that differ in settings go separately.
        for (max_gen_toks, temperature, top_p), members in groups.items():
            completions = generate_tokens(
                student.model,
                student.tokenizer,
                [settings[i][0] for i in members],
                max_new_tokens=max_gen_toks,
                temperature=temperature,
                top_p=top_p,
                batch_size=student.batch_size,
                seed=self.seed,
            )
            for i, completion in zip(members, completions, strict=True):
                # generate_tokens stops only at EOS or max_gen_toks: the stop strings cut
                # the text afterwards (a batch runs as long as its longest row).
                text = completion.text
                for stop in settings[i][1]:
                    if stop and stop in text:
                        text = text[: text.index(stop)]
                out[i] = text
        return out


def checkpoint_dir(path: Path) -> Path:
    """The model directory that ``path`` names: a run directory's ``student/`` (its latest
    checkpoint), else ``path`` itself when it holds a model or LoRA adapters.

    A path that holds none of these is a ConfigError.
    """
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"{path}: no such directory; expected a run directory or a model directory")
    if (path / "config.yaml").is_file() and (path / "student").is_dir():
        path = path / "student"
    if not ((path / "config.json").is_file() or (path / "adapter_config.json").is_file()):
        raise ConfigError(f"{path}: holds no model (no config.json or adapter_config.json); expected a run directory or a model directory")
    return path


def load_student(path: Path, *, device: str = "auto", batch_size: int = 16) -> HFStudent:
    """The student of :func:`checkpoint_dir` of ``path``; LoRA adapters are merged into
    their base (as ``read-distill merge`` writes it)."""
    path = checkpoint_dir(path)
    if (path / "adapter_config.json").is_file():
        model, tokenizer = merged_lora_model(path)
        return HFStudent(model.to(resolve_device(device)), tokenizer, batch_size=batch_size, quiet=True)
    return HFStudent.from_pretrained(path, device=device, batch_size=batch_size, quiet=True)


def task_manager(include_path: Path | None = None, *, include_defaults: bool = True) -> TaskManager:
    """lm-eval's task index: its own tasks (unless ``include_defaults`` is False) and the
    YAML tasks under ``include_path``. A missing ``include_path`` is a ConfigError."""
    if include_path is not None and not Path(include_path).is_dir():
        raise ConfigError(f"--include-path: {include_path} is not a directory; expected a directory of lm-eval task YAML files")
    return TaskManager(include_path=str(include_path) if include_path is not None else None, include_defaults=include_defaults)


def check_tasks(tasks: list[str], manager: TaskManager) -> None:
    """A ConfigError naming the first of ``tasks`` that is neither a task, group or tag
    that ``manager`` knows nor a task YAML file (with the nearest known names)."""
    if not tasks:
        raise ConfigError("--tasks: expected one or more lm-eval task names, comma-separated")
    known = set(manager.all_tasks)
    for name in tasks:
        if name in known or (name.endswith((".yaml", ".yml")) and Path(name).is_file()):
            continue
        near = difflib.get_close_matches(name, manager.all_tasks, n=3)
        hint = f" (nearest: {', '.join(near)})" if near else ""
        raise ConfigError(f"--tasks: unknown task {name!r}{hint}; expected an lm-eval task, group or tag name, one in --include-path, or a task YAML file")


def evaluate(
    student: HFStudent,
    tasks: list[str],
    *,
    manager: TaskManager | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """lm-eval's results for ``student`` on ``tasks`` (``simple_evaluate``'s dict, without
    per-sample logs): ``results[task][metric]`` and the table lm-eval prints from it.
    ``limit`` evaluates the first N documents of each task; lm-eval's default seeds stand,
    so few-shot examples are the ones lm-eval draws for any model. A task name that
    ``manager`` does not know, or task data that cannot be loaded, is a ConfigError."""
    manager = manager or task_manager()
    check_tasks(tasks, manager)
    try:
        return simple_evaluate(
            model=StudentLM(student),
            tasks=tasks,
            task_manager=manager,
            limit=limit,
            log_samples=False,
        )
    except (ConnectionError, FileNotFoundError) as e:
        # What `datasets` raises for a hub dataset it cannot reach or a local file that is
        # not there: the task's data, not the student, is missing.
        raise ConfigError(
            f"--tasks: a task's data could not be loaded ({e}); a task reads its dataset_path from the "
            "Hugging Face hub, or from local files with dataset_path: json and dataset_kwargs: {data_files: ...}"
        ) from None

"""Teacher and student backends for any causal LM that ``AutoModelForCausalLM`` loads.

Both take loaded objects (the embedded micro-world builds its models in-process) or load
from a path with ``from_pretrained``; hub ids work only on machines that reach the hub.
Generation is batched with left padding and the KV cache; prompts are sorted by length
so each batch pads little, and results come back in the caller's order. Token counts are
true tokenizer counts: the prompt's ids (BOS included where the tokenizer adds it) and the
generated ids up to and including the first EOS, never padding.

Instruct models: a prompt goes through the tokenizer's chat template where it has one
(``train.encode_prompt``: one user message and the generation prompt), and generation also
stops at the template's end-of-turn token. ``chat_template=False`` at loading
(``world.chat_template``) clears the template, so the model is fed raw text.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from read_distill import ranks, train
from read_distill.config import ConfigError, TrainConfig
from read_distill.ledger import Ledger
from read_distill.types import Example, Generation, TrainStats

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(device: str = "auto") -> torch.device:
    """``auto``: the first GPU if there is one, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device, training: bool = False) -> torch.dtype:
    """``auto``: bf16 for inference on GPUs that support it, else fp32 (training keeps fp32
    master weights; mixed precision comes from accelerate)."""
    if dtype != "auto":
        return _DTYPES[dtype]
    if not training and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def _pad_id(tokenizer: Any) -> int:
    if tokenizer.pad_token_id is not None:
        return int(tokenizer.pad_token_id)
    return int(tokenizer.eos_token_id) if tokenizer.eos_token_id is not None else 0


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    """Every id that ends a generation: the tokenizer's EOS, the model's (chat models list
    several) and, where prompts go through a chat template, its end-of-turn token."""
    ids = {int(tokenizer.eos_token_id)} if tokenizer.eos_token_id is not None else set()
    ids |= set(train.end_of_turn(tokenizer)[-1:])
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if configured is not None:
        ids |= {int(i) for i in (configured if isinstance(configured, list) else [configured])}
    return sorted(ids)


@dataclass(frozen=True)
class Completion:
    """One prompt's generation at the token level (what :func:`generate_tokens` returns)."""

    prompt_ids: list[int]
    #: Generated ids up to and including the first EOS (never padding).
    token_ids: list[int]
    #: ``token_ids`` decoded without special tokens (so without the EOS).
    text: str
    #: Whether generation ended at an EOS (else at ``max_new_tokens``).
    stopped: bool
    #: Per generated position, the top-k ``{token_id: logprob}`` (None when not asked).
    top_logprobs: list[dict[int, float]] | None


@torch.no_grad()
def generate_tokens(
    model: Any,
    tokenizer: Any,
    prompts: list[str] | list[list[int]],
    *,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    top_logprobs: int = 0,
    batch_size: int = 16,
    seed: int = 0,
) -> list[Completion]:
    """Complete ``prompts`` (greedy when ``temperature == 0``), in batches of similar length.

    A prompt is a string (encoded with ``train.encode_prompt``) or its token ids as given.
    ``top_logprobs > 0`` records, per generated position, the k most likely ids of the
    model's own (untempered) distribution with their log-probs, plus the generated id when
    it is not among them (so a position holds k or k + 1 entries, as vLLM reports them).
    Recording keeps every step's logits until the batch ends (batch × steps × vocab floats):
    lower ``batch_size`` for large vocabularies.
    Sampling is seeded per batch from ``seed`` and the batch's prompts, so a batch's output
    does not depend on what was generated before it; the global torch RNG is left untouched.
    """
    from transformers import GenerationConfig

    device = next(model.parameters()).device
    pad, eos = _pad_id(tokenizer), _eos_ids(model, tokenizer)
    tokens_given = bool(prompts) and isinstance(prompts[0], list)
    encoded = [list(p) for p in prompts] if tokens_given else train.encode_prompts(tokenizer, prompts)
    sampled = temperature > 0
    # Every knob is set: unset ones would be inherited from the model's generation_config.
    gen_config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=sampled,
        temperature=temperature if sampled else 1.0,
        top_k=0 if sampled else None,  # 0 disables top-k filtering; greedy must not set it
        top_p=top_p if sampled else 1.0,
        num_beams=1,
        repetition_penalty=1.0,
        pad_token_id=pad,
        eos_token_id=eos or None,
        output_logits=top_logprobs > 0,
        return_dict_in_generate=True,
    )
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    out: list[Completion] = [None] * len(prompts)  # type: ignore[list-item]  # filled below
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        width = max(len(encoded[i]) for i in chunk)
        ids = torch.tensor([[pad] * (width - len(encoded[i])) + encoded[i] for i in chunk], device=device)
        mask = torch.tensor([[0] * (width - len(encoded[i])) + [1] * len(encoded[i]) for i in chunk], device=device)
        # Seeding inside fork_rng leaves the caller's RNG streams (training's) untouched.
        rng = torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])
        with rng if sampled else contextlib.nullcontext():
            if sampled:
                digest = hashlib.sha256(json.dumps([seed] + [prompts[i] for i in chunk]).encode()).digest()
                torch.manual_seed(int.from_bytes(digest[:8], "little"))
            # Never transformers' own lockstep for sharded models (synced_gpus): a sharded
            # student generates with its weights gathered whole, each rank its own prompts.
            result = model.generate(input_ids=ids, attention_mask=mask, generation_config=gen_config, synced_gpus=False)
        new = result.sequences[:, width:].tolist()
        tops = _top_logprobs(result.logits, result.sequences[:, width:], top_logprobs) if top_logprobs > 0 else None
        for b, i in enumerate(chunk):
            tokens = new[b]
            # Up to and including the first EOS; what follows is padding of a finished row.
            end = next((k + 1 for k, t in enumerate(tokens) if t in eos), len(tokens))
            stopped = bool(end) and tokens[end - 1] in eos
            out[i] = Completion(
                prompt_ids=encoded[i],
                token_ids=tokens[:end],
                text=tokenizer.decode(tokens[: end - 1] if stopped else tokens[:end], skip_special_tokens=True),
                stopped=stopped,
                top_logprobs=None if tops is None else [tops[k][b] for k in range(end)],
            )
    return out


def generate_batched(model: Any, tokenizer: Any, prompts: list[str], **options: Any) -> list[Generation]:
    """:func:`generate_tokens` as the ``Teacher`` protocol reports it: text and true token
    counts (the prompt's ids, BOS included where the tokenizer adds it; the generated ids
    through the first EOS)."""
    return [
        Generation(
            text=c.text,
            prompt_tokens=len(c.prompt_ids),
            completion_tokens=len(c.token_ids),
            top_logprobs=c.top_logprobs,
        )
        for c in generate_tokens(model, tokenizer, prompts, **options)
    ]


def _top_logprobs(logits: tuple[torch.Tensor, ...], chosen: torch.Tensor, k: int) -> list[list[dict[int, float]]]:
    """Per step and row, the k most likely ids with log-probs, plus the chosen id (as vLLM
    reports them): training uses the chosen ids to check that a completion's re-tokenization
    lines up with the record."""
    out = []
    for step, step_logits in enumerate(logits):
        lp = F.log_softmax(step_logits.float(), dim=-1)
        values, indices = lp.topk(min(k, lp.shape[-1]), dim=-1)
        picked = chosen[:, step]
        picked_lp = lp.gather(1, picked[:, None])[:, 0]
        rows = []
        for ids, lps, c, clp in zip(
            indices.tolist(), values.tolist(), picked.tolist(), picked_lp.tolist(), strict=True
        ):
            dist = dict(zip(ids, lps, strict=True))
            dist.setdefault(c, clp)
            rows.append(dist)
        out.append(rows)
    return out


@torch.no_grad()
def prompt_logprobs(
    model: Any, tokenizer: Any, sequences: list[list[int]], *, top_logprobs: int, batch_size: int = 16
) -> list[list[dict[int, float]]]:
    """Per sequence and position t >= 1, the ``top_logprobs`` most likely ids for token t
    given tokens before it, with their log-probs, plus token t's own (what an
    OpenAI-compatible server's ``echo`` reports for a prompt). One forward pass per batch."""
    device = next(model.parameters()).device
    pad = _pad_id(tokenizer)
    out: list[list[dict[int, float]]] = [[] for _ in sequences]
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        width = max(len(sequences[i]) for i in chunk)
        # Right padding: position t attends to the same tokens as without padding.
        ids = torch.tensor([sequences[i] + [pad] * (width - len(sequences[i])) for i in chunk], device=device)
        mask = torch.tensor([[1] * len(sequences[i]) + [0] * (width - len(sequences[i])) for i in chunk], device=device)
        logprobs = F.log_softmax(model(input_ids=ids, attention_mask=mask, use_cache=False).logits.float(), dim=-1)
        for b, i in enumerate(chunk):
            n = len(sequences[i])
            if n < 2:
                continue
            lp = logprobs[b, : n - 1]
            actual = ids[b, 1:n]
            values, indices = lp.topk(min(top_logprobs, lp.shape[-1]), dim=-1)
            picked = lp.gather(1, actual[:, None])[:, 0]
            for row_ids, row_lps, c, clp in zip(
                indices.tolist(), values.tolist(), actual.tolist(), picked.tolist(), strict=True
            ):
                dist = dict(zip(row_ids, row_lps, strict=True))
                dist.setdefault(c, clp)
                out[i].append(dist)
    return out


@torch.no_grad()
def continuation_logprobs(
    model: Any, tokenizer: Any, pairs: list[tuple[list[int], list[int]]], *, batch_size: int = 16
) -> list[tuple[torch.Tensor, bool]]:
    """Per ``(prompt ids, continuation ids)`` pair (both non-empty): the log-prob of each
    continuation token given every token before it, and whether greedy decoding continues
    the prompt with exactly these tokens (each one the argmax at its position).

    Pairs are sorted by length into right-padded batches, one forward pass each, so position
    t attends to the same tokens as without padding; results come back in the caller's order.
    """
    device = next(model.parameters()).device
    pad = _pad_id(tokenizer)
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
    out: list[tuple[torch.Tensor, bool]] = [None] * len(pairs)  # type: ignore[list-item]  # filled below
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        width = max(len(pairs[i][0]) + len(pairs[i][1]) for i in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for b, i in enumerate(chunk):
            seq = pairs[i][0] + pairs[i][1]
            ids[b, : len(seq)] = torch.tensor(seq)
            mask[b, : len(seq)] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False).logits
        logprobs = F.log_softmax(logits.float(), dim=-1)
        for b, i in enumerate(chunk):
            prompt, ref = pairs[i]
            # Position t predicts token t + 1.
            rows = torch.arange(len(prompt) - 1, len(prompt) + len(ref) - 1, device=logprobs.device)
            targets = torch.tensor(ref, device=logprobs.device)
            greedy = bool((logprobs[b, rows].argmax(dim=-1) == targets).all())
            out[i] = (logprobs[b, rows, targets], greedy)
    return out


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """No transformers progress bars inside: loading and saving small checkpoints every round
    would print a "Loading weights" / "Writing model shards" bar each time. Nor the
    deprecation warning that peft's wrapping raises in transformers: not ours to act on."""
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
            yield
    finally:
        if shown:
            hf_logging.enable_progress_bar()


def load_tokenizer(path: str | Path, chat_template: bool = True) -> Any:
    """The tokenizer at ``path``. ``chat_template=False`` (``world.chat_template: false``)
    clears its chat template: the one place that setting takes effect, since every
    encoding path (``train.encode_prompt``) uses a template exactly when the tokenizer has one."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if not chat_template:
        tokenizer.chat_template = None
    return tokenizer


def _load(path: str | Path, dtype: str, device: str, training: bool, chat_template: bool = True) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM

    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev, training)
    tokenizer = load_tokenizer(path, chat_template)
    with quiet_transformers():
        if device == "auto" and dev.type == "cuda" and not training:
            # A teacher too big for one GPU is spread over all of them; accelerate places the
            # student itself (one copy per process under DDP).
            return AutoModelForCausalLM.from_pretrained(str(path), dtype=torch_dtype, device_map="auto"), tokenizer
        return AutoModelForCausalLM.from_pretrained(str(path), dtype=torch_dtype).to(dev), tokenizer


class HFTeacher:
    """A frozen causal LM kept resident on its device; implements ``Teacher``.

    ``sampling`` keys: ``max_new_tokens`` (required), ``temperature`` (0 = greedy, the
    default), ``top_p`` (1.0), ``top_logprobs`` (0 = none), ``seed`` (this teacher's).
    """

    def __init__(self, model: Any, tokenizer: Any, *, name: str, batch_size: int = 16, seed: int = 0) -> None:
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.name = name
        self.batch_size = batch_size
        self.seed = seed

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        name: str | None = None,
        dtype: str = "auto",
        device: str = "auto",
        batch_size: int = 16,
        seed: int = 0,
        chat_template: bool = True,
    ) -> HFTeacher:
        """Load once from a local directory (or a hub id where the hub is reachable);
        ``chat_template=False`` feeds prompts raw even where the tokenizer has a template."""
        model, tokenizer = _load(path, dtype, device, training=False, chat_template=chat_template)
        return cls(model, tokenizer, name=name or str(path), batch_size=batch_size, seed=seed)

    def generate(self, prompts: list[str], sampling: dict[str, Any]) -> list[Generation]:
        """Complete a batch of prompts; see the class docstring for ``sampling``."""
        return generate_batched(
            self.model,
            self.tokenizer,
            prompts,
            max_new_tokens=int(sampling["max_new_tokens"]),
            temperature=float(sampling.get("temperature", 0.0)),
            top_p=float(sampling.get("top_p", 1.0)),
            top_logprobs=int(sampling.get("top_logprobs", 0)),
            batch_size=self.batch_size,
            seed=int(sampling.get("seed", self.seed)),
        )


class HFStudent:
    """A trainable causal LM; implements ``Student``. Training is :func:`read_distill.train.fit`.

    ``teacher`` (an :class:`HFTeacher` or a bare model sharing the vocabulary) supplies full
    distributions for KD. The AdamW state lives from the first ``fit`` on and is saved with
    the weights, so ``save`` then ``load`` then ``fit`` equals uninterrupted training.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        config: TrainConfig | None = None,
        teacher: HFTeacher | Any | None = None,
        seed: int = 0,
        batch_size: int = 16,
        quiet: bool = False,
    ) -> None:
        self.config = config or TrainConfig()
        if self.config.lora is not None:
            with quiet_transformers():
                model = train.attach_lora(model, self.config.lora, seed)
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.teacher_model = teacher.model if isinstance(teacher, HFTeacher) else teacher
        self.seed = seed
        self.batch_size = batch_size
        self.quiet = quiet
        self.state: train.TrainState | None = None

    @classmethod
    def from_pretrained(
        cls, path: str | Path, *, dtype: str = "auto", device: str = "auto", chat_template: bool = True, **kwargs: Any
    ) -> HFStudent:
        """Load from a local directory (or a hub id where the hub is reachable);
        ``chat_template=False`` feeds prompts raw even where the tokenizer has a template."""
        # A LoRA checkpoint names its base model by this path (adapter_config.json): an
        # absolute one lets `read-distill merge` find it from any working directory.
        local = Path(path).expanduser()
        model, tokenizer = _load(local.resolve() if local.is_dir() else path, dtype, device, training=True, chat_template=chat_template)
        return cls(model, tokenizer, **kwargs)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _train_state(self) -> train.TrainState:
        if self.state is None:
            self.state = train.TrainState(self.model, self.config, cpu=self.device.type == "cpu")
        return self.state

    def fit(self, examples: list[Example], quota_tokens: int, ledger: Ledger, round: int | None = None) -> TrainStats:
        """Train until ``quota_tokens`` billable tokens are spent (see ``train.fit``).

        ``round`` labels the ledger charges; by default the latest round in the ledger
        (the runner charges the round's teacher tokens before training), else 0.
        """
        if round is None:
            round = max((e.round for e in ledger.entries), default=0)
        return train.fit(
            self.model,
            self.tokenizer,
            examples,
            quota_tokens,
            ledger,
            round,
            self.config,
            self._train_state(),
            teacher_model=self.teacher_model,
            seed=self.seed,
            quiet=self.quiet,
        )

    def _full_weights(self) -> contextlib.AbstractContextManager[None]:
        """The student's weights whole inside (gathered by every rank where FSDP shards them)."""
        return self.state.full_weights() if self.state is not None else contextlib.nullcontext()

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        """Greedy completions, batched with left padding (split across ranks, see :mod:`read_distill.ranks`)."""
        self.model.eval()
        with self._full_weights():
            return ranks.split_map(
                lambda mine: [g.text for g in generate_batched(self.model, self.tokenizer, mine, max_new_tokens=max_new_tokens, batch_size=self.batch_size)],
                prompts,
            )

    def sample(self, prompts: list[str], max_new_tokens: int, seed: int) -> list[Generation]:
        """Completions drawn from the student's own distribution (T = 1, no truncation): the
        text of on-policy distillation, whose reverse KL is an expectation under it."""
        self.model.eval()
        with self._full_weights():
            return ranks.split_map(
                lambda mine: generate_batched(
                    self.model, self.tokenizer, mine, max_new_tokens=max_new_tokens, temperature=1.0, batch_size=self.batch_size, seed=seed
                ),
                prompts,
            )

    def score(self, prompts: list[str], references: list[str]) -> list[float]:
        """Mean log-prob per token of each reference given its prompt (no EOS scored; split
        across ranks, see :mod:`read_distill.ranks`)."""
        if len(prompts) != len(references):
            raise ValueError("score needs one reference per prompt")
        with self._full_weights():
            return ranks.split_map(lambda mine: self._score([p for p, _ in mine], [r for _, r in mine]), list(zip(prompts, references, strict=True)))

    def _score(self, prompts: list[str], references: list[str]) -> list[float]:
        self.model.eval()
        pairs = [
            (train.encode_prompt(self.tokenizer, p), train.encode_completion(self.tokenizer, r, eos=False))
            for p, r in zip(prompts, references, strict=True)
        ]
        if any(not prompt or not ref for prompt, ref in pairs):
            raise ValueError("score needs non-empty prompts and references")
        scored = continuation_logprobs(self.model, self.tokenizer, pairs, batch_size=self.batch_size)
        return [logprobs.mean().item() for logprobs, _ in scored]

    def save(self, directory: Path) -> None:
        """Weights (safetensors; the adapters alone under ``train.lora``), tokenizer and
        training state; written beside and renamed in, so an interrupted save leaves the
        previous checkpoint intact.

        Under several processes every rank calls it and rank 0 writes: under DDP every
        rank holds the same weights; a sharded (FSDP) student's weights and AdamW moments
        are first gathered whole, so the files are the ones one process writes."""
        sharded = self.state is not None and self.state.sharded
        weights = self.state.model_state_dict() if sharded else None
        train_state = self.state.state_dict() if sharded else None
        if not ranks.is_controller():
            return
        directory = Path(directory)
        tmp = directory.with_name(f".{directory.name}.tmp")
        old = directory.with_name(f".{directory.name}.old")
        shutil.rmtree(tmp, ignore_errors=True)
        with quiet_transformers():
            self.model.save_pretrained(tmp, state_dict=weights)
        self.tokenizer.save_pretrained(tmp)
        if self.state is not None:
            torch.save(train_state if sharded else self.state.state_dict(), tmp / "train_state.pt")
        if directory.exists():
            shutil.rmtree(old, ignore_errors=True)
            directory.rename(old)
        tmp.rename(directory)
        shutil.rmtree(old, ignore_errors=True)

    def load(self, directory: Path) -> None:
        """Restore ``save``'s checkpoint in place (the optimizer keeps pointing at these weights)."""
        from transformers import AutoModelForCausalLM

        directory = Path(directory)
        if self.config.lora is not None:
            from peft import set_peft_model_state_dict
            from safetensors.torch import load_file

            adapters = load_file(directory / "adapter_model.safetensors", device=str(self.device))
            unexpected = set_peft_model_state_dict(self.model, adapters).unexpected_keys
            if unexpected:
                raise ValueError(f"{directory}: adapter weights that this student's LoRA config lacks: {unexpected[:3]}")
        else:
            with quiet_transformers():
                loaded = AutoModelForCausalLM.from_pretrained(str(directory), dtype=self.model.dtype)
            (self.state.load_model_state_dict if self.state is not None else self.model.load_state_dict)(loaded.state_dict())
            del loaded
        state_file = directory / "train_state.pt"
        if state_file.exists():
            self._train_state().load_state_dict(torch.load(state_file, map_location=self.device, weights_only=True))
        elif self.state is not None:
            # A checkpoint saved before any training: AdamW starts afresh, as it did then.
            self.state.restart()


def merged_lora_model(checkpoint: Path) -> tuple[Any, Any]:
    """The base model with the LoRA adapters of ``checkpoint`` (a directory
    :meth:`HFStudent.save` wrote under ``train.lora``) merged into its weights, and the
    checkpoint's tokenizer (the model on the CPU).

    A checkpoint without adapters, a base model that is not on disk where the adapters
    name it, or a missing peft is a ConfigError.
    """
    adapter_config = Path(checkpoint) / "adapter_config.json"
    if not adapter_config.is_file():
        raise ConfigError(f"{checkpoint}: no LoRA adapters (adapter_config.json); expected the student of a run with train.lora set")
    base = json.loads(adapter_config.read_text())["base_model_name_or_path"]
    if not (Path(base) / "config.json").is_file():
        raise ConfigError(f"{adapter_config}: base_model_name_or_path: {base} is not a model directory; expected the run's student base")
    if importlib.util.find_spec("peft") is None:
        raise ConfigError("merging LoRA adapters needs peft; pip install 'read-distill[lora]'")
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer

    with quiet_transformers():
        model = AutoPeftModelForCausalLM.from_pretrained(str(checkpoint)).merge_and_unload()
    return model, AutoTokenizer.from_pretrained(str(checkpoint))


def merge_lora(checkpoint: Path, out: Path) -> None:
    """Write :func:`merged_lora_model` of ``checkpoint`` to ``out``: a plain model directory
    that any ``from_pretrained`` loads."""
    model, tokenizer = merged_lora_model(checkpoint)
    with quiet_transformers():
        model.save_pretrained(out)
    tokenizer.save_pretrained(out)

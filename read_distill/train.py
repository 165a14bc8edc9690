"""The student loop: one round of SFT or KD training that stops exactly at the round's quota.

:func:`fit` is the whole loop, written out in one function: plan (take examples in order,
cut the last one so billable spend meets the quota exactly), batch (length-grouped), then
per optimizer step charge the ledger, run forward/backward over micro-batches, clip, step.

Signal × objective (docs/method.md §5) is ``train.signal`` × ``train.objective``; the six one-hot
baselines of docs/method.md §7 are these configurations:

==========  ==========  =============  ===================  ===============================  =====================
baseline    signal      objective      text trained on      teacher distribution             loss per label token
==========  ==========  =============  ===================  ===============================  =====================
Resp-SFT    ``resp``    ``sft``        answer only          none                             CE
CoT-SFT     ``cot``     ``sft``        rationale + answer   none                             CE
Logit-SFT   ``logit``   ``sft``        rationale + answer   recorded top-k, else teacher     KL at T = 1 (alpha = 1)
Resp-KD     ``resp``    ``kd``         answer only          teacher forward (full vocab)     a·T²·KL_T + (1-a)·CE
CoT-KD      ``cot``     ``kd``         rationale + answer   teacher forward (full vocab)     a·T²·KL_T + (1-a)·CE
Logit-KD    ``logit``   ``kd``         rationale + answer   recorded top-k, else teacher     a·T²·KL_T + (1-a)·CE
On-policy   on_policy   reverse_kl     student's sample     teacher forward (full vocab)     T²·KL_T(student||teacher)
==========  ==========  =============  ===================  ===============================  =====================

* *Text*: an example's completion is the teacher's full output (rationale + answer). ``resp``
  keeps only the part from the last ``train.answer_marker`` on (the whole completion when
  the marker is absent); ``cot`` and ``logit`` keep all of it.
* *Teacher distribution*: ``logit`` uses what the teacher recorded at generation time
  (``Example.top_logprobs``, set ``generation.top_logprobs > 0``; both distributions are
  renormalised over those k ids), which is what an API teacher gives. Examples without a
  usable record (none asked, or the completion re-tokenises to other tokens than the teacher
  generated) fall back to a forward pass of the resident teacher model; without one, a
  missing record is an error and a misaligned one trains with CE (and a warning).
  ``resp``/``cot`` KD always use that
  forward pass: the answer-only context differs from the one the teacher generated in, so
  recorded log-probs would not be its distribution there. Logit-SFT is SFT against the
  teacher's soft tokens: soft cross-entropy, whose gradient is that of KL at T = 1, alpha = 1.
* KL is forward KL(teacher || student), scaled by T² (Hinton et al.) so gradients keep
  their size across temperatures. Every label token weighs the same: the step loss is the
  sum of per-token losses over the optimizer batch's label tokens, divided by their count.
  A token without a teacher distribution contributes plain CE.

Token accounting: labels are the selected text's tokens plus EOS (so the student learns
to stop); the prompt is tokenized with the tokenizer's special tokens (BOS), exactly as
the backends generate from it. Where the tokenizer has a chat template (an instruct
model; ``world.chat_template: false`` clears it where the tokenizer is loaded), the
prompt is one user message through it with the generation prompt, and the labels end
with the template's end-of-turn token (e.g. ``<|im_end|>``) instead of EOS: the student
trains on the assistant turn only, never on the system/user part. Each optimizer step is
charged to the ledger before it runs (phase ``train``, tokens = prompt + label tokens,
no padding).

The LR schedule is a function of the budget spent (``ledger.spent / ledger.budget_tokens``
at the end of the step), and the torch seed is reset from (seed, round) at every call, so
the only state that crosses rounds is AdamW's (:class:`TrainState`): saving it with the
weights makes a resumed run equal an uninterrupted one.
"""

from __future__ import annotations

import bisect
import contextlib
import inspect
import math
import random
import sys
import time
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from read_distill import ranks
from read_distill.config import ConfigError, LoraConfig, TrainConfig
from read_distill.ledger import Ledger
from read_distill.types import Example, TrainStats

#: Label value of positions that carry no loss (prompt, padding).
IGNORE_INDEX = -100
#: Length grouping sorts within windows of this many batches. Length follows the kind of
#: item (documents are long, short answers short), so the wider the window the more each
#: batch holds one kind only: with 32 the world's teacher reached a held-out warm-up loss
#: of 0.64 after 400k label tokens, with 8 0.49, as the former world-build loop (pools of
#: 8 batches) did.
MEGABATCH_BATCHES = 8


# -- text and tokens ------------------------------------------------------------------------
def select_text(example: Example, signal: str, answer_marker: str) -> str:
    """The part of ``example.completion`` that ``signal`` trains on (see the module table)."""
    completion = example.completion
    if signal != "resp" or answer_marker not in completion:
        return completion
    # Keep the completion's leading whitespace: it is how the teacher's text joins the prompt.
    lead = completion[: len(completion) - len(completion.lstrip())]
    return lead + completion[completion.rindex(answer_marker) :]


def uses_chat_template(tokenizer: Any) -> bool:
    """Whether prompts to a model of ``tokenizer`` go through its chat template: it has one
    (the loader clears it when ``world.chat_template`` is false, see ``backends.hf.load_tokenizer``)."""
    return bool(getattr(tokenizer, "chat_template", None))


def encode_messages(tokenizer: Any, messages: list[dict[str, Any]]) -> list[int]:
    """``messages`` through the tokenizer's chat template, ending with the generation prompt
    (the assistant's turn opened): the token ids a model generates its reply from.

    The template writes the special tokens it wants (<bos> included, where the model has
    one) and the rendered text is tokenized without adding any, as ``transformers`` and
    vLLM do; a <bos> that still comes out doubled is written once.
    """
    ids = [int(i) for i in tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)]
    bos = tokenizer.bos_token_id
    if bos is not None and ids[:2] == [bos, bos]:
        ids = ids[1:]
    return ids


def encode_prompt(tokenizer: Any, prompt: str, *, chat_template: bool = True) -> list[int]:
    """Prompt token ids as every backend feeds them to a model.

    Where the tokenizer has a chat template (and ``chat_template``), the prompt is one user
    message through it, with the generation prompt (:func:`encode_messages`); otherwise the
    raw text with the tokenizer's special tokens (BOS where the tokenizer adds it).
    ``chat_template=False`` is for callers whose text is already in its final form (the
    lm-eval bridge).
    """
    if chat_template and uses_chat_template(tokenizer):
        return encode_messages(tokenizer, [{"role": "user", "content": prompt}])
    return list(tokenizer(prompt, add_special_tokens=True)["input_ids"])


def encode_prompts(tokenizer: Any, prompts: list[str]) -> list[list[int]]:
    """:func:`encode_prompt` of every prompt; without a chat template, in one tokenizer
    call (a call per prompt costs more than a small model's whole forward pass)."""
    if uses_chat_template(tokenizer) or not prompts:
        return [encode_prompt(tokenizer, p) for p in prompts]
    return [list(ids) for ids in tokenizer(prompts, add_special_tokens=True)["input_ids"]]


def count_tokens(tokenizer: Any, texts: list[str]) -> int:
    """True token count of ``texts`` (no special tokens): what probes and evaluations charge."""
    return sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]) if texts else 0


def count_prompt_tokens(tokenizer: Any, prompts: list[str]) -> int:
    """Tokens a model reads for ``prompts``, as probes and evaluations charge them: without a
    chat template their :func:`count_tokens` (no special tokens); with one, each prompt as
    :func:`encode_prompt` feeds it (role headers, generation prompt, a default system
    message: the model processes those too), less a leading <bos>, which no charge of
    probes or evaluations counts."""
    if not uses_chat_template(tokenizer):
        return count_tokens(tokenizer, prompts)
    bos = tokenizer.bos_token_id
    encoded = encode_prompts(tokenizer, prompts)
    return sum(len(ids) - (bos is not None and ids[:1] == [bos]) for ids in encoded)


#: Assistant content whose rendering locates the end of an assistant turn in a template.
_TURN_MARKER = "READDISTILLASSISTANTTURN"
#: Per tokenizer: (its chat template, the end-of-turn ids derived from it).
_END_OF_TURN: weakref.WeakKeyDictionary[Any, tuple[Any, list[int]]] = weakref.WeakKeyDictionary()


def end_of_turn(tokenizer: Any) -> list[int]:
    """The ids that close an assistant turn under the tokenizer's chat template, through its
    first special token (ChatML's ``<|im_end|>``, Llama 3's ``<|eot_id|>``, Gemma's
    ``<end_of_turn>``): what a completion's labels end with and where generation stops.

    Derived by rendering a user turn and an assistant turn with marker content and
    tokenizing what follows the marker; what follows the special token (ChatML's newline)
    is never generated and is not trained. Empty without a chat template, or when what
    follows holds no special token (the completion then ends with EOS, as without one).
    """
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        return []
    cached = _END_OF_TURN.get(tokenizer)
    if cached is not None and cached[0] == template:
        return list(cached[1])
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "?"}, {"role": "assistant", "content": _TURN_MARKER}], tokenize=False
    )
    ids: list[int] = []
    if _TURN_MARKER in rendered:
        suffix = rendered[rendered.rindex(_TURN_MARKER) + len(_TURN_MARKER) :]
        special = set(tokenizer.all_special_ids) | {i for i, t in tokenizer.added_tokens_decoder.items() if t.special}
        tail = list(tokenizer(suffix, add_special_tokens=False)["input_ids"])
        ids = next((tail[: k + 1] for k, t in enumerate(tail) if t in special), [])
    _END_OF_TURN[tokenizer] = (template, ids)
    return list(ids)


def encode_completion(tokenizer: Any, text: str, eos: bool = True) -> list[int]:
    """Completion token ids (no special tokens), followed when ``eos`` by the chat template's
    end-of-turn ids (:func:`end_of_turn`) where the tokenizer has them, else by EOS where it
    has one."""
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    if eos:
        closing = end_of_turn(tokenizer)
        if closing:
            ids += closing
        elif tokenizer.eos_token_id is not None:
            ids.append(int(tokenizer.eos_token_id))
    return ids


# -- losses ---------------------------------------------------------------------------------
def kl_full(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-position T²·KL(softmax(t/T) || softmax(s/T)) over the whole vocabulary; shape [N]."""
    t = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    s = F.log_softmax(student_logits.float() / temperature, dim=-1)
    return (t.exp() * (t - s)).sum(-1) * temperature**2


def kl_reverse(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-position T²·KL(softmax(s/T) || softmax(t/T)): the student's mass where the teacher
    has little is what costs (mode-seeking), the on-policy distillation loss; shape [N]."""
    t = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    s = F.log_softmax(student_logits.float() / temperature, dim=-1)
    return (s.exp() * (s - t)).sum(-1) * temperature**2


def kl_topk(
    student_logits: torch.Tensor, topk_ids: torch.Tensor, topk_logprobs: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Per-position T²·KL over the teacher's top-k ids, both distributions renormalised over them.

    ``topk_ids``/``topk_logprobs`` are [N, K]; unused slots (positions with fewer than K
    entries) hold logprob ``-inf``. Zero when the student's renormalised top-k equals the
    teacher's, whatever mass either puts outside it.
    """
    valid = torch.isfinite(topk_logprobs)
    t = F.log_softmax(topk_logprobs.float() / temperature, dim=-1)
    s_logits = student_logits.float().gather(-1, topk_ids) / temperature
    s = F.log_softmax(s_logits.masked_fill(~valid, float("-inf")), dim=-1)
    terms = torch.where(valid, t.exp() * (t - s), torch.zeros_like(t))
    return terms.sum(-1) * temperature**2


def mixed_loss_sum(
    student_logits: torch.Tensor,
    targets: torch.Tensor,
    alpha: float,
    temperature: float,
    teacher_logits: torch.Tensor | None = None,
    topk: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    reverse: bool = False,
) -> torch.Tensor:
    """Sum over N label positions of the per-token loss: alpha·KL + (1-alpha)·CE where a
    teacher distribution exists, CE elsewhere. ``reverse`` takes KL(student || teacher)
    against ``teacher_logits`` instead of KL(teacher || student).

    ``student_logits`` [N, V] predict ``targets`` [N]. The teacher distribution of a position
    is its recorded top-k when ``topk = (rows, ids, logprobs)`` lists it (``rows`` [M] indexes
    positions), else ``teacher_logits[position]`` when given, else none.
    """
    ce = F.cross_entropy(student_logits.float(), targets, reduction="none")
    if alpha == 0.0:
        return ce.sum()
    kl = torch.zeros_like(ce)
    has_kd = torch.zeros_like(ce, dtype=torch.bool)
    if teacher_logits is not None:
        kl = (kl_reverse if reverse else kl_full)(student_logits, teacher_logits, temperature)
        has_kd[:] = True
    if topk is not None and topk[0].numel():
        rows, ids, lps = topk
        kl = kl.index_put((rows,), kl_topk(student_logits[rows], ids, lps, temperature))
        has_kd[rows] = True
    per_token = torch.where(has_kd, alpha * kl + (1.0 - alpha) * ce, ce)
    return per_token.sum()


def objective_weights(config: TrainConfig) -> tuple[float, float]:
    """(alpha, temperature) of ``config``'s signal × objective (see the module table)."""
    if config.objective == "kd":
        return config.kd_alpha, config.kd_temperature
    if config.objective == "reverse_kl":
        return 1.0, config.kd_temperature
    if config.signal == "logit":
        return 1.0, 1.0
    return 0.0, 1.0


def lr_at(config: TrainConfig, spent_frac: float) -> float:
    """The learning rate once ``spent_frac`` of the budget B is spent: linear warmup, then
    constant or cosine down to ``min_lr_frac`` of the peak at the end of the budget."""
    p = min(max(spent_frac, 0.0), 1.0)
    if config.warmup_frac > 0 and p < config.warmup_frac:
        return config.lr * p / config.warmup_frac
    if config.schedule == "constant":
        return config.lr
    progress = (p - config.warmup_frac) / (1.0 - config.warmup_frac)
    floor = config.lr * config.min_lr_frac
    return floor + (config.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


# -- state that crosses rounds -----------------------------------------------------------
class TrainState:
    """What carries across rounds: the accelerator, the prepared model and AdamW.

    Created once per student; ``state_dict`` is what a checkpoint must hold besides the
    weights for a resumed run to equal an uninterrupted one.
    """

    def __init__(self, model: torch.nn.Module, config: TrainConfig, cpu: bool = False) -> None:
        from accelerate import Accelerator

        precision = config.mixed_precision
        if precision == "auto":
            precision = "bf16" if not cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
        self.accelerator = Accelerator(mixed_precision=precision, cpu=cpu)
        if config.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        # Decay matrices only: decaying norms and biases just fights the data.
        params = [p for p in model.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.ndim >= 2], "weight_decay": config.weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, config.adam_beta2))
        if ranks.fsdp_requested() and config.lora is not None:
            raise ConfigError("accelerate launch: LoRA under FSDP is not supported yet (untested); use configs/accelerate/ddp.yaml")
        if ranks.fsdp_requested() and not self.accelerator.is_fsdp2:
            # accelerate honours ACCELERATE_USE_FSDP on accelerators only: on the CPU it
            # would train plain DDP while the launch asked for sharding.
            raise ConfigError(f"accelerate launch: FSDP was asked for but accelerate prepared {self.accelerator.distributed_type} (it shards on GPUs only)")
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        #: Whether the student is sharded across processes (FSDP2): each rank then holds a
        #: shard of every weight and of AdamW's moments, and every forward is a collective.
        self.sharded = self.accelerator.is_fsdp2
        self.optimizer_steps = 0

    @contextlib.contextmanager
    def full_weights(self) -> Iterator[None]:
        """Every weight whole on every rank inside, so each rank can generate and score its
        own share of prompts with no collective per forward (what TRL does for generation
        under FSDP). All ranks enter together: gathering the weights is a collective. A
        no-op for an unsharded student."""
        if not self.sharded:
            yield
            return
        from torch.distributed.fsdp import FSDPModule

        units = [m for m in self.model.modules() if isinstance(m, FSDPModule)]
        for unit in units:
            unit.unshard()
            # Otherwise each forward would free the gathered weights and gather them again.
            unit.set_reshard_after_forward(False, recurse=False)
        try:
            yield
        finally:
            # Back to training's setting: the plugin's, but the root never reshards after
            # forward (FSDP2's own default, as backward needs its weights at once).
            reshard = self.accelerator.state.fsdp_plugin.reshard_after_forward
            for unit in units:
                unit.reshard()
                unit.set_reshard_after_forward(reshard and unit is not self.model, recurse=False)

    def model_state_dict(self) -> dict[str, torch.Tensor]:
        """The student's full weights; sharded, every rank calls and each weight is gathered
        whole to the CPU (tied weights once, so ``save_pretrained`` writes them as one
        process does). Not accelerate's ``get_state_dict``: with torch 2.13 on the CPU its
        FSDP2 branch returned the shards (DTensors) instead of whole tensors."""
        if not self.sharded:
            return self.accelerator.get_state_dict(self.model)
        gathered: dict[int, torch.Tensor] = {}
        out = {}
        for name, value in self.model.state_dict(keep_vars=True).items():
            if id(value) not in gathered:
                gathered[id(value)] = _whole(value).detach()
            out[name] = gathered[id(value)]
        return out

    def load_model_state_dict(self, weights: dict[str, torch.Tensor]) -> None:
        """Load full weights (every rank passes them whole) into the possibly sharded student."""
        if not self.sharded:
            self.accelerator.unwrap_model(self.model).load_state_dict(weights)
            return
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

        set_model_state_dict(self.model, weights, options=StateDictOptions(full_state_dict=True))

    def restart(self) -> None:
        """AdamW afresh, as after a checkpoint saved before any training; the prepared model
        stays (a sharded one cannot be prepared twice)."""
        self.optimizer.state.clear()
        self.optimizer_steps = 0

    def state_dict(self) -> dict[str, Any]:
        """AdamW moments and step counts, the loss scaler (fp16 only) and the step counter.

        Sharded, every rank calls: the moments are gathered whole (to the CPU), so the file
        is the one a single process writes."""
        optimizer = self.optimizer.state_dict()
        if self.sharded:
            optimizer = {
                **optimizer,
                "state": {i: {k: _whole(v) for k, v in s.items()} for i, s in optimizer["state"].items()},
            }
        out: dict[str, Any] = {"optimizer": optimizer, "optimizer_steps": self.optimizer_steps}
        if self.accelerator.scaler is not None:
            out["scaler"] = self.accelerator.scaler.state_dict()
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned (sharded: each rank keeps its shard)."""
        optimizer = state["optimizer"]
        if self.sharded:
            params = [p for group in self.optimizer.param_groups for p in group["params"]]
            optimizer = {
                **optimizer,
                "state": {i: {k: _shard_like(v, params[int(i)]) for k, v in s.items()} for i, s in optimizer["state"].items()},
            }
        self.optimizer.load_state_dict(optimizer)
        self.optimizer_steps = int(state["optimizer_steps"])
        if "scaler" in state and self.accelerator.scaler is not None:
            self.accelerator.scaler.load_state_dict(state["scaler"])


def _whole(value: Any) -> Any:
    """A sharded (DTensor) value gathered whole to the CPU (a collective: every rank calls,
    in the same order); anything else as it is."""
    from torch.distributed.tensor import DTensor

    return value.full_tensor().cpu() if isinstance(value, DTensor) else value


def _shard_like(value: Any, param: torch.Tensor) -> Any:
    """A whole optimizer value cut to this rank's shard of ``param`` (a DTensor), with no
    communication: every rank read the same file. Scalars (AdamW's step) stay as they are."""
    from torch.distributed.tensor import DTensor, distribute_tensor

    if not isinstance(param, DTensor) or not isinstance(value, torch.Tensor) or value.shape != param.shape:
        return value
    return distribute_tensor(value.to(param.device), param.device_mesh, param.placements, src_data_rank=None)


def attach_lora(model: torch.nn.Module, lora: LoraConfig, seed: int) -> torch.nn.Module:
    """``model`` wrapped in LoRA adapters (peft): the base weights are frozen, so only the
    adapters train, and ``save_pretrained`` writes the adapters alone.

    The adapters' random initialisation is seeded from ``seed`` (inside a forked RNG, so the
    run's own streams do not move): the same seed gives the same student.
    """
    import peft

    device = next(model.parameters()).device
    adapters = peft.LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules if isinstance(lora.target_modules, str) else list(lora.target_modules),
        task_type="CAUSAL_LM",
    )
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        return peft.get_peft_model(model, adapters)


# -- planning helpers -----------------------------------------------------------------------
@dataclass
class _Item:
    """One example as trained: token ids after cuts, and its teacher record per label position."""

    capability: str
    prompt_ids: list[int]
    label_ids: list[int]
    #: Recorded top-k ``{token_id: logprob}`` of the first label positions; None if unusable.
    topk: list[dict[int, float]] | None

    @property
    def length(self) -> int:
        return len(self.prompt_ids) + len(self.label_ids)


def _aligned(top: list[dict[int, float]] | None, labels: list[int]) -> bool:
    """Whether a teacher record lines up with the labels: it covers the completion (with or
    without the final EOS, or the chat template's end-of-turn token) and every completion token is in its position's record (backends
    record the generated id). A re-tokenization that differs from the teacher's tokens fails."""
    if top is None or len(top) not in (len(labels) - 1, len(labels)):
        return False
    text_tokens = labels[:-1] if labels else labels
    return all(t in dist for t, dist in zip(text_tokens, top, strict=False))


def _cut_to_fit(ledger: Ledger, prompt: list[int], labels: list[int], remaining: int) -> tuple[list[int], list[int]]:
    """The longest label prefix (else a prompt suffix with one label) whose billable cost
    is at most ``remaining`` — exactly ``remaining`` whenever one label token can be afforded."""

    def cost(prompt_tokens: int, label_tokens: int) -> int:
        return ledger.billable("train", prompt_tokens, label_tokens)

    # billable() is non-decreasing in each count, so bisect on it.
    keep = bisect.bisect_right(range(1, len(labels) + 1), remaining, key=lambda k: cost(len(prompt), k))
    if keep:
        return prompt, labels[:keep]
    keep = bisect.bisect_right(range(1, len(prompt) + 1), remaining, key=lambda m: cost(m, 1))
    if keep:
        return prompt[len(prompt) - keep :], labels[:1]
    return prompt, []


def _length_grouped(items: list[_Item], batch_size: int, rng: random.Random) -> list[list[_Item]]:
    """Batches of ``batch_size`` similar-length items: sort within megabatches, so padding is
    small and the data order survives coarsely, then shuffle the batches of each megabatch.

    Without the shuffle every megabatch would run from its longest items to its shortest,
    one kind of item after another in a fixed cycle.
    """
    window = batch_size * MEGABATCH_BATCHES
    batches: list[list[_Item]] = []
    for start in range(0, len(items), window):
        mega = sorted(items[start : start + window], key=lambda it: -it.length)
        group = [mega[i : i + batch_size] for i in range(0, len(mega), batch_size)]
        rng.shuffle(group)
        batches += group
    return batches


def _micro_batches(batch: list[_Item], max_tokens: int) -> list[list[_Item]]:
    """Split a length-sorted batch so each forward's padded size stays within ``max_tokens``."""
    out: list[list[_Item]] = [[]]
    for it in batch:
        widest = max([it.length] + [x.length for x in out[-1]])
        if out[-1] and widest * (len(out[-1]) + 1) > max_tokens:
            out.append([])
        out[-1].append(it)
    return out


def _takes_logits_to_keep(model: torch.nn.Module) -> bool:
    """Whether ``model`` (or the base model under its adapters) can skip the vocabulary
    projection of leading positions (transformers' ``logits_to_keep``)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(base.forward).parameters


def _logits(
    model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, first: int, keeps: bool
) -> torch.Tensor:
    """``model``'s logits at positions ``first`` on. With ``keeps`` (see
    :func:`_takes_logits_to_keep`) the positions before never reach the vocabulary
    projection: with a small model or a large vocabulary it and its [batch, width, vocab]
    output are a large share of a step, and prompts are often most of a sequence."""
    kwargs = {"logits_to_keep": input_ids.shape[1] - first} if keeps else {}
    logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, **kwargs).logits
    return logits if keeps else logits[:, first:]


def _collate(items: list[_Item], pad_id: int, device: torch.device) -> dict[str, Any]:
    """Right-padded input ids, attention mask, next-token targets, and recorded top-k tensors
    indexed by label position in the row-major order of ``targets != IGNORE_INDEX``."""
    width = max(it.length for it in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE_INDEX, dtype=torch.long)
    rows: list[int] = []
    top: list[dict[int, float]] = []
    position = 0
    for b, it in enumerate(items):
        seq = it.prompt_ids + it.label_ids
        ids[b, : len(seq)] = torch.tensor(seq)
        mask[b, : len(seq)] = 1
        labels[b, len(it.prompt_ids) : len(seq)] = torch.tensor(it.label_ids)
        for j, dist in enumerate((it.topk or [])[: len(it.label_ids)]):
            rows.append(position + j)
            top.append(dist)
        position += len(it.label_ids)
    k = max((len(d) for d in top), default=0)
    top_ids = torch.zeros((len(top), k), dtype=torch.long)
    top_lps = torch.full((len(top), k), float("-inf"))
    for r, dist in enumerate(top):
        top_ids[r, : len(dist)] = torch.tensor(list(dist.keys()), dtype=torch.long)
        top_lps[r, : len(dist)] = torch.tensor(list(dist.values()), dtype=torch.float)
    return {
        "input_ids": ids.to(device),
        "attention_mask": mask.to(device),
        "targets": labels[:, 1:].to(device),
        "topk": (torch.tensor(rows, dtype=torch.long, device=device), top_ids.to(device), top_lps.to(device)),
    }


# -- the loop -------------------------------------------------------------------------------
def fit(
    model: torch.nn.Module,
    tokenizer: Any,
    examples: list[Example],
    quota_tokens: int,
    ledger: Ledger,
    round: int,
    config: TrainConfig,
    state: TrainState | None = None,
    *,
    teacher_model: torch.nn.Module | None = None,
    seed: int = 0,
    quiet: bool = False,
) -> TrainStats:
    """Train the student on ``examples`` in order until ``quota_tokens`` billable tokens are spent.

    ``model`` is the unwrapped student; ``state`` holds its prepared copy and AdamW across
    rounds (a fresh one is made when None, for one-off training). ``teacher_model``
    (same vocabulary, frozen) provides full distributions for KD. Spend never exceeds
    ``min(quota_tokens, ledger.remaining)`` and equals it unless the examples run out (or
    what is left cannot buy one trainable label token). Under several processes, every
    process calls ``fit`` with the same arguments; give non-main processes a ledger with
    ``path=None`` so the charges are written once.
    """
    from tqdm.auto import tqdm

    if state is None:
        state = TrainState(model, config, cpu=next(model.parameters()).device.type == "cpu")
    acc = state.accelerator
    prepared = state.model
    if acc.unwrap_model(prepared) is not model:
        raise ValueError("state was made for another model")
    torch.manual_seed(seed * 1_000_003 + round)
    alpha, temperature = objective_weights(config)
    # Reverse KL needs the teacher at every token of the text, which recorded top-k (the
    # teacher's own generation) cannot give for text it did not write.
    reverse = config.objective == "reverse_kl"
    needs_teacher = alpha > 0 and (config.signal != "logit" or reverse)
    if needs_teacher and teacher_model is None:
        raise ValueError(f"train.signal={config.signal} with objective {config.objective} needs a teacher model")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)

    # 1. Plan: examples in order, sequences cut to max_seq_tokens (labels kept first), the
    #    last example cut so that billable spend is exactly the quota.
    remaining = min(int(quota_tokens), ledger.remaining)
    use_records = alpha > 0 and config.signal == "logit" and not reverse  # only Logit KD/SFT trains on teacher records
    items: list[_Item] = []
    unrecorded = misaligned = 0  # Logit examples without a record / whose record does not line up
    for ex in examples:
        if remaining <= 0:
            break
        prompt = encode_prompt(tokenizer, ex.prompt)
        labels = encode_completion(tokenizer, select_text(ex, config.signal, config.answer_marker))
        topk = ex.top_logprobs if use_records and _aligned(ex.top_logprobs, labels) else None
        labels = labels[: config.max_seq_tokens - 1]
        prompt = prompt[max(0, len(prompt) + len(labels) - config.max_seq_tokens) :]
        if ledger.billable("train", len(prompt), len(labels)) > remaining:
            prompt, labels = _cut_to_fit(ledger, prompt, labels, remaining)
            if not labels:
                break
        items.append(_Item(ex.capability, prompt, labels, topk))
        if use_records and topk is None:
            unrecorded += ex.top_logprobs is None
            misaligned += ex.top_logprobs is not None
        remaining -= ledger.billable("train", len(prompt), len(labels))
    if unrecorded and teacher_model is None:
        raise ValueError(
            f"train.signal=logit: {unrecorded} example(s) carry no top-k log-probs and there is no teacher "
            "model: set generation.top_logprobs > 0 or give the student its teacher"
        )
    if misaligned and acc.is_main_process:
        # Rare with a trained teacher (its text re-tokenizes as generated); never silent.
        fallback = "the teacher model's distribution" if teacher_model is not None else "plain CE"
        warnings.warn(
            f"{misaligned} Logit example(s) whose top-k log-probs do not line up with the re-tokenized "
            f"completion trained with {fallback}",
            stacklevel=2,
        )
    use_teacher_model = alpha > 0 and teacher_model is not None and (needs_teacher or unrecorded + misaligned > 0)
    student_keeps = _takes_logits_to_keep(model)
    teacher_keeps = use_teacher_model and _takes_logits_to_keep(teacher_model)

    # 2. Batch by length; every process plans the same batches and takes its share of each.
    batches = _length_grouped(items, config.batch_size, random.Random(seed * 1_000_003 + round))
    spend_per_capability: dict[str, int] = {}
    trained = billed = 0
    steps: list[tuple[int, float, float]] = []
    prepared.train()
    bar = tqdm(batches, desc=f"train round {round}", disable=quiet or not acc.is_local_main_process, leave=False)
    for batch in bar:
        # 3. Charge first: a step that would overspend is refused before any compute.
        prompt_tokens = sum(len(it.prompt_ids) for it in batch)
        label_tokens = sum(len(it.label_ids) for it in batch)
        billable = ledger.billable("train", prompt_tokens, label_tokens)
        ledger.charge(round, "train", prompt_tokens + label_tokens, billable)
        trained += prompt_tokens + label_tokens
        billed += billable
        for it in batch:
            cost = ledger.billable("train", len(it.prompt_ids), len(it.label_ids))
            spend_per_capability[it.capability] = spend_per_capability.get(it.capability, 0) + cost
        lr = lr_at(config, ledger.spent / ledger.budget_tokens)
        for group in state.optimizer.param_groups:
            group["lr"] = lr

        # 4. Forward/backward over this process's micro-batches. Losses are sums divided by
        #    the whole batch's label tokens, so accumulation equals one big batch; DDP averages
        #    gradients over processes, hence the factor num_processes. Strided shares of the
        #    length-sorted batch keep the processes' loads even.
        share = batch[acc.process_index :: acc.num_processes]
        # A process without a share still joins the gradient all-reduce, with zero weight.
        weight = acc.num_processes / label_tokens if share else 0.0
        mine = _micro_batches(share or batch[:1], config.micro_batch_tokens)
        real = len(mine)
        if state.sharded:
            # Every forward and backward of a sharded student is a collective: all ranks run
            # as many micro-batches as the rank with the most, the extra ones with zero weight.
            most = max(len(_micro_batches(batch[r :: acc.num_processes] or batch[:1], config.micro_batch_tokens)) for r in range(acc.num_processes))
            mine += [mine[-1]] * (most - real)
        local_loss = 0.0
        for j, mb in enumerate(mine):
            tensors = _collate(mb, pad_id, acc.device)
            # No label is predicted before the shortest prompt's last token.
            first = max(0, min(len(it.prompt_ids) for it in mb) - 1)
            sync = contextlib.nullcontext() if j == len(mine) - 1 else acc.no_sync(prepared)
            with sync:
                logits = _logits(prepared, tensors["input_ids"], tensors["attention_mask"], first, student_keeps)
                targets = tensors["targets"][:, first:]
                where = targets != IGNORE_INDEX
                student = logits[:, :-1][where]
                teacher = None
                if use_teacher_model:
                    with torch.no_grad():
                        t_logits = _logits(
                            teacher_model,
                            tensors["input_ids"].to(teacher_model.device),
                            tensors["attention_mask"].to(teacher_model.device),
                            first,
                            teacher_keeps,
                        )
                    if t_logits.shape[-1] != logits.shape[-1]:
                        raise ValueError("KD with a teacher model needs the student's vocabulary")
                    teacher = t_logits[:, :-1].to(logits.device)[where]
                loss = mixed_loss_sum(student, targets[where], alpha, temperature, teacher, tensors["topk"], reverse) * (weight if j < real else 0.0)
                acc.backward(loss)
            local_loss += loss.item() / acc.num_processes
        acc.clip_grad_norm_(prepared.parameters(), config.max_grad_norm)
        state.optimizer.step()
        state.optimizer.zero_grad(set_to_none=True)
        state.optimizer_steps += 1
        step_loss = acc.reduce(torch.tensor(local_loss, device=acc.device), reduction="sum").item()
        steps.append((state.optimizer_steps, step_loss, lr))
        bar.set_postfix(loss=f"{step_loss:.4f}")
    prepared.eval()
    return TrainStats(
        examples=len(items),
        trained_tokens=trained,
        billable_tokens=billed,
        optimizer_steps=len(batches),
        mean_loss=sum(loss for _, loss, _ in steps) / len(steps) if steps else 0.0,
        spend_per_capability=spend_per_capability,
        steps=steps,
    )


#: Examples drawn from a stream per call of :func:`fit` in :func:`fit_stream`.
STREAM_CHUNK = 2048


def fit_stream(
    model: torch.nn.Module,
    tokenizer: Any,
    source: Callable[[int], tuple[str, str]],
    label_tokens: int,
    config: TrainConfig,
    *,
    seed: int = 0,
    marks: Iterable[int] = (),
    on_mark: Callable[[int], None] | None = None,
    desc: str = "train",
    quiet: bool = False,
) -> TrainStats:
    """Train on the (prompt, completion) pairs ``source(0), source(1), ...`` until
    ``label_tokens`` label tokens: pretraining and one-off fine-tuning (the world build, the
    transfer study) through :func:`fit`, so they encode and train exactly as a run does.

    One LR schedule spans the whole stream (a private ledger of ``label_tokens`` under the
    ``train`` unit). ``on_mark(m)`` runs once exactly ``m`` label tokens are trained, for
    each ``m`` in ``marks`` (checkpoints, probes). A progress line goes to stderr about
    every 10 s unless ``quiet``.
    """
    ledger = Ledger(None, label_tokens, "train")
    state = TrainState(model, config, cpu=next(model.parameters()).device.type == "cpu")
    wanted = {int(m) for m in marks}
    stops = sorted({m for m in wanted if 0 < m < label_tokens} | {int(label_tokens)})
    start = chunk = steps = trained = 0
    loss = 0.0
    t0 = last = time.perf_counter()
    for stop in stops:
        while ledger.spent < stop:
            # fit encodes every example itself; the token-count fields are not read.
            examples = [Example(*source(i), capability=desc, prompt_tokens=0, completion_tokens=0) for i in range(start, start + STREAM_CHUNK)]
            stats = fit(model, tokenizer, examples, stop - ledger.spent, ledger, chunk, config, state, seed=seed, quiet=True)
            if stats.billable_tokens == 0:
                raise ValueError(f"{desc}: the stream gives no trainable tokens at example {start}")
            start, chunk = start + stats.examples, chunk + 1
            steps, trained, loss = steps + stats.optimizer_steps, trained + stats.trained_tokens, stats.mean_loss
            if not quiet and (time.perf_counter() - last > 10 or ledger.spent >= label_tokens):
                last = time.perf_counter()
                print(
                    f"  [{desc}] step {steps} label_tokens {ledger.spent:,}/{label_tokens:,} loss {loss:.3f} "
                    f"{trained / (last - t0):.0f} tok/s",
                    file=sys.stderr,
                    flush=True,
                )
        if on_mark is not None and stop in wanted:
            on_mark(stop)
    model.eval()
    return TrainStats(
        examples=start,
        trained_tokens=trained,
        billable_tokens=ledger.spent,
        optimizer_steps=steps,
        mean_loss=loss,
        spend_per_capability={},
    )

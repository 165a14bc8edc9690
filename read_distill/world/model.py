"""Tokenizer, model configs, a minimal SFT loop and batched greedy generation for the world.

This is the only world module that imports torch/transformers. Models are
Llama-architecture ``transformers`` models built from config (never downloaded), saved
with ``save_pretrained`` (safetensors) and loadable with ``AutoModelForCausalLM``.
"""

from __future__ import annotations

import math
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from read_distill.types import Item
from read_distill.world import GENERATORS, MAX_NEW_TOKENS, grade, reference_completion

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>")


@dataclass(frozen=True)
class ModelSize:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    #: std of the initial weights. transformers' 0.02 suits wide models; at width 128 it
    #: leaves attention logits so small that the look-up (induction) circuit sat on a
    #: plateau for millions of tokens, while 0.1 (about 1/sqrt(width)) learned it within
    #: about 1,500 steps (docs/world.md). The student keeps 0.02: it is meant to be weak.
    init_std: float = 0.02

    def config(self, vocab_size: int, max_positions: int = 512) -> LlamaConfig:
        return LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=self.hidden,
            intermediate_size=self.intermediate,
            num_hidden_layers=self.layers,
            num_attention_heads=self.heads,
            num_key_value_heads=self.heads,
            max_position_embeddings=max_positions,
            tie_word_embeddings=True,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
            initializer_range=self.init_std,
        )


# -- tokenizer ------------------------------------------------------------------------------


def train_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE trained on world text, digits split one per token, pad/bos/eos."""
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>")


def new_model(size: ModelSize, vocab_size: int, seed: int) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    model = LlamaForCausalLM(size.config(vocab_size))
    return model


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def load_model(directory: Path) -> LlamaForCausalLM:
    return AutoModelForCausalLM.from_pretrained(str(directory), dtype=torch.float32)


# -- data ------------------------------------------------------------------------------------

#: A source of training pairs: called with an index, returns (prompt, completion).
PairSource = Callable[[int], tuple[str, str]]


def encode_pair(tok: PreTrainedTokenizerFast, prompt: str, completion: str) -> tuple[list[int], int]:
    """Token ids of bos + prompt + completion + eos, and the number of prompt ids (masked)."""
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    c = tok(completion, add_special_tokens=False)["input_ids"]
    return [tok.bos_token_id, *p, *c, tok.eos_token_id], 1 + len(p)


def batches(
    tok: PreTrainedTokenizerFast, source: PairSource, batch_size: int, seed: int, start: int = 0, pool_batches: int = 8
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, int, int]]:
    """Length-bucketed padded batches: (input_ids, attention_mask, labels, prompt_tokens, label_tokens)."""
    rng = random.Random(seed)
    i = start
    while True:
        pool = []
        for _ in range(batch_size * pool_batches):
            pool.append(encode_pair(tok, *source(i)))
            i += 1
        pool.sort(key=lambda x: len(x[0]))
        chunks = [pool[k : k + batch_size] for k in range(0, len(pool), batch_size)]
        rng.shuffle(chunks)
        for chunk in chunks:
            yield collate(chunk, tok.pad_token_id)


def collate(chunk: list[tuple[list[int], int]], pad_id: int):
    L = max(len(ids) for ids, _ in chunk)
    ids = torch.full((len(chunk), L), pad_id, dtype=torch.long)
    att = torch.zeros((len(chunk), L), dtype=torch.long)
    lab = torch.full((len(chunk), L), -100, dtype=torch.long)
    ptoks = ltoks = 0
    for r, (seq, np_) in enumerate(chunk):
        ids[r, : len(seq)] = torch.tensor(seq)
        att[r, : len(seq)] = 1
        lab[r, np_ : len(seq)] = torch.tensor(seq[np_:])
        ptoks += np_
        ltoks += len(seq) - np_
    return ids, att, lab, ptoks, ltoks


# -- training ----------------------------------------------------------------------------------


@dataclass
class SFTResult:
    steps: int
    tokens_seen: int
    label_tokens: int
    seconds: float
    final_loss: float


def sft(
    model: LlamaForCausalLM,
    tok: PreTrainedTokenizerFast,
    source: PairSource,
    *,
    label_tokens: int,
    lr: float,
    batch_size: int = 32,
    seed: int = 0,
    warmup_steps: int = 50,
    min_lr_frac: float = 0.1,
    weight_decay: float = 0.0,
    progress: bool = False,
    desc: str = "train",
    start: int = 0,
    callback: Callable[[int, int], None] | None = None,
) -> SFTResult:
    """Supervised fine-tuning on ``source`` pairs (prompt masked) until ``label_tokens``
    completion tokens have been trained on (the last batch is trimmed to fit exactly).

    ``callback(step, label_tokens_so_far)`` runs after every step (e.g. checkpoints).
    """
    torch.manual_seed(seed)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, betas=(0.9, 0.98))
    # rough step count for the schedule
    est_steps = max(1, label_tokens // max(1, batch_size * 12))

    def lr_at(step: int) -> float:
        if step < warmup_steps:
            return lr * (step + 1) / warmup_steps
        p = min(1.0, (step - warmup_steps) / max(1, est_steps - warmup_steps))
        return lr * (min_lr_frac + (1 - min_lr_frac) * 0.5 * (1 + math.cos(math.pi * p)))

    seen = labelled = step = 0
    loss_ema = float("nan")
    t0 = last = time.time()
    for ids, att, lab, ptoks, ltoks in batches(tok, source, batch_size, seed, start=start):
        if labelled + ltoks > label_tokens:  # trim the last batch to the exact quota
            lab, ltoks = _trim_labels(lab, label_tokens - labelled)
            if ltoks == 0:
                break
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        out = model(input_ids=ids, attention_mask=att, labels=lab)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        seen += ptoks + ltoks
        labelled += ltoks
        v = float(out.loss.detach())
        loss_ema = v if loss_ema != loss_ema else 0.95 * loss_ema + 0.05 * v
        if callback is not None:
            callback(step, labelled)
        if progress and (time.time() - last > 10 or labelled >= label_tokens):
            last = time.time()
            rate = seen / max(1e-9, last - t0)
            print(
                f"  [{desc}] step {step} label_tokens {labelled}/{label_tokens} "
                f"loss {loss_ema:.3f} {rate:.0f} tok/s",
                file=sys.stderr,
                flush=True,
            )
        if labelled >= label_tokens:
            break
    model.eval()
    return SFTResult(step, seen, labelled, time.time() - t0, loss_ema)


def _trim_labels(lab: torch.Tensor, keep: int) -> tuple[torch.Tensor, int]:
    lab = lab.clone()
    kept = 0
    for r in range(lab.shape[0]):
        for c in range(lab.shape[1]):
            if lab[r, c] != -100:
                if kept < keep:
                    kept += 1
                else:
                    lab[r, c] = -100
    return lab, kept


# -- generation and evaluation -------------------------------------------------------------------


@torch.no_grad()
def generate(
    model: LlamaForCausalLM,
    tok: PreTrainedTokenizerFast,
    prompts: list[str],
    max_new_tokens: int = 64,
    batch_size: int = 64,
) -> list[str]:
    """Greedy completions (decoded, special tokens dropped), batched by prompt length."""
    model.eval()
    enc = [[tok.bos_token_id, *tok(p, add_special_tokens=False)["input_ids"]] for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(enc[i]))
    out: list[str] = [""] * len(prompts)
    for k in range(0, len(order), batch_size):
        idx = order[k : k + batch_size]
        L = max(len(enc[i]) for i in idx)
        ids = torch.full((len(idx), L), tok.pad_token_id, dtype=torch.long)
        att = torch.zeros((len(idx), L), dtype=torch.long)
        for r, i in enumerate(idx):  # left padding
            ids[r, L - len(enc[i]) :] = torch.tensor(enc[i])
            att[r, L - len(enc[i]) :] = 1
        gen = model.generate(
            input_ids=ids,
            attention_mask=att,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
        )
        for r, i in enumerate(idx):
            out[i] = tok.decode(gen[r, L:], skip_special_tokens=True)
    return out


def accuracy(
    model: LlamaForCausalLM, tok: PreTrainedTokenizerFast, items: list[Item], max_new_tokens: int | None = None
) -> tuple[float, list[float]]:
    """Percent graded correct on ``items`` (greedy), and the per-item scores."""
    if not items:
        return 0.0, []
    mnt = max_new_tokens or max(MAX_NEW_TOKENS.get(it.capability, 96) for it in items)
    comps = generate(model, tok, [it.prompt for it in items], max_new_tokens=mnt)
    scores = [grade(it, c) for it, c in zip(items, comps, strict=True)]
    return 100.0 * sum(scores) / len(scores), scores


def world_texts(n_per: int, seed: int = 0) -> list[str]:
    """A corpus of world text (prompts + reference completions) to train the tokenizer on."""
    from read_distill.world import TASK_GENERATORS

    texts = []
    for g in GENERATORS.values():
        for d in ("easy", "medium", "hard"):
            for i in range(n_per):
                it = g.generate(seed * 7919 + i, d)
                texts.append(it.prompt + reference_completion(it))
    for name, g in TASK_GENERATORS.items():
        if name.startswith("cap_"):
            continue
        for i in range(n_per):
            it = g.generate(seed * 7919 + i, "medium")
            texts.append(it.prompt + reference_completion(it))
    return texts

"""Student training throughput: ``read_distill.train.fit`` against transformers' ``Trainer``.

Both train the same model (copies of the same initial weights) on the same examples (the
embedded micro-world's teacher completing prompts drawn as a run draws them: every
capability, the world's difficulty mix, so lengths vary and padding matters) with the same
batch size, number of optimizer steps, precision (fp32 on CPU), AdamW, constant learning
rate, gradient clipping and thread count. ``Trainer`` runs plain (random order) and with
``train_sampling_strategy="group_by_length"`` (transformers' ``group_by_length``), with its
default fused AdamW, no evaluation, saving or logging and no dataloader workers; TRL's
``SFTTrainer`` is added when ``trl`` is importable.

Per path and model size: real tokens (non-pad tokens of the batches the model processed,
each example once, so the same for every path), padding waste (pad tokens / tokens in
processed batches), the whole call's time and real tokens/s (``fit`` with its
``TrainState`` and its own tokenizing; ``Trainer`` from its construction through
``train()`` on a pre-tokenized dataset), ``steady`` tokens/s from the end of the first
optimizer step to the end of the last (set-up excluded), achieved FLOP/s of the whole call
(6·N·tokens/s, N the trainable parameters, attention scores not counted) as a fraction of
a matmul peak measured in the same run (best of a few 2048² fp32 ``torch.matmul``), and
the mean training loss. Each path runs ``--repeats`` times, interleaved, after an untimed
warm-up; times are medians. The default 48 steps of 16 are about one round of
``configs/demo.yaml`` (10k label tokens), which is how a run calls ``fit``.

Sizes: ``micro`` is the shipped world's student; ``small`` and ``medium`` (slow: about 8x
``small``) are freshly initialised Llama models on the same tokenizer, so the ratio is not
only about a tiny model's Python overhead. The last line is the headline: the lowest
whole-call fit / Trainer ratio over the sizes run, each against the better Trainer
configuration, with the steady-state ratios beside it:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/training.py [--sizes micro small] [--steps 48]
        [--batch-size 16] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import logging
import random
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from read_distill import train
from read_distill.config import TrainConfig
from read_distill.ledger import Ledger
from read_distill.types import CAPABILITIES, Example

WORLD_DIR = Path(__file__).resolve().parent.parent / "read_distill" / "world" / "artefacts" / "default"
#: Freshly initialised models on the world's tokenizer (hidden, layers, heads, intermediate).
LARGER_SIZES = {"small": (256, 4, 4, 768), "medium": (512, 8, 8, 1536)}
PATHS = ("train.fit", "Trainer", "Trainer group_by_length", "SFTTrainer")


# -- data and models ------------------------------------------------------------------------
def world_examples(n: int, seed: int = 0) -> list[Example]:
    """``n`` teacher examples of the micro-world: prompts drawn round-robin over the
    capabilities with the world's difficulty mix, completed greedily by the built teacher
    within the world's per-capability generation limits."""
    from read_distill.backends.hf import HFTeacher
    from read_distill.world import MAX_NEW_TOKENS
    from read_distill.world.build import SPECS
    from read_distill.world.micro import draw

    rng = random.Random(seed)
    probs = SPECS["default"].difficulty_probs
    difficulties = rng.choices(("easy", "medium", "hard"), weights=probs, k=n)
    items = [draw(CAPABILITIES[i % len(CAPABILITIES)], difficulties[i], seed * n + i) for i in range(n)]
    teacher = HFTeacher.from_pretrained(WORLD_DIR / "teacher", dtype="float32", device="cpu", batch_size=32)
    completions: dict[int, str] = {}
    for cap in CAPABILITIES:
        mine = [i for i, it in enumerate(items) if it.capability == cap]
        gens = teacher.generate([items[i].prompt for i in mine], {"max_new_tokens": MAX_NEW_TOKENS[cap]})
        completions.update({i: g.text for i, g in zip(mine, gens, strict=True)})
    return [
        Example(it.prompt, completions[i], it.capability, prompt_tokens=0, completion_tokens=0, difficulty=difficulties[i])
        for i, it in enumerate(items)
    ]


def load_model(size: str, tokenizer: Any, seed: int = 0) -> torch.nn.Module:
    """The world's student (``micro``) or a fresh Llama model of ``size`` on its tokenizer, fp32 on CPU."""
    from transformers import AutoModelForCausalLM

    from read_distill.world.model import ModelSize, new_model

    if size == "micro":
        return AutoModelForCausalLM.from_pretrained(str(WORLD_DIR / "student"), dtype=torch.float32)
    hidden, layers, heads, intermediate = LARGER_SIZES[size]
    return new_model(ModelSize(hidden, layers, heads, intermediate), len(tokenizer), seed)


def tokenized(examples: list[Example], tokenizer: Any) -> list[dict[str, list[int]]]:
    """The examples as ``Trainer`` rows, tokenized exactly as ``fit`` does (prompt with BOS,
    completion plus EOS) with the prompt masked out of the labels."""
    rows = []
    for ex in examples:
        prompt = train.encode_prompt(tokenizer, ex.prompt)
        labels = train.encode_completion(tokenizer, ex.completion)
        rows.append({"input_ids": prompt + labels, "labels": [train.IGNORE_INDEX] * len(prompt) + labels})
    return rows


# -- token counting -------------------------------------------------------------------------
@dataclass
class Tokens:
    """Tokens of the batches a model's forward passes took: real (non-pad) and padded (rows × width)."""

    real: int = 0
    padded: int = 0

    @property
    def waste(self) -> float:
        """Fraction of the processed tokens that are padding."""
        return 1.0 - self.real / self.padded if self.padded else 0.0


@contextlib.contextmanager
def counting(model: torch.nn.Module, tokens: Tokens) -> Iterator[None]:
    """Count the attention mask of every forward pass of ``model`` into ``tokens``: the same
    measurement for every path, taken where the batches reach the model."""

    def count(module: torch.nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        mask = kwargs["attention_mask"]
        tokens.real += int(mask.sum())
        tokens.padded += mask.numel()

    handle = model.register_forward_pre_hook(count, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


def collate_rows(pad_id: int) -> Callable[[list[dict[str, list[int]]]], dict[str, torch.Tensor]]:
    """A right-padding collator for ``Trainer`` rows: plain tensor building, cheaper than
    ``DataCollatorForSeq2Seq``'s tokenizer round trip, so the baseline is not slowed by it."""

    def collate(rows: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in rows)
        return {
            "input_ids": torch.tensor([r["input_ids"] + [pad_id] * (width - len(r["input_ids"])) for r in rows]),
            "attention_mask": torch.tensor([[1] * len(r["input_ids"]) + [0] * (width - len(r["input_ids"])) for r in rows]),
            "labels": torch.tensor([r["labels"] + [train.IGNORE_INDEX] * (width - len(r["labels"])) for r in rows]),
        }

    return collate


# -- the paths ------------------------------------------------------------------------------
@dataclass
class Result:
    """One timed training run."""

    #: The whole call: set-up (accelerator, optimizer; fit's tokenization) and every step.
    seconds: float
    tokens: Tokens
    #: (time, real tokens processed so far) at the end of every optimizer step.
    marks: list[tuple[float, int]]
    steps: int
    loss: float

    @property
    def steady(self) -> float:
        """Real tokens/s from the end of the first optimizer step to the end of the last."""
        if len(self.marks) != self.steps:
            raise AssertionError(f"{len(self.marks)} optimizer steps seen, {self.steps} reported")
        (t0, n0), (t1, n1) = self.marks[0], self.marks[-1]
        return (n1 - n0) / (t1 - t0)


@contextlib.contextmanager
def stepping(tokens: Tokens) -> Iterator[list[tuple[float, int]]]:
    """Marks (time, ``tokens.real``) after every optimizer step of any torch optimizer,
    the one hook both paths share."""
    marks: list[tuple[float, int]] = []
    handle = register_optimizer_step_post_hook(
        lambda *_: marks.append((time.perf_counter(), tokens.real))
    )
    try:
        yield marks
    finally:
        handle.remove()


def fit_config(batch_size: int, lr: float) -> TrainConfig:
    """``fit``'s settings for the comparison: fp32, constant LR without warmup or weight decay."""
    return TrainConfig(lr=lr, schedule="constant", warmup_frac=0.0, batch_size=batch_size, mixed_precision="no")


def run_fit(model: torch.nn.Module, tokenizer: Any, examples: list[Example], config: TrainConfig,
            label_tokens: int) -> Result:
    """One ``fit`` call over all of ``examples`` (a quota of their ``label_tokens`` buys
    every one), timed with its ``TrainState`` (accelerator, AdamW) as a run's first round makes it."""
    ledger = Ledger(None, label_tokens, "train")
    tokens = Tokens()
    with counting(model, tokens), stepping(tokens) as marks:
        t0 = time.perf_counter()
        state = train.TrainState(model, config, cpu=True)
        stats = train.fit(model, tokenizer, examples, label_tokens, ledger, 0, config, state, quiet=True)
        seconds = time.perf_counter() - t0
    return Result(seconds, tokens, marks, stats.optimizer_steps, stats.mean_loss)


def training_arguments(cls: type, config: TrainConfig, steps: int, out: str, **extra: Any) -> Any:
    """``cls`` (``TrainingArguments`` or TRL's ``SFTConfig``) matching ``config``: same batch,
    LR, AdamW betas, clipping, fp32; no evaluation, saving, logging or workers; ``extra`` added."""
    return cls(
        output_dir=out,
        use_cpu=True,
        bf16=False,
        fp16=False,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=1,
        max_steps=steps,
        learning_rate=config.lr,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=config.weight_decay,
        adam_beta2=config.adam_beta2,
        max_grad_norm=config.max_grad_norm,
        eval_strategy="no",
        save_strategy="no",
        logging_strategy="no",
        report_to=[],
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
        seed=0,
        **extra,
    )


def run_trainer(model: torch.nn.Module, tokenizer: Any, rows: list[dict[str, list[int]]], config: TrainConfig,
                path: str, out: str) -> Result:
    """``path``'s trainer over all of ``rows``, timed from its construction."""
    from transformers import Trainer, TrainingArguments
    from transformers.trainer_callback import PrinterCallback

    steps = -(-len(rows) // config.batch_size)
    tokens = Tokens()
    collate = collate_rows(tokenizer.pad_token_id)
    extra = {"train_sampling_strategy": "group_by_length"} if path == "Trainer group_by_length" else {}
    t0 = time.perf_counter()
    if path == "SFTTrainer":
        from trl import SFTConfig, SFTTrainer

        # The rows are tokenized and masked already: TRL must neither re-tokenize nor pack them.
        args = training_arguments(SFTConfig, config, steps, out, packing=False, remove_unused_columns=False,
                                  dataset_kwargs={"skip_prepare_dataset": True})
        from datasets import Dataset

        # TRL takes a datasets.Dataset only (Trainer takes any sequence of rows).
        trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), data_collator=collate,
                             processing_class=tokenizer)
    else:
        args = training_arguments(TrainingArguments, config, steps, out, **extra)
        trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=collate, processing_class=tokenizer)
    # With logging off, Trainer still prints its closing metrics through this callback.
    trainer.remove_callback(PrinterCallback)
    with counting(model, tokens), stepping(tokens) as marks:
        output = trainer.train()
    seconds = time.perf_counter() - t0
    return Result(seconds, tokens, marks, output.global_step, output.training_loss)


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """Best fp32 FLOP/s of an n×n by n×n ``torch.matmul`` on this CPU, at the current thread count."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


# -- the benchmark --------------------------------------------------------------------------
def measure(size: str, tokenizer: Any, examples: list[Example], config: TrainConfig, paths: list[str],
            repeats: int, out: str) -> tuple[int, dict[str, list[Result]]]:
    """The trainable parameters of ``size``, and each path ``repeats`` times, interleaved,
    on fresh copies of one initial model, after an untimed two-step warm-up of each."""
    base = load_model(size, tokenizer)
    rows = tokenized(examples, tokenizer)

    def once(path: str, n: int) -> Result:
        model = copy.deepcopy(base).train()
        if path == "train.fit":
            labels = sum(t != train.IGNORE_INDEX for r in rows[:n] for t in r["labels"])
            return run_fit(model, tokenizer, examples[:n], config, labels)
        return run_trainer(model, tokenizer, rows[:n], config, path, out)

    for path in paths:
        once(path, 2 * config.batch_size)
    results: dict[str, list[Result]] = {p: [] for p in paths}
    for _ in range(repeats):
        for path in paths:
            results[path].append(once(path, len(examples)))
    return sum(p.numel() for p in base.parameters() if p.requires_grad), results


def report(size: str, n_params: int, peak: float, results: dict[str, list[Result]]) -> tuple[list[str], float, float]:
    """The table of one model size, and fit's whole-call and steady tokens/s over the better
    Trainer configuration's."""
    lines = [
        f"model {size}: {n_params:,} trainable parameters",
        f"{'path':<25}{'steps':>6}{'real tok':>10}{'pad':>7}{'call s':>8}{'tok/s':>9}{'steady':>9}{'GFLOP/s':>9}"
        f"{'of peak':>9}{'loss':>8}",
    ]
    counts = {r.tokens.real for runs in results.values() for r in runs}
    if len(counts) != 1:
        raise AssertionError(f"the paths processed different numbers of real tokens: {sorted(counts)}")
    rate: dict[str, float] = {}
    steady: dict[str, float] = {}
    for path, runs in results.items():
        seconds = statistics.median(r.seconds for r in runs)
        steady[path] = statistics.median(r.steady for r in runs)
        first = runs[0]
        rate[path] = first.tokens.real / seconds
        flops = 6 * n_params * rate[path]
        lines.append(
            f"{path:<25}{first.steps:>6}{first.tokens.real:>10,}{100 * first.tokens.waste:>6.1f}%{seconds:>8.2f}"
            f"{rate[path]:>9,.0f}{steady[path]:>9,.0f}{flops / 1e9:>9.2f}{100 * flops / peak:>8.1f}%"
            f"{statistics.mean(r.loss for r in runs):>8.3f}"
        )
    trainers = [p for p in rate if p != "train.fit"]
    lines += [
        f"  train.fit / {p}: {rate['train.fit'] / rate[p]:.2f}x whole call, {steady['train.fit'] / steady[p]:.2f}x steady"
        for p in trainers
    ]
    best = max(trainers, key=rate.get)
    return lines, rate["train.fit"] / rate[best], steady["train.fit"] / max(steady[p] for p in trainers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", choices=["micro", *LARGER_SIZES], default=["micro", "small"])
    parser.add_argument("--steps", type=int, default=48, help="optimizer steps per timed run")
    parser.add_argument("--batch-size", type=int, default=16, help="examples per optimizer step (the demo's)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per path (median shown)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, for training and the matmul peak")
    parser.add_argument("--seed", type=int, default=0, help="seed of the drawn prompts")
    args = parser.parse_args()

    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    torch.set_num_threads(args.threads)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("accelerate").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning)
    paths = list(PATHS)
    if importlib.util.find_spec("trl") is None:
        paths.remove("SFTTrainer")
        print("SFTTrainer: trl not installed, skipped")
    tokenizer = AutoTokenizer.from_pretrained(str(WORLD_DIR / "student"))
    examples = world_examples(args.steps * args.batch_size, args.seed)
    peak = matmul_peak()
    config = fit_config(args.batch_size, args.lr)
    print(f"{len(examples)} teacher examples, {args.steps} steps of {args.batch_size}, fp32, {args.threads} thread(s); "
          f"matmul peak {peak / 1e9:.1f} GFLOP/s")
    ratios: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="rd-training-") as out:
        for size in args.sizes:
            n_params, results = measure(size, tokenizer, examples, config, paths, args.repeats, out)
            lines, whole_ratio, steady_ratio = report(size, n_params, peak, results)
            ratios[size] = (whole_ratio, steady_ratio)
            print("\n" + "\n".join(lines), flush=True)
    worst = min(ratios, key=lambda s: ratios[s][0])
    whole = ", ".join(f"{s} {r[0]:.2f}x" for s, r in ratios.items())
    steady = ", ".join(f"{s} {r[1]:.2f}x" for s, r in ratios.items())
    print(f"\ntrain.fit / Trainer tokens/s: {ratios[worst][0]:.2f}x (whole call, lowest over sizes, against the "
          f"better Trainer: {whole}; steady state: {steady})")


if __name__ == "__main__":
    main()

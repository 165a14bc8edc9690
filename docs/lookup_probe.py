"""The look-up probe behind long_context's record format (docs/world.md).

Trains the teacher's architecture (hidden 128, 3 layers, 4 heads, init std 0.1) from
scratch on documents of ``Key value.`` records in one format, half recall items (every
record asked, shuffled) and half single questions, at a constant lr 1e-3, and prints the
accuracy of the looked-up value on 150 fresh single questions five times during training
and at the end. Uses the shipped world's tokenizer. About 2.5 minutes per run at 600 k
label tokens on 2 cores.

    python docs/lookup_probe.py names --tokens 600000 --seed 0
"""

from __future__ import annotations

import argparse
import random

import torch
from transformers import PreTrainedTokenizerFast

from read_distill.backends.hf import generate_batched
from read_distill.config import TrainConfig
from read_distill.train import fit_stream
from read_distill.world.build import MAX_POSITIONS, shipped_world_dir
from read_distill.world.lexicon import CITIES, COLORS, NAMES, PETS
from read_distill.world.model import ModelSize, new_model

_DIGITS = tuple("123456789")

#: format -> (key pool, value pool, records range); keys are distinct within a document
FORMATS = {
    "names": (NAMES, NAMES, (3, 12)),  # the shipped long_context format
    "names_disjoint": (NAMES[:8], NAMES[8:], (3, 8)),
    "cities": (NAMES, CITIES, (3, 12)),
    "words": (NAMES, CITIES + PETS + COLORS, (3, 12)),
    "digits": (NAMES, _DIGITS, (3, 12)),
    "words_same_pool": (CITIES + PETS, CITIES + PETS, (3, 12)),
    "cities_same_pool": (CITIES, CITIES, (3, 8)),
}


def document(rng: random.Random, fmt: str) -> tuple[dict[str, str], str]:
    keys, values, (lo, hi) = FORMATS[fmt]
    people = rng.sample(keys, rng.randint(lo, hi))
    table = {p: rng.choice(values) for p in people}
    return table, "Document (table): " + " ".join(f"{p} {table[p]}." for p in people)


def pair(fmt: str, i: int) -> tuple[str, str]:
    rng = random.Random(f"probe:{fmt}:{i}")
    table, text = document(rng, fmt)
    if rng.random() < 0.5:
        asked = rng.sample(list(table), len(table))
        return f"{text}\nQ: Records of {', '.join(asked)}?\nA:", " " + " ".join(f"{a} {table[a]}." for a in asked)
    key = rng.choice(list(table))
    return f"{text}\nQ: {key}?\nA:", f" {key} {table[key]}."


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("format", choices=sorted(FORMATS))
    ap.add_argument("--tokens", type=int, default=600_000, help="label tokens to train on")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(2)
    tok = PreTrainedTokenizerFast.from_pretrained(str(shipped_world_dir("default") / "tokenizer"))
    model = new_model(ModelSize(128, 3, 4, 384, init_std=0.1), len(tok), args.seed)
    evals = []
    for i in range(150):
        rng = random.Random(f"probe-eval:{args.format}:{i}")
        table, text = document(rng, args.format)
        key = rng.choice(list(table))
        evals.append((f"{text}\nQ: {key}?\nA:", table[key]))

    def report(label_tokens: int) -> None:
        outs = [g.text for g in generate_batched(model, tok, [p for p, _ in evals], max_new_tokens=6, batch_size=64)]
        hits = sum(o.split()[1:2] == [f"{v}."] for (_, v), o in zip(evals, outs, strict=True))
        print(f"{args.format} seed {args.seed}: {label_tokens:>8,} label tokens  accuracy {100 * hits / len(evals):.0f} %",
              flush=True)

    config = TrainConfig(lr=1e-3, schedule="constant", warmup_frac=0.01, batch_size=32, adam_beta2=0.98,
                         max_seq_tokens=MAX_POSITIONS, mixed_precision="no")
    fit_stream(model, tok, lambda i: pair(args.format, i), args.tokens, config, seed=args.seed,
               marks=[args.tokens * k // 6 for k in range(1, 7)], on_mark=report, quiet=True)


if __name__ == "__main__":
    main()

"""Build the embedded micro-world: tokenizer, teacher, student base and a manifest.

``build_world(out_dir, size)`` writes ``out_dir/{tokenizer/, teacher/, student/,
manifest.json}`` deterministically from ``seed``. The ``default`` world (minutes to
build on 2 cores) is shipped inside the package (``shipped_world_dir("default")``);
``world build`` reproduces it. The ``tiny`` world (seconds) is built on demand into a
cache directory keyed by seed and serves the test suite.

Command line (the CLI delegates here)::

    python -m read_distill.world.build build [--size default|tiny] [--seed 0] [--out DIR]
    python -m read_distill.world.build info [--size default] [--dir DIR] [--json]
    python -m read_distill.world.build eval --model teacher|student|PATH [--items N] [--json]

The manifest's accuracy figures are :func:`evaluate`'s, the same measurement ``world
eval`` prints: the run's student backend generates and the run's graders grade.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from read_distill.types import CAPABILITIES
from read_distill.world import (
    COMPOSITE_TASKS,
    GENERATORS,
    TASK_GENERATORS,
    reference_completion,
    split_items,
    split_seed,
)

if TYPE_CHECKING:
    from read_distill.config import TrainConfig

MANIFEST = "manifest.json"
#: Context length of the world's models (and the longest training sequence).
MAX_POSITIONS = 512
PACKAGE_ARTEFACTS = Path(__file__).parent / "artefacts"


@dataclass(frozen=True)
class WorldSpec:
    """Everything that decides a world build (besides the seed)."""

    vocab_size: int
    teacher: dict[str, float]
    student: dict[str, float]
    teacher_label_tokens: int
    student_label_tokens: int
    teacher_lr: float
    student_lr: float
    batch_size: int
    #: share of composite-task items in the training mixtures
    composite_frac: float
    #: difficulty mixture of the training mixtures
    difficulty_probs: tuple[float, float, float]
    #: per-capability weight in the teacher's mixture (default 1): slow-to-learn skills get more
    teacher_weights: dict[str, float] = field(default_factory=dict)
    #: per-capability weight in the student's short general pretraining (default 1)
    student_weights: dict[str, float] = field(default_factory=dict)
    #: the teacher's look-up warm-up before the mixture (see ``read_distill.world.warmup``):
    #: label tokens (0 = none), learning rate, and the share of recall items (the rest are
    #: items of the look-up capabilities and the composites built on them)
    teacher_warmup_label_tokens: int = 0
    teacher_warmup_lr: float = 1e-3
    teacher_warmup_recall_frac: float = 0.5
    #: the student base's look-up warm-up, the same kind as the teacher's but short: the
    #: base half learns the look-up and distillation finishes it (recall items alone did
    #: not teach it; docs/world.md)
    student_warmup_label_tokens: int = 0
    student_warmup_lr: float = 1e-3
    student_warmup_recall_frac: float = 0.5
    eval_items: int = 100
    tokenizer_items: int = 60
    #: cap on generated tokens when measuring (None: the per-capability default)
    eval_max_new_tokens: int | None = None


SPECS: dict[str, WorldSpec] = {
    "default": WorldSpec(
        vocab_size=1024,
        teacher={"hidden": 128, "layers": 3, "heads": 4, "intermediate": 384, "init_std": 0.1},
        student={"hidden": 64, "layers": 2, "heads": 4, "intermediate": 192, "init_std": 0.1},
        teacher_label_tokens=5_000_000,
        student_label_tokens=400_000,
        teacher_lr=2e-3,
        student_lr=2e-3,
        batch_size=32,
        composite_frac=0.25,
        difficulty_probs=(0.3, 0.45, 0.25),
        teacher_weights={"general_knowledge": 0.6, "multilingual": 0.8, "tool_use": 0.8, "math": 1.6,
                         "reasoning": 1.3, "long_context": 1.3, "steerability": 1.3, "code": 1.2},
        teacher_warmup_label_tokens=1_000_000,
        student_warmup_label_tokens=400_000,
        student_weights={"general_knowledge": 0.1, "multilingual": 2.0, "steerability": 3.0, "tool_use": 0.1,
                         "reasoning": 0.3, "long_context": 0.3, "code": 1.5, "math": 4.0},
        eval_items=100,
    ),
    "tiny": WorldSpec(
        vocab_size=512,
        teacher={"hidden": 48, "layers": 1, "heads": 2, "intermediate": 96},
        student={"hidden": 32, "layers": 1, "heads": 2, "intermediate": 64},
        teacher_label_tokens=12_000,
        student_label_tokens=3_000,
        teacher_lr=3e-3,
        student_lr=3e-3,
        batch_size=16,
        composite_frac=0.25,
        difficulty_probs=(0.3, 0.45, 0.25),
        eval_items=6,
        tokenizer_items=12,
        eval_max_new_tokens=12,
    ),
}


def mixture_source(
    seed: int,
    spec: WorldSpec,
    weights: dict[str, float] | None = None,
    signal: str = "cot",
):
    """The general training mixture as a pair source: index -> (prompt, reference completion).

    Capabilities are drawn by ``weights`` (uniform by default), composites with
    ``spec.composite_frac``, difficulties by ``spec.difficulty_probs``; all from the seed.
    """
    caps = list(CAPABILITIES)
    w = [float((weights or {}).get(c, 1.0)) for c in caps]
    comps = list(COMPOSITE_TASKS)

    def source(i: int) -> tuple[str, str]:
        rng = random.Random(f"mix:{seed}:{i}")
        d = rng.choices(("easy", "medium", "hard"), weights=spec.difficulty_probs)[0]
        item_seed = split_seed("train", i, seed)
        if rng.random() < spec.composite_frac:
            it = TASK_GENERATORS[rng.choice(comps)].generate(item_seed, d)
        else:
            it = GENERATORS[rng.choices(caps, weights=w)[0]].generate(item_seed, d)
        return it.prompt, reference_completion(it, signal)

    return source


#: What the look-up warm-up trains besides recall items: the capabilities and composites
#: whose answers are copied from the prompt.
LOOKUP_GENERATORS = ("long_context", "reasoning", "long_tool", "lc_vel", "reasoning_json")


def warmup_source(seed: int, spec: WorldSpec, recall_frac: float):
    """The look-up warm-up as a pair source: recall items (share ``recall_frac``) and look-up items."""
    from read_distill.world.warmup import recall_pair

    def source(i: int) -> tuple[str, str]:
        rng = random.Random(f"warmup:{seed}:{i}")
        if rng.random() < recall_frac:
            return recall_pair(split_seed("train", i, seed))
        name = rng.choice(LOOKUP_GENERATORS)
        d = rng.choices(("easy", "medium", "hard"), weights=spec.difficulty_probs)[0]
        gen = GENERATORS.get(name) or TASK_GENERATORS[name]
        it = gen.generate(split_seed("train", i, seed), d)
        return it.prompt, reference_completion(it, "cot")

    return source


def train_config(spec: WorldSpec, lr: float, schedule: str = "cosine") -> TrainConfig:
    """The world build's training settings: the run's trainer with the build's rate and batch."""
    from read_distill.config import TrainConfig

    return TrainConfig(
        lr=lr, schedule=schedule, warmup_frac=0.01, min_lr_frac=0.1, batch_size=spec.batch_size,
        adam_beta2=0.98, max_seq_tokens=MAX_POSITIONS, mixed_precision="no",
    )


def lookup_warmup(model, tok, spec: WorldSpec, role: str, seed: int, progress: bool):
    """Run ``role``'s look-up warm-up on ``model``; None when the spec gives it none."""
    from read_distill.train import fit_stream

    tokens = getattr(spec, f"{role}_warmup_label_tokens")
    if tokens <= 0:
        return None
    source = warmup_source(seed + 100, spec, getattr(spec, f"{role}_warmup_recall_frac"))
    return fit_stream(model, tok, source, tokens, train_config(spec, getattr(spec, f"{role}_warmup_lr"), "constant"),
                      seed=seed + 100, desc=f"{role} look-up warm-up", quiet=not progress)


def accuracy(student, tok, name: str, n_items: int, seed: int, max_new_tokens: int) -> float:
    """Percent correct of ``student`` (a ``Student`` backend with tokenizer ``tok``) on
    ``n_items`` held-out medium test items of a capability or task card, generated and
    graded as a run does."""
    from read_distill.ledger import Ledger
    from read_distill.probes import item_scores
    from read_distill.train import count_tokens

    ledger = Ledger(None, 1)  # evaluation tokens are overhead; nothing is billable
    items = split_items(name, "test", n_items, seed)
    scores = item_scores(student, items, max_new_tokens, lambda texts: count_tokens(tok, texts), ledger, 0, "eval")
    return round(sum(scores) / len(scores), 2)


def measure(model, tok, n_items: int, seed: int = 0, max_new_tokens: int | None = None) -> dict[str, Any]:
    """Accuracy (percent) of a loaded model on held-out medium test items, per capability and
    per task card, through the run's student backend."""
    from read_distill.backends.hf import HFStudent
    from read_distill.world import MAX_NEW_TOKENS

    student = HFStudent(model, tok, quiet=True)
    caps = {c: accuracy(student, tok, c, n_items, seed, max_new_tokens or MAX_NEW_TOKENS[c]) for c in CAPABILITIES}
    # Task cards are evaluated with the longest capability limit, as a run evaluates them.
    limit = max_new_tokens or max(MAX_NEW_TOKENS.values())
    tasks = {t: accuracy(student, tok, t, n_items, seed, limit) for t in COMPOSITE_TASKS}
    return {"accuracy": caps, "mean_accuracy": round(sum(caps.values()) / len(caps), 2), "tasks": tasks}


def evaluate(model_dir: Path, n_items: int, seed: int = 0, max_new_tokens: int | None = None) -> dict[str, Any]:
    """:func:`measure` of the model saved in ``model_dir`` (a world's teacher or student, or a run's ``student/``)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from read_distill.backends.hf import quiet_transformers

    with quiet_transformers():
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype="float32")
    return measure(model, AutoTokenizer.from_pretrained(str(model_dir)), n_items, seed, max_new_tokens)


def _sha256_dir(d: Path) -> dict[str, str]:
    out = {}
    for p in sorted(d.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(d))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _log(progress: bool, msg: str) -> None:
    if progress:
        print(msg, file=sys.stderr, flush=True)


def build_world(
    out_dir: Path,
    size: Literal["default", "tiny"] = "default",
    seed: int = 0,
    progress: bool = True,
    reuse_teacher: bool = False,
) -> dict[str, Any]:
    """Build tokenizer, teacher and student base into ``out_dir``; return the manifest.

    ``reuse_teacher``: keep an already built teacher in ``out_dir`` when the tokenizer,
    seed and teacher recipe are unchanged (used while calibrating the student).
    """
    import torch

    from read_distill.backends.hf import quiet_transformers
    from read_distill.train import fit_stream
    from read_distill.world.model import ModelSize, n_params, new_model, train_tokenizer, world_texts

    spec = SPECS[size]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    threads = int(os.environ.get("READ_DISTILL_THREADS", "1"))
    torch.set_num_threads(threads)
    t0 = time.time()
    _log(progress, f"[world] building {size} world (seed {seed}) into {out_dir}")

    tok = train_tokenizer(world_texts(spec.tokenizer_items, seed), spec.vocab_size)
    tok.save_pretrained(str(out_dir / "tokenizer"))
    _log(progress, f"[world] tokenizer: {len(tok)} tokens")

    manifest: dict[str, Any] = {
        "size": size,
        "seed": seed,
        "spec": {k: (list(v) if isinstance(v, tuple) else v) for k, v in spec.__dict__.items()},
        "capabilities": list(CAPABILITIES),
        "tasks_evaluated": list(COMPOSITE_TASKS),
        "eval": {"split": "test", "difficulty": "medium", "items_per_capability": spec.eval_items},
        "vocab_size": len(tok),
        "recipe": recipe_fingerprint(size),
    }
    previous = json.loads((out_dir / MANIFEST).read_text()) if (out_dir / MANIFEST).exists() else None
    for role, msize, tokens, lr, weights, mseed in (
        ("teacher", spec.teacher, spec.teacher_label_tokens, spec.teacher_lr, spec.teacher_weights, seed),
        ("student", spec.student, spec.student_label_tokens, spec.student_lr, spec.student_weights, seed + 1),
    ):
        if reuse_teacher and role == "teacher" and _same_recipe(previous, manifest, out_dir):
            manifest["teacher"] = previous["teacher"]
            _log(progress, "[world] teacher: recipe unchanged, reusing the built teacher")
            continue
        model = new_model(ModelSize(**msize), len(tok), mseed)
        _log(progress, f"[world] {role}: {n_params(model):,} parameters, training on {tokens:,} label tokens")
        tick = time.time()
        warm = lookup_warmup(model, tok, spec, role, mseed, progress)
        res = fit_stream(model, tok, mixture_source(mseed, spec, weights), tokens, train_config(spec, lr),
                         seed=mseed, desc=role, quiet=not progress)
        seconds = time.time() - tick
        stages = [r for r in (warm, res) if r is not None]
        with quiet_transformers():
            model.save_pretrained(str(out_dir / role), safe_serialization=True)
        tok.save_pretrained(str(out_dir / role))
        _log(progress, f"[world] {role}: trained in {seconds:.0f}s; measuring held-out accuracy")
        m = evaluate(out_dir / role, spec.eval_items, max_new_tokens=spec.eval_max_new_tokens)
        manifest[role] = {
            "params": n_params(model),
            "config": msize,
            "tokens_seen": sum(r.trained_tokens for r in stages),
            "label_tokens": sum(r.billable_tokens for r in stages),
            "optimizer_steps": sum(r.optimizer_steps for r in stages),
            "train_seconds": round(seconds, 1),
            "final_loss": round(res.mean_loss, 4),
            **m,
        }
        _log(progress, f"[world] {role}: mean {m['mean_accuracy']}%  {m['accuracy']}  tasks {m['tasks']}")
    manifest["tasks"] = {
        t: {"teacher": manifest["teacher"]["tasks"][t], "student": manifest["student"]["tasks"][t]}
        for t in COMPOSITE_TASKS
    }
    manifest["build_seconds"] = round(time.time() - t0, 1)
    manifest["checksums"] = {
        role: _sha256_dir(out_dir / role) for role in ("tokenizer", "teacher", "student")
    }
    manifest["torch_threads"] = threads
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    _log(progress, f"[world] done in {manifest['build_seconds']}s")
    return manifest


def _same_recipe(previous: dict[str, Any] | None, manifest: dict[str, Any], out_dir: Path) -> bool:
    if not previous or not (out_dir / "teacher" / "model.safetensors").exists():
        return False
    keys = ("vocab_size", "teacher", "teacher_label_tokens", "teacher_weights", "teacher_warmup_label_tokens",
            "teacher_warmup_lr", "teacher_warmup_recall_frac", "teacher_lr", "batch_size", "composite_frac",
            "difficulty_probs", "tokenizer_items")
    same_spec = all(previous["spec"].get(k) == manifest["spec"].get(k) for k in keys)
    same_tok = previous.get("checksums", {}).get("tokenizer") == _sha256_dir(out_dir / "tokenizer")
    same_model = previous.get("checksums", {}).get("teacher") == _sha256_dir(out_dir / "teacher")
    return same_spec and same_tok and same_model and previous.get("seed") == manifest["seed"]


def load_manifest(directory: Path | str) -> dict[str, Any]:
    """The manifest of a built world directory."""
    path = Path(directory) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{path}: no world manifest; run `read-distill world build` first")
    return json.loads(path.read_text())


def cache_root() -> Path:
    base = os.environ.get("READ_DISTILL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "read-distill"
    )
    return Path(base)


def shipped_world_dir(size: Literal["default", "tiny"] = "default", seed: int = 0) -> Path:
    """Where a world's artefacts live: the package for the shipped default world, a cache
    directory keyed by seed for the tiny world (and for default worlds of other seeds)."""
    if size == "default" and seed == 0:
        return PACKAGE_ARTEFACTS / "default"
    return cache_root() / "worlds" / f"{size}-seed{seed}"


def recipe_fingerprint(size: str) -> str:
    """A hash of what decides a world build besides the seed: the spec and the source of
    the world package (generators, tokenizer and model code, this build)."""
    h = hashlib.sha256(json.dumps(SPECS[size].__dict__, sort_keys=True, default=list).encode())
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:16]


def ensure_world(size: Literal["default", "tiny"] = "tiny", seed: int = 0, progress: bool = False) -> Path:
    """The directory of a built world, building it first if it is missing.

    A cached world (not the shipped one) whose recipe fingerprint differs from the code's
    is rebuilt: a world built by older generators would silently test old behaviour. The
    rebuild goes to a sibling directory that replaces the old one only when complete.
    """
    d = shipped_world_dir(size, seed)
    shipped = d.is_relative_to(PACKAGE_ARTEFACTS)
    if (d / MANIFEST).exists() and (shipped or load_manifest(d).get("recipe") == recipe_fingerprint(size)):
        return d
    tmp = d.with_name(d.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    build_world(tmp, size, seed, progress=progress)
    shutil.rmtree(d, ignore_errors=True)
    tmp.rename(d)
    return d


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="read-distill world", description="Build, describe or evaluate the embedded micro-world.")
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build tokenizer, teacher and student base")
    b.add_argument("--size", choices=list(SPECS), default="default")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--out", type=Path, default=None, help="output directory (default: the shipped/cache location)")
    b.add_argument("--quiet", action="store_true")
    b.add_argument("--reuse-teacher", action="store_true", help="keep a built teacher whose recipe is unchanged")
    i = sub.add_parser("info", help="print a built world's manifest")
    i.add_argument("--size", choices=list(SPECS), default="default")
    i.add_argument("--seed", type=int, default=0)
    i.add_argument("--dir", type=Path, default=None)
    i.add_argument("--json", action="store_true")
    e = sub.add_parser("eval", help="held-out accuracy of a model, measured through the run's backends")
    e.add_argument("--model", default="teacher", help="teacher, student (the world's) or a model directory (e.g. a run's student/)")
    e.add_argument("--size", choices=list(SPECS), default="default")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--dir", type=Path, default=None, help="world directory (default: the shipped/cache location)")
    e.add_argument("--items", type=int, default=None, help="held-out medium items per capability and task (default: the manifest's)")
    e.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    if a.cmd == "build":
        out = a.out or shipped_world_dir(a.size, a.seed)
        m = build_world(out, a.size, a.seed, progress=not a.quiet, reuse_teacher=a.reuse_teacher)
        print(json.dumps({"dir": str(out), "teacher": m["teacher"]["accuracy"], "student": m["student"]["accuracy"]}))
        return 0
    d = a.dir or shipped_world_dir(a.size, a.seed)
    try:
        m = load_manifest(d)
    except FileNotFoundError as err:
        print(str(err), file=sys.stderr)
        return 2
    if a.cmd == "eval":
        return _eval(a, d, m)
    if a.json:
        print(json.dumps(m, indent=2))
    else:
        print(f"world {m['size']} seed {m['seed']} at {d}")
        for role in ("teacher", "student"):
            r = m[role]
            print(f"  {role}: {r['params']:,} params, mean {r['mean_accuracy']}%")
            for c, v in r["accuracy"].items():
                print(f"    {c:18s} {v:6.1f}")
        print("  tasks (teacher / student):")
        for t, v in m["tasks"].items():
            print(f"    {t:18s} {v['teacher']:6.1f} / {v['student']:6.1f}")
    return 0


def _eval(a: argparse.Namespace, world_dir: Path, manifest: dict[str, Any]) -> int:
    """``world eval``: measure a model and print it (beside the manifest's figures for the world's own)."""
    model_dir = world_dir / a.model if a.model in ("teacher", "student") else Path(a.model)
    if not (model_dir / "config.json").exists():
        print(f"read-distill world eval: --model {a.model}: {model_dir} holds no model (no config.json); "
              "give teacher, student or a model directory", file=sys.stderr)
        return 2
    threads = os.environ.get("READ_DISTILL_THREADS")
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    n = a.items or manifest["eval"]["items_per_capability"]
    m = evaluate(model_dir, n, max_new_tokens=SPECS[manifest["size"]].eval_max_new_tokens)
    result = {"model": str(model_dir), "items": n, **m}
    if a.json:
        print(json.dumps(result, indent=2))
        return 0
    listed = manifest.get(a.model) if a.model in ("teacher", "student") else None
    print(f"{model_dir}: mean {m['mean_accuracy']}% on {n} held-out medium items each"
          + (f" (manifest: {listed['mean_accuracy']}%)" if listed else ""))
    for name, v in [*m["accuracy"].items(), *m["tasks"].items()]:
        ref = listed["accuracy"].get(name, listed["tasks"].get(name)) if listed else None
        print(f"  {name:18s} {v:6.1f}" + (f"   manifest {ref:6.1f}" if ref is not None else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The transfer study on the micro-world: one-hot distillation of the student base on each
capability, at several budgets and seeds, gives the transfer matrix T_ij(B)
(docs/method.md §1; claims 1–2 of docs/method.md §8).

For each seed and capability i, the student base is fine-tuned (SFT, prompt masked,
constant learning rate after warm-up) on the *teacher's own completions* of capability-i
prompts, mixed with a fixed replay fraction of the general pretraining mixture (the same
replay every method uses); the budget counts the teacher-generated label tokens trained
on. Budgets are checkpoints of one run. At each budget the full profile is probed on
held-out medium items, and T_ij(B) = s_j(after) - s_j(base).

    python -m read_distill.world.transfer --world DIR --budgets 20000 60000 180000 \
        --seeds 0 1 2 --out docs/transfer.json --markdown docs/transfer.md
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

from read_distill.experiments.statistics import mean_interval
from read_distill.types import CAPABILITIES
from read_distill.world import GENERATORS, MAX_NEW_TOKENS, split_seed

#: The control row: the same training with replay data only (no teacher tokens), so the
#: drift that replay alone causes can be told apart from transfer.
CONTROL = "replay_only"

def teacher_pool(
    world: Path, tok, capability: str, n: int, cache: Path, progress: bool, max_new_tokens: int | None = None
) -> list[tuple[str, str]]:
    """``n`` (prompt, teacher completion) pairs of ``capability`` (curriculum: mostly medium),
    cached on disk by the teacher's checksum."""
    from read_distill.backends.hf import HFTeacher
    from read_distill.world.build import load_manifest

    digest = load_manifest(world)["checksums"]["teacher"]["model.safetensors"][:16]
    path = cache / f"teacher-{digest}-{capability}-{n}.jsonl"
    if path.exists():
        return [tuple(json.loads(line)) for line in path.read_text().splitlines()]
    rng = random.Random(f"pool:{capability}")
    items = [
        GENERATORS[capability].generate(split_seed("train", 500_000 + i), rng.choices(("easy", "medium", "hard"), (0.1, 0.7, 0.2))[0])
        for i in range(n)
    ]
    t0 = time.time()
    teacher = HFTeacher.from_pretrained(world / "teacher", device="cpu", dtype="float32", batch_size=64)
    gens = teacher.generate([it.prompt for it in items], {"max_new_tokens": max_new_tokens or MAX_NEW_TOKENS[capability]})
    pairs = [(it.prompt, g.text) for it, g in zip(items, gens, strict=True)]
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    if progress:
        print(f"  teacher pool {capability}: {n} completions in {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
    return pairs


def profile(model, tok, n_items: int, seed: int, max_new_tokens: int | None = None) -> dict[str, float]:
    """Percent correct per capability on ``n_items`` held-out medium items (seed-specific
    sample), generated and graded as a run does."""
    from read_distill.backends.hf import HFStudent
    from read_distill.world.build import accuracy

    student = HFStudent(model, tok, quiet=True)
    return {c: accuracy(student, tok, c, n_items, 100 + seed, max_new_tokens or MAX_NEW_TOKENS[c]) for c in CAPABILITIES}


def run_study(
    world: Path,
    budgets: list[int],
    seeds: list[int],
    capabilities: list[str],
    lr: float,
    replay_frac: float,
    n_items: int,
    cache: Path,
    progress: bool = True,
    pool_size: int = 1024,
) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from read_distill.backends.hf import quiet_transformers
    from read_distill.config import TrainConfig
    from read_distill.train import fit_stream
    from read_distill.world.build import MAX_POSITIONS, SPECS, load_manifest, mixture_source

    def load_student():
        with quiet_transformers():
            return AutoModelForCausalLM.from_pretrained(str(world / "student"), dtype="float32")

    # Constant rate after a short warm-up, so budgets are checkpoints of one run.
    config = TrainConfig(lr=lr, schedule="constant", warmup_frac=0.05, batch_size=32, adam_beta2=0.98,
                         max_seq_tokens=MAX_POSITIONS, mixed_precision="no")

    torch.set_num_threads(int(os.environ.get("READ_DISTILL_THREADS", "1")))
    tok = AutoTokenizer.from_pretrained(str(world / "tokenizer"))
    manifest = load_manifest(world)
    spec = SPECS[manifest["size"]]
    mnt = spec.eval_max_new_tokens
    max_b = max(budgets)
    # a fixed distillation set per capability: the teacher's completions of pool_size prompts
    pools = {c: teacher_pool(world, tok, c, pool_size, cache, progress, mnt) for c in capabilities if c != CONTROL}
    if not seeds:
        return {"pools": {c: len(v) for c, v in pools.items()}}
    base = {s: profile(load_student(), tok, n_items, s, mnt) for s in seeds}
    runs: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for s in seeds:
        for c in capabilities:
            model = load_student()
            pool = pools.get(c, [])
            # replay: fresh draws of the student's own pretraining mixture
            replay = mixture_source(10_000 + s, spec, spec.student_weights)
            order = list(range(len(pool)))
            random.Random(f"order:{s}:{c}").shuffle(order)

            def source(i: int, _pool=pool, _order=order, _replay=replay, _s=s) -> tuple[str, str]:
                r = random.Random(f"replay:{_s}:{i}")
                if not _pool or r.random() < replay_frac:
                    return _replay(i)
                return _pool[_order[i % len(_order)]]

            # label tokens include replay; teacher label tokens are (1 - replay_frac) of them
            marks = {int(b / (1 - replay_frac)): b for b in budgets}
            out: dict[str, dict[str, float]] = {}

            def probe_at(mark: int, _model=model, _out=out, _s=s, _marks=marks) -> None:
                _out[str(_marks[mark])] = profile(_model, tok, n_items, _s, mnt)

            t0 = time.time()
            fit_stream(model, tok, source, max(marks), config, seed=1000 + s, marks=marks, on_mark=probe_at,
                       desc=f"seed {s} {c}", quiet=True)
            runs.setdefault(str(s), {})[c] = out
            if progress:
                last = out[str(max_b)]
                # the replay-only control has no target: its whole change is "off-target"
                target = f"target {base[s][c]:.0f}->{last[c]:.0f}  " if c in CAPABILITIES else ""
                print(
                    f"  seed {s} {c}: {time.time() - t0:.0f}s  {target}"
                    f"mean off-target change {sum(last[j] - base[s][j] for j in CAPABILITIES if j != c) / (len(CAPABILITIES) - (c in CAPABILITIES)):+.1f}",
                    file=sys.stderr, flush=True,
                )
    study = {
        "world": str(world),
        "budgets": sorted(budgets),
        "seeds": seeds,
        "capabilities_distilled": capabilities,
        "lr": lr,
        "replay_frac": replay_frac,
        "pool_size": pool_size,
        "eval_items_per_capability": n_items,
        "base_profile": {str(s): base[s] for s in seeds},
        "runs": runs,
    }
    return with_matrix(study)


def merge(studies: list[dict[str, Any]]) -> dict[str, Any]:
    """Combine studies run separately (e.g. one process per seed) with the same settings."""
    out = dict(studies[0])
    out["seeds"] = [s for st in studies for s in st["seeds"]]
    out["base_profile"] = {k: v for st in studies for k, v in st["base_profile"].items()}
    out["runs"] = {k: v for st in studies for k, v in st["runs"].items()}
    return with_matrix(out)


def with_matrix(study: dict[str, Any]) -> dict[str, Any]:
    """Add T_ij(B) (mean and 95 % interval over seeds) to a study."""
    budgets, seeds, capabilities = study["budgets"], study["seeds"], study["capabilities_distilled"]
    runs, base = study["runs"], {int(k): v for k, v in study["base_profile"].items()}
    matrix: dict[str, dict[str, dict[str, list[float]]]] = {}
    for b in sorted(budgets):
        matrix[str(b)] = {}
        for i in capabilities:
            matrix[str(b)][i] = {}
            for j in CAPABILITIES:
                deltas = [runs[str(s)][i][str(b)][j] - base[s][j] for s in seeds]
                matrix[str(b)][i][j] = list(mean_interval(deltas))
    return {**study, "matrix": matrix}


def summarise(study: dict[str, Any]) -> str:
    """Markdown: the matrix per budget (mean [lo, hi]), sign counts, return curves."""
    lines = [
        "# Transfer study on the micro-world (generated by `python -m read_distill.world.transfer`)\n",
        f"Settings: lr {study['lr']}, replay fraction {study['replay_frac']}, "
        f"{study['eval_items_per_capability']} held-out medium items per capability per probe, "
        f"seeds {study['seeds']}. Base profile per seed: "
        + "; ".join(f"seed {k}: " + ", ".join(f"{c[:5]} {v:.0f}" for c, v in p.items()) for k, p in study["base_profile"].items()),
    ]
    budgets = study["budgets"]
    caps = study["capabilities_distilled"]
    short = {c: c[:5] for c in CAPABILITIES}
    for b in budgets:
        m = study["matrix"][str(b)]
        lines.append(f"\n**B = {b:,} teacher tokens** (rows: capability distilled; columns: score change, points; "
                     f"mean over {len(study['seeds'])} seeds [95 % t-interval])\n")
        lines.append("| distilled \\ change | " + " | ".join(short[j] for j in CAPABILITIES) + " |")
        lines.append("|---" * (len(CAPABILITIES) + 1) + "|")
        for i in caps:
            cells = []
            for j in CAPABILITIES:
                mu, lo, hi = m[i][j]
                cell = f"{mu:+.1f} [{lo:+.0f},{hi:+.0f}]"
                cells.append(f"**{cell}**" if i == j else cell)
            lines.append(f"| {i} | " + " | ".join(cells) + " |")
        real = [i for i in caps if i in CAPABILITIES]
        off = [m[i][j][0] for i in real for j in CAPABILITIES if j != i]
        sig_neg = sum(1 for i in real for j in CAPABILITIES if j != i and m[i][j][2] < 0)
        sig_pos = sum(1 for i in real for j in CAPABILITIES if j != i and m[i][j][1] > 0)
        lines.append(
            f"\nOff-diagonals: {sum(v < 0 for v in off)} of {len(off)} negative on average "
            f"({sig_neg} with the whole interval below 0), {sum(v > 0 for v in off)} positive "
            f"({sig_pos} with the whole interval above 0); mean off-diagonal {sum(off) / len(off):+.2f}."
        )
        if CONTROL in caps:
            # what distilling i did to j beyond what the same training on replay alone did
            rel = [m[i][j][0] - m[CONTROL][j][0] for i in real for j in CAPABILITIES if j != i]
            lines.append(
                f"Against the replay-only control: {sum(v < 0 for v in rel)} of {len(rel)} negative, "
                f"mean {sum(rel) / len(rel):+.2f}."
            )
    lines.append("\n**Return curves on the target** (diagonal, mean [95 % interval]):\n")
    lines.append("| capability | " + " | ".join(f"B={b:,}" for b in budgets) + " | gain first→second | gain second→third |")
    lines.append("|---" * (len(budgets) + 3) + "|")
    for i in [c for c in caps if c in CAPABILITIES]:
        d = [study["matrix"][str(b)][i][i] for b in budgets]
        cells = [f"{mu:+.1f} [{lo:+.0f},{hi:+.0f}]" for mu, lo, hi in d]
        extra = ""
        if len(d) >= 3:
            extra = f" | {d[1][0] - d[0][0]:+.1f} | {d[2][0] - d[1][0]:+.1f}"
        lines.append(f"| {i} | " + " | ".join(cells) + extra + " |")
    lines.append("\n**Mean off-target change per budget** (average over distilled capabilities of the mean change of the other seven):\n")
    for b in budgets:
        m = study["matrix"][str(b)]
        v = [sum(m[i][j][0] for j in CAPABILITIES if j != i) / (len(CAPABILITIES) - 1) for i in caps if i in CAPABILITIES]
        ctl = ""
        if CONTROL in caps:
            ctl = f"; replay-only control: {sum(m[CONTROL][j][0] for j in CAPABILITIES) / len(CAPABILITIES):+.2f} on all eight"
        lines.append(f"* B = {b:,}: {sum(v) / len(v):+.2f} points (most negative row: {min(v):+.2f}){ctl}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from read_distill.world.build import cache_root, shipped_world_dir

    p = argparse.ArgumentParser(prog="python -m read_distill.world.transfer", description=__doc__.split("\n\n")[0])
    p.add_argument("--world", type=Path, default=None, help="built world directory (default: the shipped default world)")
    p.add_argument("--budgets", type=int, nargs="+", default=[20_000, 60_000, 180_000])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--capabilities", nargs="+", default=[*CAPABILITIES, CONTROL],
                   help=f"rows to distill ({CONTROL!r}: the replay-only control)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--replay-frac", type=float, default=0.25)
    p.add_argument("--items", type=int, default=48, help="held-out medium items per capability per probe")
    p.add_argument("--pool", type=int, default=1024, help="teacher completions per capability (the distillation set)")
    p.add_argument("--merge", type=Path, nargs="+", default=None, help="combine study JSON files instead of running")
    p.add_argument("--out", type=Path, default=Path("transfer.json"))
    p.add_argument("--markdown", type=Path, default=None)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--pools-only", action="store_true", help="only generate (and cache) the teacher pools")
    a = p.parse_args(argv)
    if a.pools_only:
        world = a.world or shipped_world_dir("default")
        print(run_study(world, a.budgets, [], a.capabilities, a.lr, a.replay_frac, a.items,
                        cache_root() / "teacher-pools", progress=not a.quiet, pool_size=a.pool))
        return 0
    if a.merge:
        study = merge([json.loads(f.read_text()) for f in a.merge])
    else:
        world = a.world or shipped_world_dir("default")
        study = run_study(world, a.budgets, a.seeds, a.capabilities, a.lr, a.replay_frac, a.items,
                          cache_root() / "teacher-pools", progress=not a.quiet, pool_size=a.pool)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(study, indent=1) + "\n")
    md = summarise(study)
    if a.markdown:
        a.markdown.write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Kill anywhere, resume exactly: SIGKILL a real run at random moments, resume it, compare.

The run is small and real: the tiny embedded micro-world (built in seconds), policy
``read``, 5 rounds on a 1,000-token budget with replay (``train.replay_frac``) and dev
checkpoints, so every phase happens: set-up, generation (teacher calls and their cache),
training, probing, dev evaluation, checkpoint writing, the commit, the final evaluation
and the report. It runs once uninterrupted as the reference, timed. Then each trial
launches the same run as a subprocess (``python -m read_distill run``), sends SIGKILL at
a moment drawn uniformly over the reference's duration (seeded), resumes it with
``--resume`` (or starts it again if it was killed before writing its config, as a user
would) and kills that too at a fresh draw, then resumes until it finishes. A kill
that lands after the process has ended is not counted; trials go on until ``--kills``
kills have landed.

Each finished trial is compared with the reference: every file under ``rounds/`` (the
allocations, examples, passes, profiles and rewards of each round), every ledger row, the
policy and run state (minus wall times), ``summary.json`` (minus wall times), the final
student's weights and optimizer state (tensor by tensor, bitwise: the resumed process
reloads the checkpoint of the last committed round and replays the rest on one thread
in the same order, so nothing should differ, not even in the last bit), the set of
prompts in the teacher cache and the teacher tokens charged as fresh (a prompt paid twice
would show up in either), and the run directory's file list (a leftover temporary file
or half-written checkpoint directory is damage). Every process's stderr is searched for
a traceback. One line per kill names the phase the run was in, read from the newest
file the killed process wrote (for the ledger, its last row's phase).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/reliability.py [--kills 20] [--seed 0] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CONFIG = """\
run: {name: reliability, rounds: 5, dev_every: 2}
world: {kind: micro, micro_size: tiny}
task: {card: tool_math}
budget: {total_tokens: 1000, unit: train}
policy: {name: read}
probe: {items_per_capability: 2}
train: {replay_frac: 0.25}
generation:
  batch_size: 8
  max_new_tokens: {general_knowledge: 12, steerability: 12, reasoning: 12, math: 12, code: 12, tool_use: 12, long_context: 12, multilingual: 12}
"""

#: Kills per trial: the run, then its first resume; the second resume runs to the end.
KILLS_PER_TRIAL = 2

#: The newest file a killed process wrote -> the phase it was in.
PHASE_OF_FILE = {
    "examples.jsonl": "generation (examples saved)",
    "passes.json": "generation (examples saved)",
    "allocation.json": "round files",
    "profile.json": "round files",
    "reward.json": "round files",
    "state.json": "commit",
    "summary.json": "report (summary written)",
    "report.html": "exit (report written)",
    "config.yaml": "set-up",
    "env.json": "set-up",
}
#: The last ledger row's phase -> the run's phase.
PHASE_OF_CHARGE = {"teacher_prompt": "generation", "teacher_gen": "generation", "train": "training", "probe": "probing", "eval": "evaluation"}


def _env() -> dict[str, str]:
    # One thread: the float sums of a resumed run then come in the reference's order.
    return {**os.environ, "OMP_NUM_THREADS": "1", "READ_DISTILL_THREADS": "1"}


def _command(config: Path, run_dir: Path, resume: bool) -> list[str]:
    return [sys.executable, "-m", "read_distill", "run", str(config), "--run-dir", str(run_dir), *(["--resume"] if resume else [])]


def _phase(run_dir: Path, started: float) -> str:
    """Where a process started at ``started`` was when it was killed."""
    # The teacher cache's files change on opening and closing too; generation shows in the
    # ledger, which gets a row per teacher output.
    files = [p for p in run_dir.rglob("*") if p.is_file() and p.name != "run.lock" and not p.name.startswith("teacher_cache")]
    written = [p for p in files if p.stat().st_mtime >= started]
    if not written:
        return "set-up"
    newest = max(written, key=lambda p: p.stat().st_mtime)
    rel = newest.relative_to(run_dir)
    if rel.parts[0].startswith(("student", ".student")) or any(part.startswith(".student") for part in rel.parts):
        return "checkpoint"
    if newest.name.endswith(".tmp"):
        name = newest.name.lstrip(".").rsplit(".", 2)[0]
        return PHASE_OF_FILE.get(name, "writing " + name) + " (temporary file)"
    if newest.name == "ledger.jsonl":
        rows = newest.read_text().splitlines()
        return PHASE_OF_CHARGE.get(json.loads(rows[-1])["phase"], "other") if rows and rows[-1].endswith("}") else "ledger"
    return PHASE_OF_FILE.get(newest.name, str(rel))


def _launch(config: Path, run_dir: Path, resume: bool, log: Path, kill_at: float | None) -> tuple[int, str | None]:
    """Run (or resume) the run; SIGKILL it after ``kill_at`` seconds if it is still running.

    Returns the exit status and, if the kill landed, the phase it landed in."""
    started = time.time()
    with log.open("a") as err:
        proc = subprocess.Popen(_command(config, run_dir, resume), stdout=subprocess.DEVNULL, stderr=err, env=_env())
        try:
            proc.wait(timeout=kill_at)
            return proc.returncode, None
        except subprocess.TimeoutExpired:
            phase = _phase(run_dir, started)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return proc.returncode, phase


def _tensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(path))


def _train_state(path: Path) -> list[tuple[str, object]]:
    import torch

    flat: list[tuple[str, object]] = []

    def walk(prefix: str, x: object) -> None:
        if isinstance(x, dict):
            for k in sorted(x, key=str):
                walk(f"{prefix}.{k}", x[k])
        elif isinstance(x, (list, tuple)):
            for i, v in enumerate(x):
                walk(f"{prefix}.{i}", v)
        else:
            flat.append((prefix, x))

    walk("", torch.load(path, map_location="cpu", weights_only=True))
    return flat


def _same_values(a: object, b: object) -> bool:
    import torch

    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.dtype == b.dtype and a.shape == b.shape and bool(torch.equal(a, b))
    return a == b


def _without_wall(path: Path) -> object:
    """A summary.json or state.json without what measures the machine (time, memory)."""
    from read_distill.runner import MEASURED

    d = json.loads(path.read_text())
    for key in (*MEASURED, "peak_mb"):
        d.pop(key, None)
    return d


def _cache_keys(path: Path) -> list[str]:
    # immutable: a plain reader of a WAL database would create -wal/-shm files beside it.
    db = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return sorted(k for (k,) in db.execute("SELECT key FROM generations"))
    finally:
        db.close()


def _fresh_teacher_tokens(ledger: list[dict]) -> int:
    return sum(e["tokens"] for e in ledger if e["phase"] == "teacher_gen" and not e["cached"])


def compare(run_dir: Path, ref: Path) -> list[str]:
    """How ``run_dir`` differs from the reference run ``ref``: one phrase per difference."""
    diffs: list[str] = []
    files = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file() and p.name != "run.lock")
    ref_files = sorted(str(p.relative_to(ref)) for p in ref.rglob("*") if p.is_file() and p.name != "run.lock")
    if files != ref_files:
        diffs.append(f"files: extra {sorted(set(files) - set(ref_files))}, missing {sorted(set(ref_files) - set(files))}")
    for name in ref_files:
        if name.startswith("rounds/") and (run_dir / name).exists() and (run_dir / name).read_bytes() != (ref / name).read_bytes():
            diffs.append(f"{name} differs")
    ledger = [json.loads(x) for x in (run_dir / "ledger.jsonl").read_text().splitlines()]
    ref_ledger = [json.loads(x) for x in (ref / "ledger.jsonl").read_text().splitlines()]
    if ledger != ref_ledger:
        first = next((i for i, (a, b) in enumerate(zip(ledger, ref_ledger, strict=False)) if a != b), min(len(ledger), len(ref_ledger)))
        diffs.append(f"ledger.jsonl: {len(ledger)} rows vs {len(ref_ledger)}, first difference at row {first + 1}")
    if _fresh_teacher_tokens(ledger) != _fresh_teacher_tokens(ref_ledger):
        diffs.append(f"fresh teacher tokens {_fresh_teacher_tokens(ledger)} vs {_fresh_teacher_tokens(ref_ledger)}")
    if _cache_keys(run_dir / "teacher_cache.sqlite") != _cache_keys(ref / "teacher_cache.sqlite"):
        diffs.append("teacher cache holds other prompts")
    for name in ("summary.json", "state.json", "student/policy.json"):
        if _without_wall(run_dir / name) != _without_wall(ref / name):
            diffs.append(f"{name} differs")
    weights, ref_weights = _tensors(run_dir / "student/model.safetensors"), _tensors(ref / "student/model.safetensors")
    if weights.keys() != ref_weights.keys():
        diffs.append("student weights: other tensors")
    else:
        worst = max(float(np.max(np.abs(weights[k].astype(np.float64) - ref_weights[k]))) for k in weights)
        if any(not np.array_equal(weights[k], ref_weights[k]) for k in weights):
            diffs.append(f"student weights differ (max |diff| {worst:.3g})")
    state, ref_state = _train_state(run_dir / "student/train_state.pt"), _train_state(ref / "student/train_state.pt")
    if [k for k, _ in state] != [k for k, _ in ref_state] or not all(
        _same_values(a, b) for (_, a), (_, b) in zip(state, ref_state, strict=True)
    ):
        diffs.append("optimizer state differs")
    return diffs


def _tracebacks(log: Path) -> int:
    return log.read_text(errors="replace").count("Traceback (most recent call last)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs to land in all")
    parser.add_argument("--seed", type=int, default=0, help="seeds the kill moments")
    parser.add_argument("--keep", type=Path, help="keep the run directories here (default: a temporary directory, removed)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="read-reliability-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        config = work / "reliability.yaml"
        config.write_text(CONFIG)
        ref = work / "reference"
        start = time.perf_counter()
        rc, _ = _launch(config, ref, False, work / "reference.log", None)
        duration = time.perf_counter() - start
        if rc != 0:
            print(f"reference run failed (exit {rc}); see {work / 'reference.log'}", file=sys.stderr)
            return 1
        print(f"reference: {duration:.1f} s; kills drawn uniformly in [0, {duration:.1f}) s")
        rng = np.random.default_rng(args.seed)
        landed = survived = identical = damaged = tracebacks = trial = 0
        while landed < args.kills:
            trial += 1
            run_dir, log = work / f"trial{trial:03d}", work / f"trial{trial:03d}.log"
            kills: list[tuple[float, str]] = []
            rc = None
            for attempt in range(KILLS_PER_TRIAL + 1):
                kill_at = float(rng.uniform(0, duration)) if attempt < KILLS_PER_TRIAL and landed + len(kills) < args.kills else None
                # A run killed before it wrote its config left nothing to resume: start it again.
                rc, phase = _launch(config, run_dir, (run_dir / "config.yaml").exists(), log, kill_at)
                if phase is None:
                    break  # finished (or failed) before the kill: nothing left to resume
                kills.append((kill_at, phase))
            diffs = compare(run_dir, ref) if rc == 0 else [f"exit {rc}"]
            n_tb = _tracebacks(log)
            landed += len(kills)
            tracebacks += n_tb
            survived += len(kills) if rc == 0 else 0
            identical += len(kills) if rc == 0 and not diffs else 0
            damaged += sum(d.startswith(("files", "exit")) for d in diffs)
            verdict = "identical" if not diffs else "; ".join(diffs)
            for at, phase in kills:
                print(f"trial {trial:3d}  kill at {at:5.2f} s  in {phase:<34} -> {verdict}", flush=True)
            if n_tb:
                print(f"trial {trial:3d}  {n_tb} traceback(s) in {log}", flush=True)
        print(
            f"kills survived: {survived}/{landed}; resumed identically: {identical}/{landed}; "
            f"files damaged: {damaged}; tracebacks: {tracebacks}"
        )
        return 0 if survived == identical == landed and not damaged and not tracebacks else 1


if __name__ == "__main__":
    sys.exit(main())

"""Teacher generation throughput, the cost of a round after the first, and the teacher cache on resume.

Three measurements on the embedded micro-world's shipped teacher (``configs/demo.yaml``),
each in this process, on the CPU:

1. **Throughput.** One round's teacher work as the run does it: ``Generator.generate_round``
   (the round's prompts drawn as a run draws them, batched by the generator and by
   ``HFTeacher.generate``), on a uniform allocation over every capability and on the
   task's requirement r. Then each of the round's teacher calls again, batched, and its
   prompts one at a time through a plain ``model.generate`` with the same greedy settings
   and ``max_new_tokens``, alternating call by call so load on the machine falls on both.
   For the uniform mix also the same prompts in full batches per ``max_new_tokens`` (what
   the generator's split of a batch by limit costs). Printed: new tokens per second
   (through the first EOS, as the ledger counts them), how many completions agree, and
   the ratios to naive.
2. **Rounds after the first.** ``HFTeacher.from_pretrained`` timed against a round's
   generation; then a short real run (``run.rounds`` rounds, the demo's settings
   otherwise) with every round's ``generate_round`` timed and every teacher or student
   load counted: the teacher is loaded once per process, so round 2 on costs what
   round 1 does.
3. **The teacher cache on a resumed run.** The same run again, interrupted twice: it
   stops after the round before ``--crash-round`` (as a kill at the commit would), is resumed, and is crashed in its
   middle round (``--crash-round``), after half that round's teacher calls have returned
   and been cached but before the round's examples were saved; a second resume finishes
   it. Per process: the prompts asked of the cache, how many it answered (no teacher
   call), how many the teacher generated, and how many of the outputs cached by the
   crashed, uncommitted work the resume reused. The finished run is checked against the
   uninterrupted one of step 2: the same ledger rows and the same cached prompts, so no
   prompt was paid twice.

The last line is the headline ratio, batched over naive throughput (uniform mix)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/generation.py [--quota 2500] [--rounds 4] [--budget 40000] [--crash-round 3]
"""

from __future__ import annotations

import argparse
import json
import shlex
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import GenerationConfig

from read_distill import runner
from read_distill.backends.cache import CachedTeacher
from read_distill.backends.hf import HFStudent, HFTeacher, _eos_ids, _pad_id
from read_distill.config import load_config
from read_distill.generate import Generator
from read_distill.ledger import Ledger
from read_distill.tasks import card_requirement
from read_distill.teachers import Teachers
from read_distill.train import encode_prompt

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"


class Interrupted(BaseException):
    """An injected crash: nothing in the run catches it, as nothing catches a kill."""


class RecordingTeacher:
    """The run's teacher with every ``generate`` call timed and kept (prompts, sampling, outputs)."""

    def __init__(self, teacher: Any) -> None:
        self.teacher = teacher
        self.name = teacher.name
        self.calls: list[dict[str, Any]] = []

    def generate(self, prompts: list[str], sampling: dict[str, Any]) -> list[Any]:
        """The wrapped teacher's ``generate``, timed."""
        start = time.perf_counter()
        out = self.teacher.generate(prompts, sampling)
        self.calls.append({"prompts": prompts, "sampling": dict(sampling), "s": time.perf_counter() - start, "out": out})
        return out


@torch.no_grad()
def naive(teacher: HFTeacher, prompt: str, max_new_tokens: int) -> tuple[int, str]:
    """One prompt through a plain ``model.generate`` (greedy, batch of one, no padding):
    the new tokens through the first EOS, and their text."""
    model, tokenizer = teacher.model, teacher.tokenizer
    eos = _eos_ids(model, tokenizer)
    config = GenerationConfig(
        max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, repetition_penalty=1.0,
        pad_token_id=_pad_id(tokenizer), eos_token_id=eos or None,
    )
    ids = torch.tensor([encode_prompt(tokenizer, prompt)], device=model.device)
    new = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config)[0, ids.shape[1]:].tolist()
    end = next((k + 1 for k, t in enumerate(new) if t in eos), len(new))
    stopped = new[end - 1] in eos
    return end, tokenizer.decode(new[: end - 1] if stopped else new[:end], skip_special_tokens=True)


def one_round(world: Any, config: Any, generator: Generator, allocation: tuple[float, ...], quota: int, t: int) -> tuple[float, RecordingTeacher, int]:
    """``generate_round`` as round ``t`` of a run calls it: wall seconds, the recorded teacher calls, examples."""
    recorder = RecordingTeacher(world.teachers().default)
    ledger = Ledger(None, 10**12, config.budget.unit)
    start = time.perf_counter()
    examples = generator.generate_round(Teachers(recorder), allocation, quota, ledger, t, 0.0, np.random.default_rng([config.run.seed, t, 1]))
    return time.perf_counter() - start, recorder, len(examples)


def against_naive(teacher: HFTeacher, calls: list[dict[str, Any]]) -> dict[str, Any]:
    """Each recorded teacher call again, batched (``HFTeacher.generate``) and then prompt by
    prompt (:func:`naive`), alternating call by call so that load from other processes on
    the machine falls on both alike."""
    batched_s = naive_s = 0.0
    batched_tokens = naive_tokens = same = 0
    for c in calls:
        start = time.perf_counter()
        gens = teacher.generate(c["prompts"], c["sampling"])
        batched_s += time.perf_counter() - start
        start = time.perf_counter()
        alone = [naive(teacher, p, c["sampling"]["max_new_tokens"]) for p in c["prompts"]]
        naive_s += time.perf_counter() - start
        batched_tokens += sum(g.completion_tokens for g in gens)
        naive_tokens += sum(n for n, _ in alone)
        same += sum(g.text == text and g.completion_tokens == n for g, (n, text) in zip(gens, alone, strict=True))
    return {"batched_s": batched_s, "naive_s": naive_s, "batched_tokens": batched_tokens, "naive_tokens": naive_tokens, "same": same}


def throughput(world: Any, config: Any, quota: int) -> tuple[list[str], float]:
    """Measurement 1, and the load-versus-round comparison of measurement 2."""
    teacher = world.teachers().default
    caps = world.capabilities
    requirement = card_requirement(world.card, caps, config.task.requirement)
    allocations = {"uniform": tuple(1.0 / len(caps) for _ in caps), f"r of {world.card.name}": requirement}
    # Warm-up outside the timing: the first call pays one-off allocation and dispatch set-up.
    teacher.generate(["warm up"], {"max_new_tokens": 4, "temperature": 0.0})
    naive(teacher, "warm up", 4)
    lines = [
        f"1. throughput: one round's teacher work, quota {quota:,} billable tokens; generation.batch_size "
        f"{config.generation.batch_size}; torch threads {torch.get_num_threads()}",
        "",
        f"{'allocation':<16}{'path':<48}{'prompts':>8}{'calls':>7}{'new tokens':>12}{'s':>8}{'tokens/s':>10}{'ratio':>7}",
    ]
    ratios = {}
    rounds = []
    for name, allocation in allocations.items():
        generator = Generator(world, config.generation, config.run.seed)
        round_s, recorder, n = one_round(world, config, generator, allocation, quota, 1)
        if name == "uniform":
            rounds = [(1, round_s, recorder, n)] + [(t, *one_round(world, config, generator, allocation, quota, t)) for t in (2, 3)]
        m = against_naive(teacher, recorder.calls)
        naive_rate = m["naive_tokens"] / m["naive_s"]
        prompts = sum(len(c["prompts"]) for c in recorder.calls)
        tokens = sum(g.completion_tokens for c in recorder.calls for g in c["out"])
        ratios[name] = m["batched_tokens"] / m["batched_s"] / naive_rate
        rows = [
            ("Generator.generate_round (draws, ledger, teacher)", n, len(recorder.calls), tokens, round_s),
            ("HFTeacher.generate, the round's calls", prompts, len(recorder.calls), m["batched_tokens"], m["batched_s"]),
            ("naive model.generate, one prompt at a time", prompts, prompts, m["naive_tokens"], m["naive_s"]),
        ]
        if name == "uniform":
            # The same prompts in full batches: what the split by max_new_tokens costs.
            by_length: dict[int, list[str]] = {}
            for c in recorder.calls:
                by_length.setdefault(c["sampling"]["max_new_tokens"], []).extend(c["prompts"])
            start = time.perf_counter()
            full = [g for length, ps in by_length.items() for g in teacher.generate(ps, {"max_new_tokens": length, "temperature": 0.0})]
            full_s = time.perf_counter() - start
            calls = sum(-(-len(ps) // config.generation.batch_size) for ps in by_length.values())
            rows.append(("HFTeacher.generate, same prompts, full batches", prompts, calls, sum(g.completion_tokens for g in full), full_s))
        for k, (path, count, calls, new, s) in enumerate(rows):
            lines.append(f"{name if k == 0 else '':<16}{path:<48}{count:>8}{calls:>7}{new:>12,}{s:>8.2f}{new / s:>10.1f}{new / s / naive_rate:>6.2f}x")
        limits = {}
        for c in recorder.calls:
            limits[c["sampling"]["max_new_tokens"]] = limits.get(c["sampling"]["max_new_tokens"], 0) + len(c["prompts"])
        lines.append(f"{'':<16}prompts per max_new_tokens {dict(sorted(limits.items()))}; {prompts / len(recorder.calls):.1f} prompts "
                     f"per teacher call; same completion (text and tokens) batched and alone: {m['same']}/{prompts}")

    loads = []
    for _ in range(3):
        start = time.perf_counter()
        HFTeacher.from_pretrained(world_teacher_dir(world), dtype="float32", device="cpu", batch_size=config.generation.batch_size)
        loads.append(time.perf_counter() - start)
    load_s = statistics.median(loads)
    lines += [
        "",
        "2a. model load vs a round's generation (uniform allocation; one generator, rounds drawn in turn):",
        f"  HFTeacher.from_pretrained: {load_s:.3f} s (median of 3)",
    ]
    for t, s, rec, n in rounds:
        tokens = sum(g.completion_tokens for c in rec.calls for g in c["out"])
        lines.append(f"  round {t} generate_round: {s:.2f} s, {n} examples, {tokens:,} new tokens, {tokens / s:.1f} tokens/s")
    lines.append(f"  load / round-1 generation: {load_s / rounds[0][1]:.3f}; round 2 / round 1: {rounds[1][1] / rounds[0][1]:.2f}, "
                 f"round 3 / round 1: {rounds[2][1] / rounds[0][1]:.2f}")
    lines.append("batched / naive new tokens/s: " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))
    return lines, ratios


def world_teacher_dir(world: Any) -> Path:
    """The micro-world's teacher directory (where ``make_world`` loaded it from)."""
    from read_distill.world.build import shipped_world_dir

    return shipped_world_dir(world.config.world.micro_size) / "teacher"


class Probe:
    """Counters installed around the run: teacher and student loads, each round's
    generation time, the cache's hits and misses per process, and an optional crash in
    ``CachedTeacher.generate``."""

    def __init__(self) -> None:
        self.teacher_loads = self.student_loads = 0
        self.round_s: dict[int, float] = {}
        self.round_calls: dict[int, int] = {}
        #: Per process at its close: (hits, misses, owed entries marked at its resume, owed left unused).
        self.cache: list[tuple[int, int, int, int]] = []
        self._owed = 0
        self.crash: tuple[int, int] | None = None  # (round, after this many cache calls in it)
        self._round = 0

    def install(self) -> None:
        """Wrap the library's entry points (restored by :meth:`remove`)."""
        self._saved = [
            (HFTeacher, "from_pretrained", HFTeacher.from_pretrained), (HFStudent, "from_pretrained", HFStudent.from_pretrained),
            (Generator, "generate_round", Generator.generate_round), (CachedTeacher, "generate", CachedTeacher.generate),
            (CachedTeacher, "close", CachedTeacher.close), (CachedTeacher, "owe_after", CachedTeacher.owe_after),
        ]
        probe = self
        teacher_load, student_load = HFTeacher.from_pretrained.__func__, HFStudent.from_pretrained.__func__
        generate_round, cached_generate, close, owe_after = (
            Generator.generate_round, CachedTeacher.generate, CachedTeacher.close, CachedTeacher.owe_after
        )

        def load_teacher(cls, *a, **k):
            probe.teacher_loads += 1
            return teacher_load(cls, *a, **k)

        def load_student(cls, *a, **k):
            probe.student_loads += 1
            return student_load(cls, *a, **k)

        def timed_round(self, teacher, allocation, quota, ledger, round, *a, **k):
            probe._round = round
            start = time.perf_counter()
            try:
                return generate_round(self, teacher, allocation, quota, ledger, round, *a, **k)
            finally:
                probe.round_s[round] = probe.round_s.get(round, 0.0) + time.perf_counter() - start

        def counted(self, prompts, sampling):
            out = cached_generate(self, prompts, sampling)
            probe.round_calls[probe._round] = probe.round_calls.get(probe._round, 0) + 1
            if probe.crash is not None and probe.crash == (probe._round, probe.round_calls[probe._round]):
                raise Interrupted(f"crash in round {probe._round}")
            return out

        def owing(self, row):
            owe_after(self, row)
            probe._owed = len(self._owed)

        def closing(self):
            probe.cache.append((self.hits, self.misses, probe._owed, len(self._owed)))
            probe._owed = 0
            close(self)

        HFTeacher.from_pretrained = classmethod(load_teacher)
        HFStudent.from_pretrained = classmethod(load_student)
        Generator.generate_round = timed_round
        CachedTeacher.generate = counted
        CachedTeacher.close = closing
        CachedTeacher.owe_after = owing

    def remove(self) -> None:
        """Put the library's entry points back."""
        for owner, name, value in self._saved:
            setattr(owner, name, value)


def _cache_prompts(run_dir: Path) -> set[str]:
    with sqlite3.connect(run_dir / "teacher_cache.sqlite") as db:
        return {k for (k,) in db.execute("SELECT key FROM generations")}


def _ledger(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "ledger.jsonl").read_text().splitlines() if line]


def real_runs(config: Any, tmp: Path, crash_round: int) -> tuple[list[str], float]:
    """Measurement 2 (rounds of a real run) and 3 (the cache on resume); returns the lines
    and the share of the lost work's teacher outputs that the resume took from the cache."""
    probe = Probe()
    probe.install()
    try:
        ref = tmp / "reference"
        start = time.perf_counter()
        summary = runner.run(config, ref, quiet=True)
        ref_s = time.perf_counter() - start
        lines = [
            "",
            f"2b. a real run ({config.run.rounds} rounds, budget {config.budget.total_tokens:,}): {ref_s:.1f} s; "
            f"teacher loaded {probe.teacher_loads}x, student loaded {probe.student_loads}x; "
            f"utility {summary['initial_utility']:.2f} -> {summary['final_utility']:.2f}",
            f"{'round':>7}{'teacher calls':>15}{'generate s':>12}{'vs round 1':>12}",
        ]
        first = probe.round_s[1]
        lines += [f"{t:>7}{probe.round_calls.get(t, 0):>15}{s:>12.2f}{s / first:>12.2f}" for t, s in sorted(probe.round_s.items())]
        later = [s for t, s in probe.round_s.items() if t > 1]
        lines.append(f"  rounds 2+ / round 1 generation time: {statistics.mean(later) / first:.2f} (mean)")

        calls = probe.round_calls[crash_round]
        reference = probe.cache[0]
        probe.round_calls, probe.cache, probe.teacher_loads = {}, [], 0
        d = tmp / "interrupted"
        runner.run(config, d, quiet=True, stop_after_round=crash_round - 1)
        probe.crash = (crash_round, max(1, calls // 2))
        try:
            runner.run(config, d, quiet=True, resume=True)
        except Interrupted:
            pass
        probe.crash = None
        runner.run(config, d, quiet=True, resume=True)
    finally:
        probe.remove()
    processes = [
        ("uninterrupted run (reference)", reference),
        (f"run, stopped after round {crash_round - 1}", probe.cache[0]),
        (f"resume 1, crashed in round {crash_round} after {max(1, calls // 2)} of {calls} calls", probe.cache[1]),
        ("resume 2, to the end", probe.cache[2]),
    ]
    lines += [
        "",
        f"3. teacher cache on a resumed run (the interrupted run's 3 processes loaded the teacher {probe.teacher_loads}x, once each)",
        f"{'process':<58}{'asked':>7}{'generated':>11}{'cached':>8}{'lost work':>11}{'hit rate':>10}",
    ]
    for label, (hits, misses, owed, unused) in processes:
        asked = hits + misses
        lines.append(f"{label:<58}{asked:>7}{misses:>11}{hits:>8}{f'{owed - unused}/{owed}':>11}{hits / max(1, asked):>10.2f}")
    ref_rows, rows = _ledger(ref), _ledger(d)
    gen = [r for r in rows if r["phase"] == "teacher_gen"]
    fresh = sum(r["tokens"] for r in gen if not r["cached"])
    ref_fresh = sum(r["tokens"] for r in ref_rows if r["phase"] == "teacher_gen" and not r["cached"])
    generated = sum(misses for _, (_, misses, _, _) in processes[1:])
    owed = sum(o for _, (_, _, o, _) in processes[1:])
    reused = sum(o - u for _, (_, _, o, u) in processes[1:])
    lines += [
        "  cached: answered from the cache, no teacher call; lost work: cached outputs of work that never committed, "
        "reused / marked at resume",
        f"teacher generations over the 3 processes: {generated} (uninterrupted: {reference[1]}); ledger rows equal to the "
        f"uninterrupted run's: {rows == ref_rows}; cached prompts equal: {_cache_prompts(d) == _cache_prompts(ref)}",
        f"ledger: {len(gen)} teacher generations, {sum(r['cached'] for r in gen)} charged as cached (prompts drawn again "
        f"within the run), {fresh:,} fresh teacher tokens (uninterrupted: {ref_fresh:,})",
        f"lost work taken from the cache on resume: {reused}/{owed} = {reused / max(1, owed):.2f}; prompts paid twice: "
        f"{generated - reference[1]}",
    ]
    return lines, reused / max(1, owed)


def main() -> None:
    """Measure and print."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quota", type=int, default=2_500, help="billable tokens of the throughput round's teacher examples")
    p.add_argument("--rounds", type=int, default=4, help="rounds of the real runs (measurements 2 and 3)")
    p.add_argument("--budget", type=int, default=40_000, help="budget of the real runs, in tokens")
    p.add_argument("--crash-round", type=int, default=3, help="round the interrupted run crashes in (>= 2)")
    a = p.parse_args()
    if not 2 <= a.crash_round <= a.rounds:
        p.error("--crash-round must be in 2..--rounds")
    print("command:", shlex.join([sys.executable, *sys.argv]), flush=True)
    config = load_config(CONFIG, [f"run.rounds={a.rounds}", f"budget.total_tokens={a.budget}", "run.report=false"])
    world = runner.make_world(config)
    lines, ratios = throughput(world, config, a.quota)
    print("\n".join(lines), flush=True)
    with tempfile.TemporaryDirectory(prefix="rd-generation-") as tmp:
        lines, reused = real_runs(config, Path(tmp), a.crash_round)
    print("\n".join(lines))
    print(f"\nheadline: batched teacher generation {ratios['uniform']:.2f}x naive per-prompt model.generate in new tokens/s "
          f"(uniform allocation; {' '.join(f'{k}: {v:.2f}x' for k, v in ratios.items() if k != 'uniform')}); "
          f"resume took {reused:.0%} of the lost work from the cache")


if __name__ == "__main__":
    main()

"""The round loop (SPEC §2), written out in one function, and resume from the run dir.

A run directory is the only state. A round counts once ``state.json`` names it; a run
stopped anywhere resumes at the first uncommitted round, reusing that round's saved
examples so the teacher is never paid twice, and ends exactly as an uninterrupted run.
"""

from __future__ import annotations

import importlib
import json
import platform
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from read_distill import __version__
from read_distill.backends.base import Student, World
from read_distill.config import Config, ConfigError, dump_config
from read_distill.generate import Generator
from read_distill.ledger import Ledger, round_quota
from read_distill.policies import make_policy
from read_distill.policies.base import Pilot, candidate_actions
from read_distill.rewards import reward
from read_distill.store import read_json, write_json, write_text
from read_distill.tasks import card_requirement
from read_distill.types import Allocation, Context, Example, PilotResult, Profile, TrainStats

#: world.kind -> "module:function" building the World from the config (imported on use).
WORLDS: dict[str, str] = {
    "sim": "read_distill.sim.environments:make_world",
    "micro": "read_distill.world.micro:make_world",
    "hf": "read_distill.backends.hf_world:make_world",
}

#: Round index under which the initial probe/evaluation and the final evaluation are charged.
INITIAL, FINAL = -1, 10**6


class RunDirError(ConfigError):
    """The run directory cannot be used as asked (exists without --resume, or is foreign)."""


def make_world(config: Config) -> World:
    """The World named by ``config.world.kind``."""
    module, attr = WORLDS[config.world.kind].split(":")
    return getattr(importlib.import_module(module), attr)(config)


def _env() -> dict[str, Any]:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    versions = {"read_distill": __version__, "python": platform.python_version(), "numpy": np.__version__}
    for name in ("torch", "transformers"):
        if name in sys.modules:
            versions[name] = getattr(sys.modules[name], "__version__", "")
    return {"versions": versions, "git_sha": sha, "platform": platform.platform()}


def _round_dir(run_dir: Path, t: int) -> Path:
    return run_dir / "rounds" / f"{t:04d}"


def _commit_student(student: Student, run_dir: Path, t: int) -> None:
    """Save the student as ``student/``, keeping the previous checkpoint as ``student.prev``
    until the new one is complete, so a crash at any point leaves a usable checkpoint."""
    tmp, cur, prev = run_dir / "student.tmp", run_dir / "student", run_dir / "student.prev"
    shutil.rmtree(tmp, ignore_errors=True)
    student.save(tmp)
    write_json(tmp / "round.json", {"round": t})
    shutil.rmtree(prev, ignore_errors=True)
    if cur.exists():
        cur.rename(prev)
    tmp.rename(cur)


def _restore_student(student: Student, run_dir: Path, t: int) -> None:
    for d in (run_dir / "student", run_dir / "student.prev"):
        if (d / "round.json").exists() and read_json(d / "round.json")["round"] == t:
            student.load(d)
            return
    raise RunDirError(f"{run_dir}: no student checkpoint for committed round {t}; the run dir is damaged")


class Progress:
    """One line per event on stderr; silent when ``quiet``."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(message, file=sys.stderr, flush=True)


def _fmt_alloc(capabilities: tuple[str, ...], w: Allocation) -> str:
    return " ".join(f"{c[:4]}={x:.2f}" for c, x in zip(capabilities, w, strict=True) if x > 0)


def make_pilot(config: Config, world: World, requirement: tuple[float, ...], s0: list[float], ledger: Ledger) -> Pilot:
    """Pilot runs for policies that profile (SPEC §6 pre-training, grid search): a short
    distillation from S0 with one fixed allocation on a slice of the profiling budget,
    charged to the run's ledger as ``profiling`` overhead, outside B. Together the pilots
    never get more than ``policy.profiling_tokens``."""
    capabilities = world.capabilities
    calls = {"n": 0, "left": config.policy.profiling_tokens}

    def pilot(allocation: Allocation, tokens: int) -> PilotResult:
        tokens = min(int(tokens), calls["left"])
        if tokens <= 0:
            raise ValueError(f"policy.profiling_tokens: the profiling budget of {config.policy.profiling_tokens:,} tokens is spent")
        calls["n"] += 1
        calls["left"] -= tokens
        private = Ledger(None, tokens, config.budget.unit)
        # Each pilot gets its own seed: pilots that shared the main run's draws would
        # compare candidates without the training and probe noise the run itself faces.
        pilot_seed = config.run.seed * 1_000_003 + 7919 + calls["n"]
        student = world.student(pilot_seed)
        generator = Generator(world, config.generation, pilot_seed)
        teacher = world.teacher()
        before = s0
        for t in range(config.policy.pilot_rounds):
            rng = np.random.default_rng([config.run.seed, 7919, calls["n"], t])
            quota = round_quota(private.remaining, config.policy.pilot_rounds - t)
            examples = generator.generate_round(teacher, allocation, quota, private, t, t / config.policy.pilot_rounds, rng)
            student.fit(examples, quota - private.spent_in_round(t), private, t)
        after = world.probe(student, private, config.policy.pilot_rounds).vector(capabilities)
        ledger.charge(INITIAL, "profiling", sum(e.tokens for e in private.entries), 0)
        context = Context(
            requirement=requirement,
            profile_frac=tuple(x / 100 for x in before),
            remaining_frac=1.0,
            last_allocation=(0.0,) * len(capabilities),
            last_gain=(0.0,) * len(capabilities),
            profile_width_frac=(0.0,) * len(capabilities),
        )
        round_tokens = config.budget.total_tokens // config.run.rounds
        scale = round_tokens / max(1, private.spent)
        gain = tuple((a - b) * scale for b, a in zip(before, after, strict=True))
        scaled = [b + g for b, g in zip(before, gain, strict=True)]
        r = reward(requirement, before, scaled, round_tokens, config.reward.beta, config.reward.lambda_per_token, config.reward.top_k)[0]
        return PilotResult(context=context, gain=gain, reward=r, scale=scale, tokens=private.spent)

    return pilot


def _load_examples(path: Path) -> list[Example]:
    return [Example.from_json(json.loads(line)) for line in path.read_text().splitlines() if line]


def _replay_examples(world: World, ledger: Ledger, tokens: int, seed: int) -> list[Example]:
    """Examples of the world's general replay mixture costing about ``tokens`` billable tokens."""
    replay = getattr(world, "replay", None)
    if replay is None:
        raise ConfigError(f"train.replay_frac: the {type(world).__name__} world has no replay mixture; set train.replay_frac=0")
    out: list[Example] = []
    total = i = 0
    while total < tokens:
        batch = replay(seed, i, 16)
        i += len(batch)
        for e in batch:
            if total >= tokens:
                break
            out.append(e)
            total += ledger.billable("train", e.prompt_tokens, e.completion_tokens)
    return out


def _interleave(teacher: list[Example], replay: list[Example]) -> list[Example]:
    """Spread replay examples evenly among the teacher's, keeping both orders (each example
    sits at the middle of its share of its own list; ties go to the teacher)."""
    keyed = [((i + 0.5) / len(teacher), 0, e) for i, e in enumerate(teacher)]
    keyed += [((i + 0.5) / len(replay), 1, e) for i, e in enumerate(replay)]
    return [e for _, _, e in sorted(keyed, key=lambda x: (x[0], x[1]))]


#: Generate→train passes per round at most. Training may bill fewer tokens than generation
#: estimated (a student tokenizer, a `resp` signal, truncation); later passes top the round
#: up to its quota.
MAX_PASSES = 4


def _generate_and_train(config: Config, generator: Generator, teacher, student: Student, ledger: Ledger, rd: Path, t: int, w: Allocation, quota: int, wall: dict[str, float]) -> TrainStats:
    """Fill round ``t``'s quota: generate examples for what is left, train on them, repeat.

    Each pass's examples and training quota are saved (``examples.jsonl`` holds the passes
    in order, ``passes.json`` their sizes and quotas) before training, so a resumed round
    replays the same passes without calling the teacher and ends as an uninterrupted one.
    """
    examples_path, passes_path = rd / "examples.jsonl", rd / "passes.json"
    saved: list[Example] = []
    passes: list[dict[str, int]] = []
    if passes_path.exists() and examples_path.exists():
        saved = _load_examples(examples_path)
        passes = read_json(passes_path)
    all_stats: list[TrainStats] = []
    start = 0
    for k in range(MAX_PASSES):
        if k < len(passes):
            examples = saved[start : start + passes[k]["examples"]]
            start += passes[k]["examples"]
            fit_quota = passes[k]["fit_quota"]
            generator.cap.load_state_dict(passes[k]["template_window"])
        else:
            left = quota - ledger.spent_in_round(t)
            if left <= 0 or (all_stats and all_stats[-1].billable_tokens == 0):
                break
            tick = time.perf_counter()
            spent_frac = 1.0 - ledger.remaining / config.budget.total_tokens
            # The first pass keeps replay_frac of the quota for replay data; later passes
            # only top up with teacher examples.
            replay_tokens = int(left * config.train.replay_frac) if k == 0 else 0
            examples = generator.generate_round(teacher, w, left - replay_tokens, ledger, t, spent_frac, np.random.default_rng([config.run.seed, t, 1 + k]))
            if replay_tokens:
                examples = _interleave(examples, _replay_examples(generator.world, ledger, replay_tokens, config.run.seed * 1_000_003 + t))
            fit_quota = quota - ledger.spent_in_round(t)
            saved += examples
            # The share cap's windows count every draw, used or not; keep them to replay.
            passes.append({"examples": len(examples), "fit_quota": fit_quota, "template_window": generator.cap.state_dict()})
            write_text(examples_path, "".join(json.dumps(e.to_json()) + "\n" for e in saved))
            write_json(passes_path, passes)
            wall["generate"] += time.perf_counter() - tick
        tick = time.perf_counter()
        all_stats.append(student.fit(examples, fit_quota, ledger, t))
        wall["train"] += time.perf_counter() - tick
    spend: dict[str, int] = defaultdict(int)
    for st in all_stats:
        for c, v in st.spend_per_capability.items():
            spend[c] += v
    n = sum(st.examples for st in all_stats)
    return TrainStats(
        examples=n,
        trained_tokens=sum(st.trained_tokens for st in all_stats),
        billable_tokens=sum(st.billable_tokens for st in all_stats),
        optimizer_steps=sum(st.optimizer_steps for st in all_stats),
        mean_loss=sum(st.mean_loss * st.examples for st in all_stats) / n if n else 0.0,
        spend_per_capability=dict(spend),
    )


def run(
    config: Config,
    run_dir: Path,
    world: World | None = None,
    resume: bool = False,
    quiet: bool = False,
    stop_after_round: int | None = None,
) -> dict[str, Any]:
    """Run ReAD (or any policy) as ``config`` says, in ``run_dir``; return the summary.

    ``resume`` continues a stopped run in ``run_dir``; without it an existing non-empty
    ``run_dir`` is refused. ``stop_after_round`` ends the process-level loop after that
    round is committed (as a kill would), which tests use to check resume.
    """
    say = Progress(quiet)
    run_dir = Path(run_dir)
    state_path = run_dir / "state.json"
    if run_dir.exists() and any(run_dir.iterdir()) and not resume:
        raise RunDirError(f"{run_dir}: run directory exists; pass --resume to continue it or choose another --run-dir")
    if resume and not (run_dir / "config.yaml").exists():
        raise RunDirError(f"{run_dir}: nothing to resume (no config.yaml)")
    run_dir.mkdir(parents=True, exist_ok=True)
    if resume:
        saved = (run_dir / "config.yaml").read_text()
        if saved != dump_config(config):
            raise RunDirError(f"{run_dir}/config.yaml: differs from the config given; resume with the same config")
    else:
        write_text(run_dir / "config.yaml", dump_config(config))
        write_json(run_dir / "env.json", {**_env(), "seed": config.run.seed})

    wall: dict[str, float] = defaultdict(float)
    t0 = time.perf_counter()
    world = world or make_world(config)
    capabilities = world.capabilities
    if tuple(config.capabilities) != tuple(capabilities):
        raise ConfigError(f"capabilities: the world has {list(capabilities)}, the config {list(config.capabilities)}")
    requirement = card_requirement(world.card, capabilities, config.task.requirement)
    seed, rounds, B = config.run.seed, config.run.rounds, config.budget.total_tokens
    ledger = Ledger(run_dir / "ledger.jsonl", B, config.budget.unit)
    teacher = world.teacher()
    if config.world.kind != "sim":
        from read_distill.backends.cache import CachedTeacher

        # Every teacher output is kept, so a resumed or repeated round never pays twice.
        teacher = CachedTeacher(teacher, run_dir / "teacher_cache.sqlite")
    student = world.student(seed)
    generator = Generator(world, config.generation, seed)
    policy = make_policy(config.policy, capabilities, requirement)
    wall["setup"] += time.perf_counter() - t0

    state: dict[str, Any] | None = read_json(state_path) if state_path.exists() else None
    if state is None:
        # Fresh start (or a crash before the initial probe committed): begin from nothing.
        ledger.truncate(lambda e: False)
        t = time.perf_counter()
        profile0 = world.probe(student, ledger, INITIAL)
        wall["probe"] += time.perf_counter() - t
        t = time.perf_counter()
        initial_utility = world.evaluate(student, "test", ledger, INITIAL)
        initial_dev = world.evaluate(student, "dev", ledger, INITIAL)
        wall["eval"] += time.perf_counter() - t
        say(f"[read-distill] {world.card.name}: initial utility {initial_utility:.2f}, budget {B:,} tokens, {rounds} rounds, policy {config.policy.name}")
        if config.policy.profiling_tokens > 0:
            t = time.perf_counter()
            say(f"[read-distill] profiling: pilot runs on {config.policy.profiling_tokens:,} overhead tokens")
            pilot = make_pilot(config, world, requirement, profile0.vector(capabilities), ledger)
            policy.prepare(pilot, candidate_actions(requirement, None, config.policy.top_k, config.policy.grid, config.policy.max_actions), np.random.default_rng([seed, 104729]))
            wall["profiling"] += time.perf_counter() - t
        state = {
            "round": INITIAL,
            "initial_profile": profile0.to_json(),
            "profile": profile0.to_json(),
            "initial_utility": initial_utility,
            "dev": [[INITIAL, initial_dev]],
            "best_dev": initial_dev,
            "cum_reward": 0.0,
            "proxy_at_dev": [],
            "gain_at_dev": [],
            "last_allocation": [0.0] * len(capabilities),
            "last_gain": [0.0] * len(capabilities),
            "template_window": generator.cap.state_dict(),
            "wall_s": dict(wall),
        }
        _commit_student(student, run_dir, INITIAL)
        write_json(run_dir / "policy.json", policy.state_dict())
        ledger.sync()
        write_json(state_path, state)
        wall.clear()
    else:
        committed = state["round"]
        pending = _round_dir(run_dir, committed + 1) / "passes.json"
        # Drop charges of work that never committed, except the teacher calls whose
        # examples were saved: those are reused, so their charges stand.
        ledger.truncate(
            lambda e: e.round <= committed
            or (e.round == committed + 1 and e.phase in ("teacher_prompt", "teacher_gen") and pending.exists())
        )
        _restore_student(student, run_dir, committed)
        generator.cap.load_state_dict(state["template_window"])
        policy.load_state_dict(read_json(run_dir / "policy.json"))
        say(f"[read-distill] resuming {run_dir} after round {committed}")

    profile = Profile.from_json(state["profile"])
    s = profile.vector(capabilities)
    for t in range(state["round"] + 1, rounds):
        rd = _round_dir(run_dir, t)
        quota = round_quota(ledger.remaining, rounds - t)
        context = Context(
            requirement=requirement,
            profile_frac=tuple(x / 100 for x in s),
            remaining_frac=ledger.remaining / B,
            last_allocation=tuple(state["last_allocation"]),
            last_gain=tuple(state["last_gain"]),
            profile_width_frac=tuple(x / 100 for x in profile.widths(capabilities)),
        )
        w_prev = tuple(state["last_allocation"]) if t > 0 else None
        actions = candidate_actions(requirement, w_prev, config.policy.top_k, config.policy.grid, config.policy.max_actions)
        rng = np.random.default_rng([seed, t])
        tick = time.perf_counter()
        w = policy.select(context, actions, rng)
        info = dict(policy.info)
        wall["policy"] += time.perf_counter() - tick

        stats = _generate_and_train(config, generator, teacher, student, ledger, rd, t, w, quota, wall)

        tick = time.perf_counter()
        new_profile = world.probe(student, ledger, t)
        wall["probe"] += time.perf_counter() - tick
        s_new = new_profile.vector(capabilities)
        spent = ledger.spent_in_round(t)
        R, g, spill, cost = reward(requirement, s, s_new, spent, config.reward.beta, config.reward.lambda_per_token, config.reward.top_k)
        tick = time.perf_counter()
        policy.update(context, w, R)
        wall["policy"] += time.perf_counter() - tick
        state["cum_reward"] += R

        dev_utility = None
        if (t + 1) % config.run.dev_every == 0 or t == rounds - 1:
            tick = time.perf_counter()
            dev_utility = world.evaluate(student, "dev", ledger, t)
            wall["eval"] += time.perf_counter() - tick
            state["dev"].append([t, dev_utility])
            state["proxy_at_dev"].append(state["cum_reward"])
            state["gain_at_dev"].append(dev_utility - state["dev"][0][1])
            improved = dev_utility > state["best_dev"]
            state["best_dev"] = max(state["best_dev"], dev_utility)
            policy.on_dev_eval(list(state["proxy_at_dev"]), list(state["gain_at_dev"]), improved)

        write_json(rd / "allocation.json", {"round": t, "allocation": dict(zip(capabilities, w, strict=True)), "quota_tokens": quota, "candidates": len(actions), "policy_info": info})
        write_json(rd / "profile.json", new_profile.to_json())
        write_json(
            rd / "reward.json",
            {
                "round": t,
                "reward": R,
                "gain": g,
                "spillover": spill,
                "cost_penalty": cost,
                "spent_tokens": spent,
                "spend_per_capability": stats.spend_per_capability,
                "trained_tokens": stats.trained_tokens,
                "mean_loss": stats.mean_loss,
                "dev_utility": dev_utility,
            },
        )
        tick = time.perf_counter()
        _commit_student(student, run_dir, t)
        wall["checkpoint"] += time.perf_counter() - tick
        write_json(run_dir / "policy.json", policy.state_dict())
        state.update(
            round=t,
            profile=new_profile.to_json(),
            last_allocation=list(w),
            last_gain=[(b - a) / 100 for a, b in zip(s, s_new, strict=True)],
            template_window=generator.cap.state_dict(),
            wall_s={k: state["wall_s"].get(k, 0.0) + wall.get(k, 0.0) for k in set(state["wall_s"]) | set(wall)},
        )
        wall.clear()
        ledger.sync()
        write_json(state_path, state)  # the commit point of round t
        profile, s = new_profile, s_new
        dev_note = f"  U_dev {dev_utility:.2f}" if dev_utility is not None else ""
        say(
            f"round {t + 1:>2}/{rounds}  {_fmt_alloc(capabilities, w):<40}  spent {B - ledger.remaining:>11,}/{B:,}"
            f"  reward {R:+.3f}  gain {g:+.2f}  spill {spill:.2f}{dev_note}"
        )
        if stop_after_round is not None and t >= stop_after_round:
            ledger.close()
            return {"stopped_after_round": t}

    return _finish(config, run_dir, world, student, ledger, state, capabilities, say)


def _finish(config: Config, run_dir: Path, world: World, student: Student, ledger: Ledger, state: dict[str, Any], capabilities: tuple[str, ...], say: Callable[[str], None]) -> dict[str, Any]:
    """Final test utility and full profile; ``summary.json``."""
    summary_path = run_dir / "summary.json"
    if summary_path.exists():
        return read_json(summary_path)
    ledger.truncate(lambda e: e.round != FINAL)
    wall: dict[str, float] = defaultdict(float)
    tick = time.perf_counter()
    final_profile = world.probe(student, ledger, FINAL)
    wall["probe"] += time.perf_counter() - tick
    tick = time.perf_counter()
    final_utility = world.evaluate(student, "test", ledger, FINAL)
    wall["eval"] += time.perf_counter() - tick
    allocations, profiles = [], [Profile.from_json(state["initial_profile"]).scores]
    for t in range(config.run.rounds):
        rd = _round_dir(run_dir, t)
        allocations.append(read_json(rd / "allocation.json")["allocation"])
        profiles.append(read_json(rd / "profile.json")["scores"])
    wall_s = {k: state["wall_s"].get(k, 0.0) + wall.get(k, 0.0) for k in set(state["wall_s"]) | set(wall)}
    summary = {
        "task": world.card.name,
        "policy": config.policy.name,
        "seed": config.run.seed,
        "budget_tokens": config.budget.total_tokens,
        "budget_unit": config.budget.unit,
        "initial_utility": state["initial_utility"],
        "final_utility": final_utility,
        "initial_profile": Profile.from_json(state["initial_profile"]).scores,
        "final_profile": final_profile.scores,
        "final_intervals": {k: list(v) for k, v in final_profile.intervals.items()},
        "dev_utility": state["dev"],
        "allocations": allocations,
        "profiles": profiles,
        "ledger": ledger.totals(),
        "wall_s": dict(sorted(wall_s.items())),
    }
    ledger.close()
    write_json(summary_path, summary)
    try:
        from read_distill.report import write_report

        say(f"[read-distill] report: {write_report([run_dir])}")
    except Exception as e:  # noqa: BLE001 - a report bug must not fail a finished run
        say(f"[read-distill] warning: report.html not written: {e}")
    say(
        f"[read-distill] done: utility {summary['initial_utility']:.2f} -> {final_utility:.2f}; "
        f"spent {ledger.spent:,}/{ledger.budget_tokens:,} billable tokens; summary in {summary_path}"
    )
    return summary

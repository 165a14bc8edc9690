"""The round loop (docs/method.md §2), written out in one function, and resume from the run dir.

A run directory is the only state. A round counts once ``state.json`` names it; a run
stopped anywhere resumes at the first uncommitted round, reusing that round's saved
examples so the teacher is never paid twice, and ends exactly as an uninterrupted run.
"""

from __future__ import annotations

import errno
import importlib
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from read_distill import __version__, ranks
from read_distill.backends.base import Student, World
from read_distill.config import Config, ConfigError, dump_config
from read_distill.generate import Generator
from read_distill.graders.sandbox import allow_fallback
from read_distill.ledger import Ledger, round_quota, teacher_tokens
from read_distill.policies import make_policy
from read_distill.policies.actions import candidate_actions
from read_distill.policies.base import Pilot
from read_distill.preflight import check_inputs
from read_distill.probes import sequential_view
from read_distill.rewards import broken_floors, floor_scores, reward
from read_distill.rundir import RunDirError, check_run_dir, clear_run_dir, hold_run_dir
from read_distill.store import read_json, remove_temporaries, write_json, write_text
from read_distill.tasks import card_floors, card_requirement, requirement_source
from read_distill.teachers import Teachers
from read_distill.tracking import Tracker
from read_distill.types import Allocation, Context, Example, PilotResult, Profile, TrainStats

#: world.kind -> "module:function" building the World from the config (imported on use).
WORLDS: dict[str, str] = {
    "sim": "read_distill.sim.environments:make_world",
    "micro": "read_distill.world.micro:make_world",
    "hf": "read_distill.hf_world:make_world",
}

#: Round number under which the initial probe/evaluation and the final evaluation are charged.
INITIAL, FINAL = 0, 10**6
#: Keys of summary.json that measure the machine a run ran on, not the run: they differ
#: between a resumed run and an uninterrupted one, everything else is equal.
MEASURED = ("wall_s", "peak_memory_mb", "peak_memory_mb_per_rank")


def make_world(config: Config) -> World:
    """The World named by ``config.world.kind``."""
    allow_fallback(config.grader.sandbox_fallback)
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


def _checkpoint_round(directory: Path) -> int | None:
    """The round whose student ``directory`` holds, None if it holds none."""
    return read_json(directory / "round.json")["round"] if (directory / "round.json").exists() else None


def _commit_checkpoint(student: Student, policy_state: dict[str, Any], run_dir: Path, t: int) -> None:
    """Save round ``t``'s student and policy state as ``student/``. The checkpoint of the
    last committed round (t - 1) stays, as ``student/`` or ``student.prev/``, until the new
    one is complete, so a crash at any point leaves it.

    Every rank calls it (a sharded student gathers its weights in ``save``); the controller
    alone writes."""
    tmp, cur, prev = run_dir / "student.tmp", run_dir / "student", run_dir / "student.prev"
    if ranks.is_controller():
        shutil.rmtree(tmp, ignore_errors=True)
    student.save(tmp)
    if not ranks.is_controller():
        return
    # The policy state goes with the student: a policy.json of its own, written beside
    # state.json, would be a round ahead of it after a crash between the two.
    write_json(tmp / "policy.json", policy_state)
    write_json(tmp / "round.json", {"round": t})
    if _checkpoint_round(cur) == t - 1:
        shutil.rmtree(prev, ignore_errors=True)
        cur.rename(prev)
    else:
        # After a crash in an earlier attempt at this commit, student/ is missing or holds
        # that attempt's round t, and student.prev/ holds round t - 1: keep it.
        shutil.rmtree(cur, ignore_errors=True)
    tmp.rename(cur)


def _restore_student(student: Student, run_dir: Path, t: int) -> Path:
    """Load the student checkpoint of committed round ``t``; its directory."""
    for d in (run_dir / "student", run_dir / "student.prev"):
        if _checkpoint_round(d) == t:
            student.load(d)
            return d
    raise RunDirError(f"{run_dir}: no student checkpoint for committed round {t}; the run dir is damaged")


def _restore_checkpoint(student: Student, policy: Any, run_dir: Path, t: int) -> None:
    d = _restore_student(student, run_dir, t)
    # Run dirs of older versions kept the policy state in the run dir's policy.json.
    policy.load_state_dict(read_json(d / "policy.json" if (d / "policy.json").exists() else run_dir / "policy.json"))


class Progress:
    """One line per event on stderr; silent when ``quiet``."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(message, file=sys.stderr, flush=True)


def _fmt_alloc(capabilities: tuple[str, ...], w: Allocation) -> str:
    return " ".join(f"{c[:4]}={x:.2f}" for c, x in zip(capabilities, w, strict=True) if x > 0)


def distil_fixed(
    config: Config,
    world: World,
    allocation: Allocation,
    tokens: int,
    rounds: int,
    seed: int,
    rng_key: tuple[int, ...],
    replay: bool = False,
    prompt_world: World | None = None,
) -> tuple[Student, Ledger]:
    """A short distillation of a fresh copy of S0 with one fixed ``allocation`` on ``tokens``
    billable tokens over ``rounds`` rounds, charged to a private ledger (its budget is
    ``tokens``, so the learning-rate schedule spans the short distillation): the engine of
    pilots (``make_pilot``) and of the requirement identifier's interventions
    (``read_distill.requirement.collect``). ``seed`` seeds the student and the generator;
    round ``t`` draws with ``rng_key + (t,)``. ``replay`` keeps ``train.replay_frac`` of
    each round for the world's replay mixture, as a run does (pilots have none).
    ``prompt_world`` (default ``world``) says which evaluation prompts training must not
    repeat. Returns the student and the private ledger."""
    private = Ledger(None, tokens, config.budget.unit)
    student = world.student(seed)
    generator = Generator(prompt_world or world, config.generation, seed)
    teachers = world.teachers().map(ranks.shared)
    for t in range(rounds):
        rng = np.random.default_rng([*rng_key, t])
        quota = round_quota(private.remaining, rounds - t)
        replay_tokens = int(quota * config.train.replay_frac) if replay else 0
        examples = generator.generate_round(teachers, allocation, quota - replay_tokens, private, t, t / rounds, rng)
        if replay_tokens:
            examples = _interleave(examples, _replay_examples(world, private, replay_tokens, seed * 1_000_003 + t))
        student.fit(examples, quota - private.spent_in_round(t), private, t)
    return student, private


def make_pilot(config: Config, world: World, requirement: tuple[float, ...], s0: list[float], ledger: Ledger) -> Pilot:
    """Pilot runs for policies that profile (docs/method.md §6 pilots, §7 grid search): a short
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
        # Each pilot gets its own seed: pilots that shared the main run's draws would
        # compare candidates without the training and probe noise the run itself faces.
        pilot_seed = config.run.seed * 1_000_003 + 7919 + calls["n"]
        student, private = distil_fixed(
            config, world, allocation, tokens, config.policy.pilot_rounds, pilot_seed, (config.run.seed, 7919, calls["n"])
        )
        before = s0
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


class _StudentWriter:
    """The student in the teacher's place, for ``train.signal=on_policy``: the round's text
    is its own samples (charged where teacher text would be, as the teacher scores each of
    those tokens), drawn with the round's weights and ``seed``, so a resumed pass redraws
    the same text."""

    name = "student (on-policy)"

    def __init__(self, student: Any, seed: int) -> None:
        self.student, self.seed = student, seed

    def generate(self, prompts: list[str], sampling: dict[str, Any]) -> list[Any]:
        return self.student.sample(prompts, int(sampling["max_new_tokens"]), self.seed)


def _generate_and_train(parts: Parts, rd: Path, t: int, w: Allocation, quota: int) -> tuple[TrainStats, dict[str, int]]:
    """Fill round ``t``'s quota: generate examples for what is left, train on them, repeat.

    Each pass's examples and training quota are saved (``examples.jsonl`` holds the passes
    in order, ``passes.json`` their sizes, quotas and leakage counts) before training, so a
    resumed round replays the same passes without calling the teacher and ends as an
    uninterrupted one. Returns the training stats and the round's leakage counts (draws
    that matched an evaluation prompt, examples dropped for it).
    """
    config, generator, ledger, student = parts.config, parts.generator, parts.ledger, parts.student
    examples_path, passes_path = rd / "examples.jsonl", rd / "passes.json"
    saved: list[Example] = []
    passes: list[dict[str, Any]] = []
    if passes_path.exists() and examples_path.exists():
        passes = read_json(passes_path)
        # examples.jsonl is written before passes.json: a kill between the two leaves the
        # examples of a pass that passes.json does not list, which is generated again.
        saved = _load_examples(examples_path)[: sum(p["examples"] for p in passes)]
    all_stats: list[TrainStats] = []
    leakage = {"collisions": 0, "dropped": 0}
    start = 0
    for k in range(MAX_PASSES):
        if k < len(passes):
            examples = saved[start : start + passes[k]["examples"]]
            start += passes[k]["examples"]
            fit_quota = passes[k]["fit_quota"]
            generator.cap.load_state_dict(passes[k]["template_window"])
            # The pass's teacher charges, where an uninterrupted run made them (passes saved
            # by an older version kept theirs in the ledger instead).
            for c in passes[k].get("charges", ()):
                ledger.charge(t, c["phase"], c["tokens"], c["billable"], c["cached"], c.get("teacher"))
            # Passes saved before leakage was counted (an older run resumed) count none.
            for key, n in passes[k].get("leakage", {}).items():
                leakage[key] += n
        else:
            left = quota - ledger.spent_in_round(t)
            if left <= 0 or (all_stats and all_stats[-1].billable_tokens == 0):
                break
            with parts.wall("generate"):
                first_charge = len(ledger.entries)
                spent_frac = 1.0 - ledger.remaining / config.budget.total_tokens
                # The first pass keeps replay_frac of the quota for replay data; later passes
                # only top up with teacher examples.
                replay_tokens = int(left * config.train.replay_frac) if k == 0 else 0
                rng = np.random.default_rng([config.run.seed, t, 1 + k])
                writer = (
                    Teachers(_StudentWriter(student, config.run.seed * 1_000_003 + t * 1_009 + k))
                    if config.train.signal == "on_policy" else parts.teachers
                )
                examples = generator.generate_round(writer, w, left - replay_tokens, ledger, t, spent_frac, rng)
                if replay_tokens:
                    replay = _replay_examples(parts.world, ledger, replay_tokens, config.run.seed * 1_000_003 + t)
                    examples = _interleave(examples, replay)
                fit_quota = quota - ledger.spent_in_round(t)
                saved += examples
                leaks = generator.drain_leak_counts()
                for key, n in leaks.items():
                    leakage[key] += n
                # The share cap's windows count every draw, used or not; keep them to replay.
                # A resume replays this pass from here: its charges (the ledger's copy is
                # dropped with the round's uncommitted work) and the teacher cache's newest row
                # (entries after it belong to work that was not saved; see _resume).
                passes.append({
                    "examples": len(examples), "fit_quota": fit_quota, "template_window": generator.cap.state_dict(), "leakage": leaks,
                    "charges": [{k: v for k, v in asdict(e).items() if k != "round"} for e in ledger.entries[first_charge:]],
                    "cache_rows": _cache_rows(parts),
                })
                write_text(examples_path, "".join(json.dumps(e.to_json()) + "\n" for e in saved))
                write_json(passes_path, passes)
        with parts.wall("train"):
            all_stats.append(student.fit(examples, fit_quota, ledger, t))
    spend: dict[str, int] = defaultdict(int)
    for st in all_stats:
        for c, v in st.spend_per_capability.items():
            spend[c] += v
    n = sum(st.examples for st in all_stats)
    stats = TrainStats(
        examples=n,
        trained_tokens=sum(st.trained_tokens for st in all_stats),
        billable_tokens=sum(st.billable_tokens for st in all_stats),
        optimizer_steps=sum(st.optimizer_steps for st in all_stats),
        mean_loss=sum(st.mean_loss * st.examples for st in all_stats) / n if n else 0.0,
        spend_per_capability=dict(spend),
        steps=[step for st in all_stats for step in st.steps],
    )
    return stats, leakage


@dataclass
class RunState:
    """What ``state.json`` holds: everything past rounds leave to the next one, so a resumed
    run continues exactly where the last committed round ended."""

    #: The last committed round; 0 when only the initial probe is committed.
    round: int
    initial_profile: Profile
    profile: Profile
    initial_utility: float
    #: (round, dev utility) at every dev checkpoint, the initial one (round 0) first.
    dev: list[tuple[int, float]]
    best_dev: float
    cum_reward: float
    #: Cumulative proxy reward and dev-utility gain at each dev checkpoint after round 0.
    proxy_at_dev: list[float]
    gain_at_dev: list[float]
    last_allocation: tuple[float, ...]
    #: Last round's per-capability score change / 100.
    last_gain: tuple[float, ...]
    template_window: dict[str, Any]
    wall_s: dict[str, float]
    #: Peak memory per phase in MiB (see ``Wall``); empty in a state of an older version.
    peak_mb: dict[str, float] = field(default_factory=dict)
    #: The teacher cache's newest row at the commit (None without a cache, or in a state
    #: written by an older version); see ``_resume``.
    teacher_cache_rows: int | None = None

    def context(
        self, requirement: tuple[float, ...], capabilities: tuple[str, ...], remaining_frac: float, answer_form: tuple[float, ...]
    ) -> Context:
        """The bandit context of the next round."""
        return Context(
            requirement=requirement,
            profile_frac=tuple(x / 100 for x in self.profile.vector(capabilities)),
            remaining_frac=remaining_frac,
            last_allocation=self.last_allocation,
            last_gain=self.last_gain,
            profile_width_frac=tuple(x / 100 for x in self.profile.widths(capabilities)),
            answer_form=answer_form,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "initial_profile": self.initial_profile.to_json(),
            "profile": self.profile.to_json(),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RunState:
        return cls(**{
            **d,
            "initial_profile": Profile.from_json(d["initial_profile"]),
            "profile": Profile.from_json(d["profile"]),
            "dev": [tuple(x) for x in d["dev"]],
            "last_allocation": tuple(d["last_allocation"]),
            "last_gain": tuple(d["last_gain"]),
        })


def _cuda() -> Any:
    """torch.cuda where a loaded torch has a GPU, else None (a simulated run never imports torch)."""
    torch = sys.modules.get("torch")
    return torch.cuda if torch is not None and torch.cuda.is_available() else None


def memory_kind() -> str:
    """What ``Wall.peak_mb`` measures in this process."""
    return "cuda_max_allocated" if _cuda() is not None else "process_max_rss"


def _peak_mb() -> float:
    """GPU memory allocated at most since the last reset, or the process's peak RSS (MiB)."""
    cuda = _cuda()
    if cuda is not None:
        return cuda.max_memory_allocated() / 2**20
    import resource

    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


class Wall:
    """Wall-clock seconds and peak memory per phase: ``with wall("probe"): ...`` adds the
    block's time and raises the phase's peak to what the block reached. On a GPU the peak
    is the block's own (the allocator's peak is reset at its start); on the CPU it is the
    process's peak RSS so far, so a phase shows a new peak where it rises."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.peak_mb: dict[str, float] = {}

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        cuda = _cuda()
        if cuda is not None:
            cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - start
            self.peak_mb[phase] = max(self.peak_mb.get(phase, 0.0), _peak_mb())

    def drain_into(self, totals: dict[str, float], peaks: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
        """``totals`` plus what was timed since the last drain, and ``peaks`` raised to the
        peaks since then (both then forgotten)."""
        out = {k: totals.get(k, 0.0) + self.seconds.get(k, 0.0) for k in set(totals) | set(self.seconds)}
        high = {k: max(peaks.get(k, 0.0), self.peak_mb.get(k, 0.0)) for k in set(peaks) | set(self.peak_mb)}
        self.seconds.clear()
        self.peak_mb.clear()
        return out, high


@dataclass
class Parts:
    """The components of one run, made once per process."""

    config: Config
    run_dir: Path
    world: World
    capabilities: tuple[str, ...]
    requirement: tuple[float, ...]
    #: The capability the task answers in (``World.answer_form``); empty where none.
    answer_form: tuple[float, ...]
    ledger: Ledger
    teachers: Teachers
    student: Student
    generator: Generator
    policy: Any
    say: Callable[[str], None]
    wall: Wall
    tracker: Tracker
    #: Capabilities probed after every round: those the reward reads (r_c > 0) and those
    #: with a floor. The rest are probed every ``probe.others_every`` rounds and in the
    #: initial and final measurement.
    probed: tuple[str, ...] = ()
    #: The floors the card and config list (``floors.drop`` adds the essential ones').
    floors: dict[str, float] = field(default_factory=dict)
    #: What ``requirement.json`` holds: the vector by capability and where it came from.
    requirement_record: dict[str, Any] = field(default_factory=dict)


def run(
    config: Config,
    run_dir: Path,
    world: World | None = None,
    resume: bool = False,
    quiet: bool = False,
    stop_after_round: int | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Run ReAD (or any policy) as ``config`` says, in ``run_dir``; return the summary.

    Rounds are numbered 1..``run.rounds`` everywhere (console, ``rounds/NNNN``, the ledger,
    the report); round 0 is the initial probe. ``resume`` continues a stopped run in
    ``run_dir``; ``overwrite`` replaces the run there; without either an existing
    non-empty ``run_dir`` is refused. Without a ``world`` the inputs are checked before
    ``run_dir`` is touched. The run holds ``run_dir``'s lock throughout: a second writer
    is refused. ``stop_after_round`` ends the process after that round is committed (as
    a kill would), which tests use to check resume. A run directory that cannot be
    written (disk full, read-only) stops the run with a RunDirError saying so; the run
    resumes once it can be written again.
    """
    run_dir = Path(run_dir)
    # The run tokenizes a batch at a time between torch calls on the same cores: the
    # tokenizers library's own thread pool only contends with torch's there (it doubled
    # the cost of a probe's tokenization, docs/performance.md). A user's setting stands.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    ranks.start(config.world.device)
    if world is None:
        check_inputs(config)
    if not ranks.is_controller():
        # The controller checks, locks and prepares the run directory; what stops it stops every rank.
        problem = ranks.share(None)
        if problem is not None:
            raise RunDirError(problem)
        return _run_rounds(config, run_dir, world, resume, True, stop_after_round)
    prepared = False
    try:
        check_run_dir(run_dir, config, resume, overwrite)
        with hold_run_dir(run_dir):
            # Again under the lock: another process may have written here since the first check.
            check_run_dir(run_dir, config, resume, overwrite)
            if overwrite:
                clear_run_dir(run_dir)
            # Left by a process killed mid-write (a resumed run's, or one killed before its
            # config.yaml was in); no one else writes here while we hold the lock.
            remove_temporaries(run_dir)
            prepared = ranks.share(None) is None
            try:
                return _run_rounds(config, run_dir, world, resume, quiet, stop_after_round)
            except (OSError, sqlite3.OperationalError) as e:
                where = _unwritable(e, run_dir)
                if where is None:
                    raise
                raise RunDirError(
                    f"{where}; the run stopped, its committed rounds are kept: once the run directory can be written again, "
                    f"continue it with --resume --run-dir {run_dir}"
                ) from None
    except Exception as e:
        if not prepared:
            ranks.share(str(e))
        raise


#: Errors that say the run directory cannot be written (full, read-only, not permitted).
UNWRITABLE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)
UNWRITABLE_SQLITE = ("SQLITE_FULL", "SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_IOERR")


def _unwritable(e: OSError | sqlite3.OperationalError, run_dir: Path) -> str | None:
    """``path: reason`` when ``e`` says the run directory cannot be written, else None."""
    if isinstance(e, OSError):
        return f"{e.filename or run_dir}: {e.strerror}" if e.errno in UNWRITABLE_ERRNOS else None
    if getattr(e, "sqlite_errorname", "").startswith(UNWRITABLE_SQLITE):
        return f"{run_dir / 'teacher_cache.sqlite'}: {e}"
    return None


def _run_rounds(
    config: Config, run_dir: Path, world: World | None, resume: bool, quiet: bool, stop_after_round: int | None
) -> dict[str, Any]:
    """The body of :func:`run`, in a checked run directory whose lock is held."""
    parts = _setup(config, run_dir, world, resume, quiet)
    try:
        return _rounds(parts, stop_after_round)
    finally:
        _close(parts)


def _close(parts: Parts) -> None:
    """Close the ledger and the teacher cache, however the run ended (a cache closed
    cleanly leaves no -wal/-shm files beside it)."""
    for teacher in parts.teachers.distinct():
        if hasattr(teacher, "close"):
            teacher.close()
    parts.tracker.close()
    # After a failed write the run's first error is the one to report, not this one's.
    with suppress(OSError):
        parts.ledger.close()


def _rounds(parts: Parts, stop_after_round: int | None) -> dict[str, Any]:
    """Round 0 or the resume, the rounds, and the end of the run."""
    config, ledger, world, caps, B = parts.config, parts.ledger, parts.world, parts.capabilities, parts.config.budget.total_tokens
    if (parts.run_dir / "summary.json").exists():
        return _finished(parts)
    state_path = parts.run_dir / "state.json"
    state = _resume(parts, RunState.from_json(read_json(state_path))) if state_path.exists() else _start(parts)
    final_profile = None
    for t in range(state.round + 1, config.run.rounds + 1):
        rd = _round_dir(parts.run_dir, t)
        quota = round_quota(ledger.remaining, config.run.rounds - t + 1)
        context = state.context(parts.requirement, caps, ledger.remaining / B, parts.answer_form)
        w_prev = state.last_allocation if t > 1 else None
        actions = candidate_actions(parts.requirement, w_prev, config.policy.top_k, config.policy.grid, config.policy.max_actions)
        with parts.wall("policy"):
            # Every rank's policy sees the same data; the controller's choice is the round's.
            w = ranks.share(parts.policy.select(context, actions, np.random.default_rng([config.run.seed, t])))
            info = dict(parts.policy.info)

        stats, leakage = _generate_and_train(parts, rd, t, w, quota)

        others = config.probe.others_every > 0 and t % config.probe.others_every == 0
        probed = caps if others else parts.probed
        floors = floor_scores(parts.requirement, caps, state.initial_profile.vector(caps), parts.floors, config.floors.drop, config.reward.top_k)
        if t == config.run.rounds and not floors:
            # After the last round the policy decides nothing more and no floor can undo
            # it: the round's reading is taken off the final measurement (the same items a
            # probe would score) instead of a probe of its own.
            with parts.wall("measure"):
                final_profile = world.probe(parts.student, ledger, FINAL)
            measured = sequential_view(final_profile, probed, config.probe.stop_width, config.probe.seed)
        else:
            with parts.wall("probe"):
                measured = world.probe(parts.student, ledger, t, probed, sequential=True)
        # What was not probed this round keeps its last measured score (and interval).
        new_profile = state.profile.updated(measured)
        s, s_new = state.profile.vector(caps), new_profile.vector(caps)
        spent = ledger.spent_in_round(t)
        R, gain, spill, cost = reward(parts.requirement, s, s_new, spent, config.reward.beta, config.reward.lambda_per_token, config.reward.top_k)
        broken = broken_floors(floors, measured.scores, measured.intervals)
        if broken:
            # The round is undone: the student goes back to the last commit (its tokens stay
            # spent) and the policy is told, with the floors' penalty, not to play it again.
            with parts.wall("checkpoint"):
                _restore_student(parts.student, parts.run_dir, t - 1)
            new_profile, s_new = state.profile, s
        with parts.wall("policy"):
            parts.policy.update(context, w, R - config.floors.penalty if broken else R, rolled_back=bool(broken))
        state.cum_reward += 0.0 if broken else R
        dev_utility = None
        # No checkpoint after the last round: the policy decides nothing more, and the
        # final measurement (test utility) follows at once.
        if t % config.run.dev_every == 0 and t < config.run.rounds:
            dev_utility = _dev_checkpoint(parts, state, t)

        allocation = dict(zip(caps, w, strict=True))
        write_json(rd / "allocation.json", {
            "round": t, "allocation": allocation, "quota_tokens": quota, "candidates": len(actions),
            "policy_info": info, "leakage": leakage,
        })
        write_json(rd / "profile.json", measured.to_json())
        reward_parts = {
            "round": t, "reward": R, "gain": gain, "spillover": spill, "cost_penalty": cost, "spent_tokens": spent,
            "spend_per_capability": stats.spend_per_capability, "trained_tokens": stats.trained_tokens,
            "mean_loss": stats.mean_loss, "dev_utility": dev_utility,
            **({"rolled_back": {c: floors[c] for c in broken}} if broken else {}),
        }
        write_json(rd / "reward.json", reward_parts)
        state.round, state.profile = t, new_profile
        state.last_allocation = tuple(w)
        state.last_gain = tuple((b - a) / 100 for a, b in zip(s, s_new, strict=True))
        state.template_window = parts.generator.cap.state_dict()
        _commit(parts, state)  # the commit point of round t
        if ranks.is_controller():
            parts.tracker.log_round(t, allocation, measured, reward_parts, ledger, info, stats)
        dev_note = f"  U_dev {dev_utility:.2f}" if dev_utility is not None else ""
        dev_note += f"  rolled back: {', '.join(broken)} below floor" if broken else ""
        parts.say(
            f"round {t:>2}/{config.run.rounds}  {_fmt_alloc(caps, w):<40}  spent {B - ledger.remaining:>11,}/{B:,}"
            f"  reward {R:+.3f}  gain {gain:+.2f}  spill {spill:.2f}{dev_note}"
        )
        if stop_after_round is not None and t >= stop_after_round:
            ledger.close()
            return {"stopped_after_round": t}
    return _finish(parts, state, final_profile)


def _setup(config: Config, run_dir: Path, world: World | None, resume: bool, quiet: bool) -> Parts:
    """Write the resolved config (unless resuming) and make every component."""
    if not resume:
        write_text(run_dir / "config.yaml", dump_config(config))
    # On resume only where a kill came between the two writes: env.json records the start.
    if not resume or not (run_dir / "env.json").exists():
        write_json(run_dir / "env.json", {**_env(), "seed": config.run.seed})
    wall = Wall()
    with wall("setup"):
        world = world or make_world(config)
        capabilities = world.capabilities
        if tuple(config.capabilities) != tuple(capabilities):
            raise ConfigError(f"capabilities: the world has {list(capabilities)}, the config {list(config.capabilities)}")
        requirement, requirement_record = _requirement(config, world, run_dir, resume)
        floors = card_floors(world.card, capabilities, config.floors.scores)
        teachers = world.teachers()
        if config.world.kind != "sim" and ranks.is_controller():
            from read_distill.backends.cache import CachedTeacher

            # Every teacher output is kept, so a resumed or repeated round never pays twice
            # (one file for all teachers: the key holds the teacher's name).
            teachers = teachers.map(lambda t: CachedTeacher(t, run_dir / "teacher_cache.sqlite"))
        teachers = teachers.map(ranks.shared)
        parts = Parts(
            config=config, run_dir=run_dir, world=world, capabilities=capabilities, requirement=requirement,
            requirement_record=requirement_record,
            answer_form=world.answer_form(requirement),
            ledger=Ledger(run_dir / "ledger.jsonl", config.budget.total_tokens, config.budget.unit),
            teachers=teachers, student=world.student(config.run.seed),
            generator=Generator(world, config.generation, config.run.seed),
            policy=make_policy(config.policy, capabilities, requirement), say=Progress(quiet or not ranks.is_controller()),
            wall=wall, tracker=Tracker(run_dir, config),
            probed=tuple(c for c, r in zip(capabilities, requirement, strict=True) if r > 0 or c in floors),
            floors=floors,
        )
    return parts


def _requirement(config: Config, world: World, run_dir: Path, resume: bool) -> tuple[tuple[float, ...], dict[str, Any]]:
    """The run's requirement and ``requirement.json``'s record of it (the vector by
    capability; its source: manual, fallback, uniform or learned, with the model and its
    weights' checksum). A resumed run keeps the vector it started with, even if a learned
    model has changed since."""
    caps = world.capabilities
    path = run_dir / "requirement.json"
    if resume and path.exists():
        record = read_json(path)
        return tuple(float(record["requirement"][c]) for c in caps), record
    source = requirement_source(world.card, config.task.requirement)
    requirement = card_requirement(world.card, caps, config.task.requirement)
    record = {"requirement": dict(zip(caps, requirement, strict=True)), **source}
    if source["kind"] == "learned":
        from read_distill.requirement.encoder import weights_sha256

        record["model_sha256"] = weights_sha256(Path(source["model"]))
    write_json(path, record)
    return requirement, record


def _say_requirement(parts: Parts) -> None:
    """A learned requirement is printed when the run starts or resumes."""
    record = parts.requirement_record
    if record.get("kind") == "learned":
        r = " ".join(f"{c[:4]}={x:.2f}" for c, x in record["requirement"].items() if x >= 0.005)
        parts.say(f"[read-distill] requirement learned by {record['model']} ({record['from']}): {r}")


def _start(parts: Parts) -> RunState:
    """Round 0: probe and evaluate S0, run the pilots of a profiling policy, commit."""
    config, world, ledger, caps = parts.config, parts.world, parts.ledger, parts.capabilities
    # A crash before round 0 committed leaves charges of work that is redone now.
    ledger.truncate(lambda e: False)
    # "measure" is what any method's result needs (the profile and test utility before
    # and after); "probe", "dev" and "policy" are ReAD's control (benchmarks/overhead.py).
    with parts.wall("measure"):
        profile0 = world.probe(parts.student, ledger, INITIAL)
        initial_utility = world.evaluate(parts.student, "test", ledger, INITIAL)
    # The probes after a round may stop after the first third of a capability's items
    # (probe.stop_width); the scores their changes start from are read the same way off
    # profile0's items, so that round 1's change compares the same items, not a third of
    # them with all.
    probed = caps if config.probe.others_every > 0 else parts.probed
    start = profile0.updated(sequential_view(profile0, probed, config.probe.stop_width, config.probe.seed))
    with parts.wall("dev"):
        initial_dev = world.evaluate(parts.student, "dev", ledger, INITIAL)
    parts.say(
        f"[read-distill] {world.card.name}: initial utility {initial_utility:.2f}, budget {config.budget.total_tokens:,} "
        f"tokens, {config.run.rounds} rounds, policy {config.policy.name}"
    )
    _say_requirement(parts)
    if config.policy.profiling_tokens > 0:
        parts.say(f"[read-distill] profiling: pilot runs on {config.policy.profiling_tokens:,} overhead tokens")
        with parts.wall("profiling"):
            pilot = make_pilot(config, world, parts.requirement, profile0.vector(caps), ledger)
            actions = candidate_actions(parts.requirement, None, config.policy.top_k, config.policy.grid, config.policy.max_actions)
            parts.policy.prepare(pilot, actions, np.random.default_rng([config.run.seed, 104729]))
    state = RunState(
        round=INITIAL, initial_profile=profile0, profile=start, initial_utility=initial_utility,
        dev=[(INITIAL, initial_dev)], best_dev=initial_dev, cum_reward=0.0, proxy_at_dev=[], gain_at_dev=[],
        last_allocation=(0.0,) * len(caps), last_gain=(0.0,) * len(caps),
        template_window=parts.generator.cap.state_dict(), wall_s={},
    )
    _commit(parts, state)
    return state


def _resume(parts: Parts, state: RunState) -> RunState:
    """Restore the student, policy and generator of the last committed round."""
    pending = _round_dir(parts.run_dir, state.round + 1) / "passes.json"
    passes = read_json(pending) if pending.exists() else []
    # Drop the charges of work that never committed. The next round replays its saved
    # passes, charges included, so the ledger ends as an uninterrupted run's. (Passes
    # saved by an older version have no charges: theirs stay in the ledger.)
    older = bool(passes) and "charges" not in passes[-1]
    parts.ledger.truncate(
        lambda e: e.round <= state.round or (older and e.round == state.round + 1 and e.phase in ("teacher_prompt", "teacher_gen"))
    )
    # Teacher outputs cached after the last saved work were paid for by dropped work:
    # charge them once more when the redone work asks for them.
    mark = passes[-1]["cache_rows"] if passes and not older else state.teacher_cache_rows
    for teacher in parts.teachers.distinct() if mark is not None else ():
        if hasattr(teacher, "owe_after"):  # the cache is the controller's
            teacher.owe_after(mark)
    _restore_checkpoint(parts.student, parts.policy, parts.run_dir, state.round)
    parts.generator.cap.load_state_dict(state.template_window)
    parts.say(f"[read-distill] resuming {parts.run_dir} after round {state.round}/{parts.config.run.rounds}")
    _say_requirement(parts)
    return state


def _dev_checkpoint(parts: Parts, state: RunState, t: int) -> float:
    """Dev utility after round ``t``; the policy calibrates its reward scale against it."""
    with parts.wall("dev"):
        dev_utility = parts.world.evaluate(parts.student, "dev", parts.ledger, t)
    state.dev.append((t, dev_utility))
    state.proxy_at_dev.append(state.cum_reward)
    state.gain_at_dev.append(dev_utility - state.dev[0][1])
    improved = dev_utility > state.best_dev
    state.best_dev = max(state.best_dev, dev_utility)
    with parts.wall("policy"):
        parts.policy.on_dev_eval(list(state.proxy_at_dev), list(state.gain_at_dev), improved)
    return dev_utility


def _commit(parts: Parts, state: RunState) -> None:
    """Make ``state.round`` durable: the student and policy checkpoint, the ledger, then
    ``state.json`` last (a round counts once its state is written)."""
    with parts.wall("checkpoint"):
        _commit_checkpoint(parts.student, parts.policy.state_dict(), parts.run_dir, state.round)
    state.wall_s, state.peak_mb = parts.wall.drain_into(state.wall_s, state.peak_mb)
    state.teacher_cache_rows = _cache_rows(parts)
    parts.ledger.sync()
    write_json(parts.run_dir / "state.json", state.to_json())


def _cache_rows(parts: Parts) -> int | None:
    """The teacher cache's newest row (None without a cache)."""
    teacher = parts.teachers.default
    return teacher.last_row() if hasattr(teacher, "last_row") else None


def _finish(parts: Parts, state: RunState, final_profile: Profile | None = None) -> dict[str, Any]:
    """Final test utility and full profile (``final_profile`` where the last round measured
    it); ``summary.json``; the report where asked."""
    config, run_dir, ledger = parts.config, parts.run_dir, parts.ledger
    summary_path = run_dir / "summary.json"
    with parts.wall("measure"):
        if final_profile is None:
            # A resumed finish: what a killed one charged is measured again.
            ledger.truncate(lambda e: e.round != FINAL)
            final_profile = parts.world.probe(parts.student, ledger, FINAL)
        final_utility = parts.world.evaluate(parts.student, "test", ledger, FINAL)
    rounds = [_round_dir(run_dir, t) for t in range(1, config.run.rounds + 1)]
    wall_s, peak_mb = parts.wall.drain_into(state.wall_s, state.peak_mb)
    summary = {
        "task": parts.world.card.name,
        "policy": config.policy.name,
        "seed": config.run.seed,
        "budget_tokens": config.budget.total_tokens,
        "budget_unit": config.budget.unit,
        "initial_utility": state.initial_utility,
        "final_utility": final_utility,
        # The requirement the run allocated for, and where it came from (requirement.json).
        "requirement": dict(zip(parts.capabilities, parts.requirement, strict=True)),
        "requirement_source": {k: v for k, v in parts.requirement_record.items() if k != "requirement"},
        "initial_profile": state.initial_profile.scores,
        "final_profile": final_profile.scores,
        "final_intervals": {k: list(v) for k, v in final_profile.intervals.items()},
        "dev_utility": [list(x) for x in state.dev],
        "allocations": [read_json(rd / "allocation.json")["allocation"] for rd in rounds],
        # Rounds that broke a floor and were undone (their tokens spent, their training not kept).
        "rolled_back": [t for t, rd in enumerate(rounds, 1) if "rolled_back" in read_json(rd / "reward.json")],
        "profiles": [state.initial_profile.scores] + [read_json(rd / "profile.json")["scores"] for rd in rounds],
        "ledger": ledger.totals(),
        # Which teacher answered each capability, and what each was asked for.
        "teachers": parts.teachers.routes(),
        "teacher_tokens": teacher_tokens(ledger.entries),
        "wall_s": dict(sorted(wall_s.items())),
        "peak_memory_mb": dict(sorted(peak_mb.items())),
        "peak_memory_kind": memory_kind(),
    }
    if ranks.size() > 1:
        # Each process's own peaks, in rank order: what sharding the student is for.
        summary["peak_memory_mb_per_rank"] = ranks.gather(summary["peak_memory_mb"])
    ledger.close()
    write_json(summary_path, summary)
    _report(parts)
    _done(parts, summary)
    return summary


def _finished(parts: Parts) -> dict[str, Any]:
    """Resuming a run that wrote its summary: only the report may be missing (a kill
    between the two), nothing else is redone."""
    summary = read_json(parts.run_dir / "summary.json")
    if not (parts.run_dir / "report.html").exists():
        _report(parts)
    _done(parts, summary)
    return summary


def _report(parts: Parts) -> None:
    """``report.html``, where the config asks for it."""
    config = parts.config
    if not ranks.is_controller():
        return
    if config.run.report if config.run.report is not None else config.world.kind != "sim":
        try:
            from read_distill.report import write_report

            parts.say(f"[read-distill] report: {write_report([parts.run_dir])}")
        except Exception as e:  # noqa: BLE001 - a report bug must not fail a finished run
            parts.say(f"[read-distill] warning: report.html not written: {e}")


def _done(parts: Parts, summary: dict[str, Any]) -> None:
    parts.say(
        f"[read-distill] done: utility {summary['initial_utility']:.2f} -> {summary['final_utility']:.2f}; "
        f"spent {summary['ledger']['billable']:,}/{summary['budget_tokens']:,} billable tokens; "
        f"summary in {parts.run_dir / 'summary.json'}"
    )

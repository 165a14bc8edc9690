"""The intervention set of the learned requirement identifier (docs/method.md §3).

An intervention m is a short low-budget distillation of a fresh copy of S0 with one sparse
fixed allocation (``runner.distil_fixed``: the engine of the runner's pilots, with the
run's replay share), measured once on the probe suite, s(S_m), and on the dev split of
every task card, U_τ(S_m). Δs = s(S_m) − s(S0) does not depend on the card (the same S0,
the same training), so one distillation serves every card; each card gets its own row,
with ΔU = U_τ(S_m) − U_τ(S0) — a difference, never the absolute utility.

Allocations: one-hots on every capability (in an order drawn with the seed), then pairs at
½/½ (likewise), then the same list again with the next replicate (a new training seed);
intervention i is the i-th of that list, so a larger N extends a collection. Replicate k
of every allocation trains with the same seed (common random numbers: allocations differ
in their data, not in their training noise).

``OUT/interventions.jsonl`` holds one row per card and intervention, with provenance;
``OUT/collection.json`` what the collection is (config hash, capabilities, tokens, seed);
``OUT/baseline.json`` S0's profile and dev utilities. The rows of an intervention are
appended together (flushed and synced) once it is measured: a killed collection
continues with the interventions and cards that have no row, and never redoes one that
has. Every token is charged to the intervention's own ledger and reported as overhead
(it is outside any run's budget B).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import multiprocessing
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from read_distill.config import Config, ConfigError, dump_config
from read_distill.requirement.model import card_text, text_sha256
from read_distill.store import read_json, read_jsonl, remove_temporaries, write_json, write_text
from read_distill.tasks import TaskCard, load_card
from read_distill.workers import die_with_parent

FORMAT = "read-distill interventions"
VERSION = 1
ROWS, META, BASELINE = "interventions.jsonl", "collection.json", "baseline.json"
#: Seeds of the interventions' training (student and prompt draws) and their rounds' draws.
SEED_SALT = 104_729


def allocations(capabilities: tuple[str, ...], n: int, seed: int) -> list[tuple[dict[str, float], int]]:
    """The first ``n`` interventions: (allocation, replicate)."""
    rng = np.random.default_rng([seed, 7129])
    ones = [{c: 1.0} for c in capabilities]
    pairs = [{a: 0.5, b: 0.5} for i, a in enumerate(capabilities) for b in capabilities[i + 1 :]]
    pool = [ones[i] for i in rng.permutation(len(ones))] + [pairs[i] for i in rng.permutation(len(pairs))]
    return [(pool[i % len(pool)], i // len(pool)) for i in range(n)]


def config_sha256(config: Config) -> str:
    """Hash of what an intervention depends on: the config without its task (the cards are
    listed separately; a run's task card changes nothing here)."""
    tree = config.model_dump(mode="json")
    tree.pop("task", None)
    return hashlib.sha256(json.dumps(tree, sort_keys=True).encode()).hexdigest()


@functools.cache
def code_version() -> dict[str, Any]:
    """read_distill's version, the git commit and whether the work tree differs from it."""
    from read_distill.runner import _env

    env = _env()
    try:
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                                    cwd=Path(__file__).parent, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        dirty = None
    return {"read_distill": env["versions"]["read_distill"], "git_sha": env["git_sha"], "git_dirty": dirty,
            "torch": env["versions"].get("torch", ""), "python": env["versions"]["python"]}


def _card_ref(ref: str) -> str:
    """How a row names its card so that training can load it again: a built-in name as it
    is, a file by its absolute path."""
    return ref if not Path(ref).suffix else str(Path(ref).resolve())


def _load_cards(refs: list[str]) -> dict[str, tuple[str, TaskCard]]:
    cards: dict[str, tuple[str, TaskCard]] = {}
    for ref in refs:
        card = load_card(ref)
        if card.name in cards:
            raise ConfigError(f"--tasks: two cards are named {card.name!r} ({cards[card.name][0]} and {ref})")
        cards[card.name] = (_card_ref(ref), card)
    return cards


def _card_world(world: Any, card: TaskCard, items: dict[str, list]) -> Any:
    """``world`` evaluating ``card`` (the same models, probes and prompt source)."""
    view = copy.copy(world)
    view.card, view.splits = card, items
    return view


def read_rows_file(path: Path) -> list[dict[str, Any]]:
    """The complete rows of an interventions file (a torn last line, from a kill during an
    append, is not a row)."""
    return read_jsonl(path)


def load_rows(sources: list[Path]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows of every source (a collection directory or its JSONL file) and, per
    source, what the collection is (its collection.json, with its path, the rows' hash
    and the overhead tokens of its interventions)."""
    rows: list[dict[str, Any]] = []
    metas: list[dict[str, Any]] = []
    for source in sources:
        source = Path(source)
        directory = source if source.is_dir() else source.parent
        path = source / ROWS if source.is_dir() else source
        if not path.is_file() or not (directory / META).is_file():
            raise ConfigError(f"{source}: not an intervention collection (no {ROWS} beside {META}); run `read-distill requirement collect`")
        mine = read_rows_file(path)
        meta = read_json(directory / META)
        meta["path"] = str(directory)
        meta["rows_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        meta["overhead_tokens"] = overhead(mine)
        rows += mine
        metas.append(meta)
    return rows, metas


def overhead(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Tokens of the interventions behind ``rows``, per phase (each intervention once)."""
    total: dict[str, int] = {}
    seen = set()
    for r in rows:
        if r["intervention"] in seen:
            continue
        seen.add(r["intervention"])
        for k, v in r["overhead_tokens"].items():
            total[k] = total.get(k, 0) + v
    return total


# -- one intervention ---------------------------------------------------------------------------
class _Worker:
    """What an intervention needs, built once per process: the world, each card's view of
    it, and the world whose evaluation prompts training must not repeat (every card's)."""

    def __init__(self, config: Config, cards: dict[str, tuple[str, TaskCard]], world: Any = None) -> None:
        from read_distill.runner import make_world
        from read_distill.world.micro import task_items

        self.config = config
        self.world = world if world is not None else make_world(config)
        items = {n: {"dev": task_items(card, "dev"), "test": []} for n, (_, card) in cards.items()}
        self.views = {n: _card_world(self.world, card, items[n]) for n, (_, card) in cards.items()}
        # What is measured is every card's dev split and the probes: training must not repeat
        # those prompts. (Test splits take no part; a card's 1,000 test rows would also leave
        # too few distinct training prompts of its capability.)
        measured = {"dev": [it for n in items for it in items[n]["dev"]], "test": []}
        self.prompt_world = _card_world(self.world, self.world.card, measured)

    def baseline(self, names: list[str]) -> dict[str, Any]:
        """S0's full profile and the dev utility of each card in ``names``."""
        from read_distill.ledger import Ledger

        ledger = Ledger(None, 1, self.config.budget.unit)
        student = self.world.student(0)
        profile = self.world.probe(student, ledger, 0)
        utility = {n: self.views[n].evaluate(student, "dev", ledger, 0) for n in names}
        return {"profile": profile.scores, "utility": utility, "overhead_tokens": _phases(ledger)}

    def intervene(self, index: int, allocation: dict[str, float], replicate: int, names: list[str], tokens: int, rounds: int,
                  seed: int) -> dict[str, Any]:
        from read_distill.runner import distil_fixed

        caps = self.world.capabilities
        w = tuple(float(allocation.get(c, 0.0)) for c in caps)
        train_seed = seed * 1_000_003 + SEED_SALT + replicate
        tick = time.time()
        student, ledger = distil_fixed(self.config, self.world, w, tokens, rounds, train_seed, (seed, SEED_SALT, replicate),
                                       replay=True, prompt_world=self.prompt_world)
        spent = ledger.spent
        profile = self.world.probe(student, ledger, rounds)
        utility = {n: self.views[n].evaluate(student, "dev", ledger, rounds) for n in names}
        return {"index": index, "profile": profile.scores, "utility": utility, "spent": spent, "train_seed": train_seed,
                "overhead_tokens": _phases(ledger), "seconds": round(time.time() - tick, 2)}


def _phases(ledger: Any) -> dict[str, int]:
    return {k: v for k, v in ledger.totals().items() if k not in ("billable", "budget")}


_PROCESS: dict[str, _Worker] = {}


def _init_worker(config: Config, cards: dict[str, tuple[str, TaskCard]], threads: int) -> None:
    import torch

    die_with_parent()  # a killed collect leaves no worker computing rows nobody records

    torch.set_num_threads(threads)
    _PROCESS["worker"] = _Worker(config, cards)


def _intervene_in_worker(*args: Any) -> dict[str, Any]:
    return _PROCESS["worker"].intervene(*args)


# -- the collection -------------------------------------------------------------------------------
def collect(
    config: Config,
    tasks: list[str],
    interventions: int,
    out: Path,
    tokens: int | None = None,
    rounds: int | None = None,
    seed: int = 0,
    jobs: int = 1,
    quiet: bool = False,
    world: Any = None,
    stop_after: int | None = None,
) -> dict[str, Any]:
    """``read-distill requirement collect``: the first ``interventions`` interventions of
    ``seed`` (see the module), each of ``tokens`` billable tokens over ``rounds`` rounds
    (defaults: ``policy.pilot_rounds`` rounds of a run's round, B / ``run.rounds``, each),
    measured on every card of ``tasks``; rows in ``out``, continuing what is there.
    ``stop_after`` ends after that many new interventions (as a kill would; tests)."""
    from read_distill.preflight import check_inputs
    from read_distill.rundir import hold_run_dir

    say = (lambda m: None) if quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    if config.world.kind == "sim":
        raise ConfigError("world.kind: requirement collect needs task cards with dev rows and real models; use micro or hf")
    if not tasks:
        raise ConfigError("--tasks: give at least one task card")
    if interventions < 1:
        raise ConfigError(f"--interventions: expected an integer >= 1, got {interventions}")
    rounds = rounds or config.policy.pilot_rounds
    tokens = tokens or config.budget.total_tokens // config.run.rounds * rounds
    if tokens < 1 or rounds < 1 or jobs < 1:
        raise ConfigError("--tokens, --rounds and --jobs must be >= 1")
    cards = _load_cards(tasks)
    from read_distill.world.micro import task_items

    dev_rows = {n: len(task_items(card, "dev")) for n, (_, card) in cards.items()}
    if world is None:
        check_inputs(config)
    caps = tuple(config.capabilities)
    plan = allocations(caps, interventions, seed)
    meta = {
        "format": FORMAT, "version": VERSION, "config_sha256": config_sha256(config), "capabilities": list(caps),
        "seed": seed, "tokens": tokens, "rounds": rounds, "budget_unit": config.budget.unit, "replay_frac": config.train.replay_frac,
        "world": config.world.kind, "code": code_version(),
    }
    out = Path(out)
    with hold_run_dir(out):
        remove_temporaries(out)
        if (out / META).exists():
            old = read_json(out / META)
            for key in ("format", "config_sha256", "capabilities", "seed", "tokens", "rounds"):
                if old.get(key) != meta[key]:
                    raise ConfigError(
                        f"{out}: a collection with another {key} ({old.get(key)!r}, now {meta[key]!r}); continue it with the same "
                        "config, --tokens, --rounds and --seed, or collect into another --out"
                    )
            meta["code"] = old["code"]
        else:
            write_text(out / "config.yaml", dump_config(config))
            write_json(out / META, meta)
        rows_path = out / ROWS
        rows = read_jsonl(rows_path, cut=True)
        done = {(r["intervention"], r["card"]) for r in rows}
        pending = [(i, [n for n in cards if (i, n) not in done]) for i in range(len(plan))]
        pending = [(i, names) for i, names in pending if names]
        baseline = read_json(out / BASELINE) if (out / BASELINE).exists() else {"profile": None, "utility": {}, "overhead_tokens": {}}
        missing_base = [n for n in cards if n not in baseline["utility"]]
        say(f"[requirement] {len(cards)} cards × {len(plan)} interventions of {tokens:,} tokens ({rounds} rounds each); "
            f"{len(plan) - len(pending)} done, {len(pending)} to run")
        local = None
        if missing_base or (pending and jobs == 1):
            local = _Worker(config, cards, world)
        if missing_base:
            measured = local.baseline(missing_base)
            if baseline["profile"] is not None and measured["profile"] != baseline["profile"]:
                raise ConfigError(f"{out}: S0's profile differs from the one this collection measured; collect into another --out")
            baseline = {"profile": measured["profile"], "utility": {**baseline["utility"], **measured["utility"]},
                        "overhead_tokens": _add(baseline["overhead_tokens"], measured["overhead_tokens"])}
            write_json(out / BASELINE, baseline)
            say("[requirement] S0 dev utility: " + ", ".join(f"{n} {u:.2f}" for n, u in baseline["utility"].items()))

        def record(result: dict[str, Any], names: list[str]) -> None:
            i = result["index"]
            allocation, replicate = plan[i]
            s0 = baseline["profile"]
            ds = {c: result["profile"][c] - s0[c] for c in caps}
            finished = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            lines = []
            for n in names:
                ref, card = cards[n]
                lines.append(json.dumps({
                    "card": n, "card_ref": ref, "card_text_sha256": text_sha256(card_text(card)),
                    "intervention": i, "allocation": allocation, "replicate": replicate,
                    "tokens": tokens, "rounds": rounds, "spent": result["spent"], "seed": seed, "train_seed": result["train_seed"],
                    "delta_s": ds, "profile": result["profile"], "initial_profile": s0,
                    "delta_u": result["utility"][n] - baseline["utility"][n], "utility": result["utility"][n],
                    "initial_utility": baseline["utility"][n],
                    "dev_rows": dev_rows[n],
                    "overhead_tokens": result["overhead_tokens"], "seconds": result["seconds"],
                    "config_sha256": meta["config_sha256"], "code": code_version(), "finished": finished,
                }))
            with rows_path.open("a") as f:
                f.write("".join(line + "\n" for line in lines))
                f.flush()
                os.fsync(f.fileno())
            say(f"[requirement] intervention {i + 1}/{len(plan)} ({_fmt(allocation)}{f', replicate {replicate}' if replicate else ''}, "
                f"{result['seconds']:.0f} s): Δs " + " ".join(f"{c[:4]}{ds[c]:+.0f}" for c in caps)
                + " | ΔU " + " ".join(f"{n} {result['utility'][n] - baseline['utility'][n]:+.1f}" for n in names))

        todo = pending if stop_after is None else pending[:stop_after]
        if jobs == 1:
            for i, names in todo:
                allocation, replicate = plan[i]
                record(local.intervene(i, allocation, replicate, names, tokens, rounds, seed), names)
        elif todo:
            threads = max(1, (os.cpu_count() or 1) // jobs)
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker, initargs=(config, cards, threads)) as pool:
                futures = {pool.submit(_intervene_in_worker, i, plan[i][0], plan[i][1], names, tokens, rounds, seed): names for i, names in todo}
                try:
                    for f in as_completed(futures):
                        record(f.result(), futures[f])
                except BaseException:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
        rows = read_rows_file(rows_path)
        meta_now = {**read_json(out / META), "rows": len(rows), "interventions_done": len({r["intervention"] for r in rows}),
                    "overhead_tokens": _add(overhead(rows), baseline["overhead_tokens"])}
        write_json(out / META, meta_now)
    say(f"[requirement] {len(rows)} rows in {rows_path}; overhead tokens: "
        + ", ".join(f"{k} {v:,}" for k, v in meta_now["overhead_tokens"].items()))
    return {"rows": rows, "baseline": baseline, "meta": meta_now, "path": str(rows_path)}


def _add(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: a.get(k, 0) + b.get(k, 0) for k in {**a, **b}}


def _fmt(allocation: dict[str, float]) -> str:
    return " ".join(f"{c[:4]}={w:.2f}" for c, w in allocation.items())

"""Allocation quality: every simulated suite environment × seeds × policies, against the oracle.

Each policy runs through the real round loop (``read_distill.sim.run``) at the
environment's default budget; the oracle (``read_distill.sim.oracle``, searched in ``read_distill.sim.search``) searches once per
environment and replays its schedule under every seed, so a policy and the oracle see
the same dynamics noise. Printed per environment: each policy's gain as a fraction of
the oracle's, mean_s(U_final − U_0) / mean_s(U_oracle − U_0) over seeds (a ratio of
means, because a single seed's oracle gain can be small next to the dynamics noise), the
mean over environments, and how often ``read`` beats each baseline (the fraction of
environments where read's mean final utility is higher) and, since every policy meets
the same dynamics noise under a seed, on how many environments a seed-paired t-test
(p < 0.05) finds it better, indistinguishable or worse. Two rows get a profiling budget
(``--profiling-frac`` × B, spent on pilot runs outside B, reported as overhead): ``grid``
searches its fixed allocation with it, ``read+pilots`` is ``read`` pre-training its model
on one-hot pilots; every other row, ``read`` included, spends none.

Two diagnostic columns split what a policy loses, both schedules replayed under the true
utility like the oracle's: ``r-oracle`` is the best schedule for the *declared*
requirement (the same search, run on U = r·s, the utility the proxy reward stands for);
``1-step`` plays, each round, the allocation with the best true immediate proxy reward
(``read_distill.sim.search.one_step``: ReAD's one-step reward with perfect knowledge of
the dynamics). Where ``r-oracle`` is below 1 the card's requirement itself costs that
much; where ``1-step`` is below it, looking one round ahead costs the rest (prerequisites);
what ``read`` loses below ``1-step`` is the cost of learning the dynamics online.

``--probe-noise-scale`` and ``--dynamics-noise-scale`` multiply every environment's noise
(oracle replays included): a diagnostic that splits what a policy loses to noise from what
it loses with near-exact observations.

Seeds: 10 by default. Per environment the spread between seed sets is large (one
policy's gain fraction moves by up to ±0.1 between seeds 0–4 and 5–9), so 5 seeds can
turn a close comparison either way.

    .venv/bin/python benchmarks/allocation.py [--seeds 10] [--workers 2] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import stats

from read_distill import sim
from read_distill.sim.dynamics import LinearUtility
from read_distill.sim.environments import ENVIRONMENTS, SUITE
from read_distill.sim.search import one_step, oracle, search

POLICIES = ["read", "read+pilots", "greedy", "uniform", "task_static", "one_hot", "random", "exp3", "grid"]
#: Rows that spend a profiling budget (``--profiling-frac`` × B, overhead outside B) on
#: pilot runs, and the policy each runs: grid searches with it, read pre-trains on it.
PROFILED = {"grid": "grid", "read+pilots": "read"}
#: The rows the target is checked for (read without and with its pilots).
READ_ROWS = ["read", "read+pilots"]
#: Baselines read must beat on >= TARGET_BEATS of the environments, and the mean gain
#: fraction it must reach (the acceptance target of the policy work).
STATIC_AND_EXP3 = ["uniform", "task_static", "one_hot", "grid", "exp3"]
TARGET_FRACTION, TARGET_BEATS = 0.90, 0.80
#: Rough seconds per run, to start the longest jobs first (2 workers balance better).
COST = {"greedy": 3.0, "read": 2.0, "read+pilots": 2.0, "oracle": 5.0}


def _use_tmpfs() -> None:
    # A simulated round costs microseconds; the runner's atomic writes (fsync) dominate a
    # run on disk, so run directories go to tmpfs when there is one.
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        tempfile.tempdir = "/dev/shm"


def _world(env: str, noise: tuple[float, float]):
    """The suite environment with its probe and dynamics noise scaled by ``noise``."""
    world = SUITE[env]()
    world.probe_noise_std *= noise[0]
    getattr(world.dynamics, "base", world.dynamics).noise_std *= noise[1]
    return world


def _job(job: tuple) -> tuple:
    """One unit of work in a worker: an oracle (search + replay per seed) or a policy run."""
    kind, env, noise, args = job
    world, budget = _world(env, noise), ENVIRONMENTS[env][1]
    start = time.perf_counter()
    if kind == "oracle":
        seeds, rounds = args
        plan = search(world, budget, rounds)
        finals = [oracle(world, budget, rounds, seed=s, plan=plan).final_utility for s in seeds]
        declared = SUITE[env]()
        declared.utility = LinearUtility(np.asarray(declared.requirement))
        declared_plan = search(declared, budget, rounds)
        one_step_plan = one_step(world, budget, rounds)
        out = {
            "method": plan.method,
            "final_utility": finals,
            "declared_final_utility": [oracle(world, budget, rounds, seed=s, plan=declared_plan).final_utility for s in seeds],
            "one_step_final_utility": [oracle(world, budget, rounds, seed=s, plan=one_step_plan).final_utility for s in seeds],
            "model_fixed_utility": plan.fixed_utility,
            "model_lookahead_utility": plan.lookahead_utility,
            "initial_utility": plan.initial_utility,
            "first_allocation": dict(zip(world.capabilities, plan.allocations[0], strict=True)),
            "last_allocation": dict(zip(world.capabilities, plan.allocations[-1], strict=True)),
            "focus": plan.details["focus"],
        }
    else:
        row, seed, rounds, options = args
        result = sim.run(world, PROFILED.get(row, row), budget, rounds, seed, **options)
        out = {
            "initial_utility": result.initial_utility,
            "final_utility": result.final_utility,
            "profiling_tokens": result.summary["ledger"].get("profiling", 0),
        }
    out["wall_s"] = time.perf_counter() - start
    return kind, env, args, out


def _paired_outcome(ours: list[float], theirs: list[float], alpha: float = 0.05) -> str:
    """"better", "worse" or "same": a paired t-test over seeds of final utilities."""
    diff = np.asarray(ours) - np.asarray(theirs)
    # A constant difference has no spread to test; its sign decides.
    if not diff.any() or (np.ptp(diff) > 0 and stats.ttest_rel(ours, theirs).pvalue >= alpha):
        return "same"
    return "better" if diff.mean() > 0 else "worse"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds per environment and policy")
    parser.add_argument("--rounds", type=int, default=20, help="rounds per run")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--envs", default=",".join(SUITE), help="comma-separated suite environments")
    parser.add_argument("--policies", default=",".join(POLICIES), help="comma-separated policies")
    parser.add_argument("--profiling-frac", type=float, default=0.5, help="profiling budget of grid and read+pilots as a fraction of B (overhead)")
    parser.add_argument("--probe-noise-scale", type=float, default=1.0, help="diagnostic: multiply every environment's probe noise")
    parser.add_argument("--dynamics-noise-scale", type=float, default=1.0, help="diagnostic: multiply every environment's dynamics noise")
    parser.add_argument("--json", default="runs/benchmarks/allocation.json", help="where to write the results")
    args = parser.parse_args(argv)
    envs = [e for e in args.envs.split(",") if e]
    policies = [p for p in args.policies.split(",") if p]
    unknown = sorted(set(envs) - set(SUITE))
    if unknown:
        parser.error(f"unknown environments {unknown}; expected some of {list(SUITE)}")
    seeds = list(range(args.seeds))
    print("command:", shlex.join([sys.executable, *sys.argv]), flush=True)

    jobs = []
    noise = (args.probe_noise_scale, args.dynamics_noise_scale)
    for env in envs:
        jobs.append(("oracle", env, noise, (tuple(seeds), args.rounds)))
        for policy in policies:
            options = {"profiling_tokens": int(args.profiling_frac * ENVIRONMENTS[env][1])} if policy in PROFILED else {}
            jobs.extend(("run", env, noise, (policy, s, args.rounds, options)) for s in seeds)
    jobs.sort(key=lambda j: -COST.get("oracle" if j[0] == "oracle" else j[3][0], 0.2))

    start = time.perf_counter()
    results: dict[str, dict] = {env: {"budget_tokens": ENVIRONMENTS[env][1], "policies": {p: {} for p in policies}} for env in envs}
    with multiprocessing.get_context("fork").Pool(args.workers, initializer=_use_tmpfs) as pool:
        for kind, env, job_args, out in pool.imap_unordered(_job, jobs):
            if kind == "oracle":
                results[env]["oracle"] = out
                results[env]["initial_utility"] = out["initial_utility"]
            else:
                results[env]["policies"][job_args[0]][job_args[1]] = out
    wall = time.perf_counter() - start

    # Gain fractions (ratio of seed means) and mean final utilities.
    fraction: dict[str, dict[str, float]] = {}
    mean_final: dict[str, dict[str, float]] = {}
    for env in envs:
        u0 = results[env]["initial_utility"]
        oracle_gain = float(np.mean(results[env]["oracle"]["final_utility"])) - u0
        fraction[env], mean_final[env] = {}, {}
        for p in policies:
            finals = [results[env]["policies"][p][s]["final_utility"] for s in seeds]
            mean_final[env][p] = float(np.mean(finals))
            fraction[env][p] = (mean_final[env][p] - u0) / oracle_gain
            results[env]["policies"][p] = {
                "final_utility": finals,
                "gain_fraction_of_oracle": fraction[env][p],
                "profiling_tokens": [results[env]["policies"][p][s]["profiling_tokens"] for s in seeds],
                "wall_s": float(sum(results[env]["policies"][p][s]["wall_s"] for s in seeds)),
            }
        results[env]["oracle_gain"] = oracle_gain
        for key in ("declared", "one_step"):
            results[env][f"{key}_fraction"] = (float(np.mean(results[env]["oracle"][f"{key}_final_utility"])) - u0) / oracle_gain

    width = max(len(e) for e in envs) + 1
    print(f"\nGain as a fraction of the oracle's gain, mean_s(U - U0) / mean_s(U_oracle - U0); {len(seeds)} seeds, {args.rounds} rounds\n")
    header = f"{'environment':<{width}} {'U0':>6} {'oracle+':>7} {'method':>9} {'r-oracle':>8} {'1-step':>7} " + " ".join(f"{p:>11}" for p in policies)
    print(header)
    print("-" * len(header))
    for env in envs:
        o = results[env]["oracle"]
        print(
            f"{env:<{width}} {results[env]['initial_utility']:>6.2f} {results[env]['oracle_gain']:>7.2f} {o['method']:>9} {results[env]['declared_fraction']:>8.3f} {results[env]['one_step_fraction']:>7.3f} "
            + " ".join(f"{fraction[env][p]:>11.3f}" for p in policies)
        )
    print("-" * len(header))
    mean_fraction = {p: float(np.mean([fraction[e][p] for e in envs])) for p in policies}
    bounds = {key: float(np.mean([results[e][f"{key}_fraction"] for e in envs])) for key in ("declared", "one_step")}
    print(f"{'mean over environments':<{width + 26}}{bounds['declared']:>8.3f} {bounds['one_step']:>7.3f} " + " ".join(f"{mean_fraction[p]:>11.3f}" for p in policies))
    beats: dict[str, dict[str, float]] = {}
    for row in [r for r in READ_ROWS if r in policies]:
        beats[row] = {p: float(np.mean([mean_final[e][row] > mean_final[e][p] for e in envs])) for p in policies if p not in READ_ROWS}
        print(f"{row + ' beats (frac. of envs)':<{width + 43}}" + " ".join(f"{beats[row][p]:>11.2f}" if p in beats[row] else f"{'':>11}" for p in policies))
    # Every policy meets the same dynamics noise under a seed (the world draws it from the
    # seed and round), so seed-paired differences are fair and sharper than the means alone.
    paired: dict[str, dict[str, list[str]]] = {}
    for row in beats:
        paired[row] = {p: [_paired_outcome(results[e]["policies"][row]["final_utility"], results[e]["policies"][p]["final_utility"]) for e in envs] for p in beats[row]}
        print(f"{row + ' better/same/worse (p<.05)':<{width + 43}}" + " ".join(
            f"{'/'.join(str(paired[row][p].count(k)) for k in ('better', 'same', 'worse')):>11}" if p in paired[row] else f"{'':>11}" for p in policies))
    for row in [r for r in PROFILED if r in policies]:
        # The allotment counts in B's unit (trained tokens); the ledger's profiling entries
        # count every token the pilots processed (teacher prompt, generated, trained).
        print(f"{row} profiling overhead: {args.profiling_frac:.2f} x B allotted (pilots outside B); the pilots processed "
              f"{np.mean([np.mean(results[e]['policies'][row]['profiling_tokens']) / ENVIRONMENTS[e][1] for e in envs]):.3f} x B tokens in all phases")
    summary = {
        "mean_gain_fraction": mean_fraction,
        "declared_oracle_mean_fraction": bounds["declared"],
        "one_step_mean_fraction": bounds["one_step"],
        "beats_fraction": beats,
        "paired_outcome_per_env": {row: {p: dict(zip(envs, v, strict=True)) for p, v in by.items()} for row, by in paired.items()},
        "wall_s": wall,
    }
    summary["target"] = {}
    for row in beats:
        checked = [p for p in STATIC_AND_EXP3 if p in beats[row]]
        met_fraction = mean_fraction[row] >= TARGET_FRACTION
        met_beats = all(beats[row][p] >= TARGET_BEATS for p in checked)
        summary["target"][row] = {"fraction": met_fraction, "beats": met_beats}
        print(
            f"target: {row} >= {TARGET_FRACTION:.2f} of the oracle's gain: {'met' if met_fraction else 'NOT met'} ({mean_fraction[row]:.3f}); "
            f"beats {', '.join(checked)} on >= {TARGET_BEATS:.0%} of environments: {'met' if met_beats else 'NOT met'}"
        )
    print(f"wall time {wall:.0f} s on {args.workers} workers")
    payload = {
        "command": shlex.join([sys.executable, *sys.argv]),
        "seeds": seeds,
        "rounds": args.rounds,
        "profiling_frac": args.profiling_frac,
        "noise_scale": {"probe": args.probe_noise_scale, "dynamics": args.dynamics_noise_scale},
        "environments": results,
        "summary": summary,
    }
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1))
    print(f"results in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

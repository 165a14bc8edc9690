"""Scaling of the round loop: cost per round against budget, capabilities and round index;
memory and run-directory size over long runs.

Every run goes through the real round loop (``read_distill.runner.run``) with its run
directory under the system's temporary directory, and is sampled at each commit (a wrapper
around ``runner._commit``): wall clock, the run's own phase timers (``state.wall_s``), the
process's RSS and CPU time (which, unlike wall time, other load on the machine barely
moves) and the bytes under the run directory. Printed:

1. **Budget.** The simulated ``paper_20m`` world (8 capabilities) at budgets 10x apart,
   ``--rounds`` rounds, policies ``read`` and ``uniform``: per-round wall, CPU and policy
   time (medians), CPU time as a ratio to the smallest budget. A simulated round is cut into a fixed number of
   examples whatever the budget, so what is left is the loop's own cost.
2. **Capabilities.** Random simulated worlds (random sparse transfer, a linear task utility
   over every capability) with 4 to 32 capabilities, the same way.
3. **A 100-round simulated run** (``paper_20m``, ``read``) and **a 30-round real run** (the
   embedded micro-world, ``configs/demo.yaml`` on a small budget, 8 probe items per
   capability), each in a fresh process: RSS at round 10 and at the end, its slope per
   round after round 10, the process's peak RSS; per-round wall, CPU, policy and checkpoint
   time early and late; the run directory's bytes per round and where they go.

Only ratios and slopes are judged (flat: no leak, no growth with the round index); the
absolute times depend on the machine and its load:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/scaling.py [--rounds 20] [--sim-rounds 100] [--real-rounds 30]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from read_distill import runner, sim
from read_distill.sim.dynamics import LinearUtility, TransferDynamics
from read_distill.sim.environments import SUITE
from read_distill.sim.world import SimWorld

DEMO = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"
#: Rounds treated as warm-up before memory and per-round cost are compared.
WARMUP = 10


def rss_bytes() -> int:
    """This process's resident set size now."""
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        status = Path("/proc/self/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) * 1024


def tree_bytes(root: Path) -> dict[str, int]:
    """Bytes of the files under ``root``, by top-level entry (``rounds`` as one)."""
    out: dict[str, int] = {}
    for path in root.rglob("*"):
        if path.is_file():
            top = path.relative_to(root).parts[0]
            out[top] = out.get(top, 0) + path.stat().st_size
    return out


class RoundMeter:
    """Samples a run at every commit (round 0 included) while installed as a context manager."""

    def __init__(self) -> None:
        self.samples: list[dict[str, Any]] = []

    def __enter__(self) -> RoundMeter:
        self._real = runner._commit
        runner._commit = self._commit
        return self

    def __exit__(self, *exc: object) -> None:
        runner._commit = self._real

    def _commit(self, parts: Any, state: Any) -> None:
        self._real(parts, state)
        now, cpu = time.perf_counter(), time.process_time()
        sizes = tree_bytes(parts.run_dir)
        policy_json = parts.run_dir / "student" / "policy.json"
        self.samples.append({
            "round": state.round, "t": now, "cpu": cpu, "rss": rss_bytes(), "bytes": sizes, "wall_s": dict(state.wall_s),
            "policy_json": policy_json.stat().st_size if policy_json.exists() else 0,
            "state_json": (parts.run_dir / "state.json").stat().st_size,
            # The sampling's own time is left out of the next round's wall time.
            "meter_s": time.perf_counter() - now, "meter_cpu": time.process_time() - cpu,
        })

    def rounds(self) -> list[dict[str, Any]]:
        """Per round t >= 1: wall and phase seconds of the round, RSS and run-dir bytes at its commit."""
        out = []
        for prev, cur in zip(self.samples, self.samples[1:], strict=False):
            phases = {k: v - prev["wall_s"].get(k, 0.0) for k, v in cur["wall_s"].items()}
            out.append({
                "round": cur["round"], "wall": cur["t"] - prev["t"] - prev["meter_s"],
                "cpu": cur["cpu"] - prev["cpu"] - prev["meter_cpu"], "phases": phases, "rss": cur["rss"],
                "bytes": sum(cur["bytes"].values()), "grew": sum(cur["bytes"].values()) - sum(prev["bytes"].values()), "by_entry": cur["bytes"], "policy_json": cur["policy_json"],
                "state_json": cur["state_json"],
            })
        return out


def random_world(n: int, seed: int = 0) -> SimWorld:
    """A simulated world of ``n`` capabilities: sparse random transfer (diagonals 1.5–8 points
    at 20M tokens, 2.5x that at 150M), S0 uniform in 10–60, a linear utility with random
    weights over every capability."""
    rng = np.random.default_rng([seed, n])
    small = rng.normal(0.3, 1.0, (n, n)) * (rng.random((n, n)) < 0.25)
    diag = rng.uniform(1.5, 8.0, n)
    small[np.arange(n), np.arange(n)] = diag
    large = small * 2.0
    large[np.arange(n), np.arange(n)] = diag * 2.5
    dynamics = TransferDynamics(small, large, 20e6, 150e6, ceiling=100.0, saturation=1.0, noise_std=0.2)
    weights = rng.dirichlet(np.full(n, 1.0))
    return SimWorld([f"cap{i:02d}" for i in range(n)], rng.uniform(10.0, 60.0, n), dynamics, LinearUtility(weights), weights, 0.5, name=f"random_{n}")


def sim_round_costs(world: SimWorld, policy: str, budget: int, rounds: int) -> tuple[float, float, float]:
    """Median per-round wall, CPU and policy seconds of one simulated run."""
    with RoundMeter() as meter:
        sim.run(world, policy, budget, rounds, seed=0)
    per = meter.rounds()
    return tuple(float(np.median([r[k] if k != "policy" else r["phases"].get(k, 0.0) for r in per])) for k in ("wall", "cpu", "policy"))


def sweep(title: str, label: str, cases: list[tuple[Any, SimWorld, int]], rounds: int, policies: list[str]) -> list[str]:
    """A table of per-round costs over ``cases`` (value, world, budget); CPU time as a ratio to the first case."""
    head = "".join(f"{p + ' wall ms':>16}{'cpu ms':>8}{'policy ms':>11}{'cpu x first':>13}" for p in policies)
    lines = ["", title, f"{label:>14}" + head]
    base: dict[str, float] = {}
    for value, world, budget in cases:
        cells = ""
        for p in policies:
            wall, cpu, pol = sim_round_costs(world, p, budget, rounds)
            base.setdefault(p, cpu)
            cells += f"{1e3 * wall:>16.2f}{1e3 * cpu:>8.2f}{1e3 * pol:>11.2f}{cpu / base[p]:>13.2f}"
        lines.append(f"{value:>14}" + cells)
    return lines


def long_sim_run(rounds: int) -> dict[str, Any]:
    """The long simulated run, in this (fresh) process."""
    world = SUITE["paper_20m"]()
    with RoundMeter() as meter:
        sim.run(world, "read", 20_000_000 * rounds // 20, rounds, seed=0)
    return {"rounds": meter.rounds(), "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def real_run(rounds: int, tokens_per_round: int) -> dict[str, Any]:
    """The real micro-world run, in this (fresh) process."""
    from read_distill.config import load_config

    config = load_config(DEMO, [
        f"run.rounds={rounds}", f"budget.total_tokens={rounds * tokens_per_round}", "probe.items_per_capability=8",
        "run.dev_every=10", "run.report=false",
    ])
    with tempfile.TemporaryDirectory(prefix="rd-scaling-") as tmp, RoundMeter() as meter:
        runner.run(config, Path(tmp) / "run", quiet=True)
    return {"rounds": meter.rounds(), "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def _in_fresh_process(fn: Any, *args: Any) -> dict[str, Any]:
    # A spawned interpreter: its RSS and peak hold this run alone, not the sweeps before it.
    pool = multiprocessing.get_context("spawn").Pool(1)
    try:
        return pool.apply(fn, args)
    finally:
        # close + join rather than the context manager's terminate, which leaves a semaphore behind.
        pool.close()
        pool.join()


def _slope(xs: list[float], ys: list[float]) -> float:
    return float(np.polyfit(xs, ys, 1)[0]) if len(xs) > 1 else 0.0


def long_run_report(name: str, result: dict[str, Any]) -> list[str]:
    """RSS, per-round cost and run-dir size over one long run."""
    per = result["rounds"]
    n = len(per)
    late = [r for r in per if r["round"] > WARMUP]
    at_warm, last = per[min(WARMUP, n) - 1], per[-1]
    mib = 2**20
    rss_slope = _slope([r["round"] for r in late], [r["rss"] for r in late])
    policy = [r["phases"].get("policy", 0.0) for r in per]
    checkpoint = [r["phases"].get("checkpoint", 0.0) for r in per]
    wall = [r["wall"] for r in per]
    cpu = [r["cpu"] for r in per]
    grew = [r["grew"] for r in per]
    early, final = slice(WARMUP, 2 * WARMUP), slice(n - WARMUP, n)
    lines = [
        "",
        f"{name}: {n} rounds",
        f"  RSS at round {at_warm['round']}: {at_warm['rss'] / mib:.1f} MiB; at round {last['round']}: {last['rss'] / mib:.1f} MiB; "
        f"ratio {last['rss'] / at_warm['rss']:.3f}; slope after round {WARMUP}: {rss_slope / 1024:+.1f} KiB/round; "
        f"peak (process) {result['peak_rss'] / mib:.1f} MiB",
        f"  {'rounds':<12}{'wall ms':>10}{'cpu ms':>10}{'policy ms':>11}{'checkpoint ms':>15}{'run-dir KiB/round':>19}",
    ]
    for label, part in (("1-10", slice(0, WARMUP)), (f"{WARMUP + 1}-{2 * WARMUP}", early), (f"{n - WARMUP + 1}-{n}", final)):
        lines.append(f"  {label:<12}{1e3 * np.mean(wall[part]):>10.1f}{1e3 * np.mean(cpu[part]):>10.1f}{1e3 * np.mean(policy[part]):>11.2f}"
                     f"{1e3 * np.mean(checkpoint[part]):>15.2f}{np.mean(grew[part]) / 1024:>19.1f}")
    lines += [
        f"  per round, rounds {n - WARMUP + 1}-{n} / {WARMUP + 1}-{2 * WARMUP}: wall {np.mean(wall[final]) / np.mean(wall[early]):.2f}; "
        f"cpu {np.mean(cpu[final]) / np.mean(cpu[early]):.2f}; "
        f"policy: {np.mean(policy[final]) / np.mean(policy[early]):.2f}; checkpoint: "
        f"{np.mean(checkpoint[final]) / np.mean(checkpoint[early]):.2f}; slopes after round {WARMUP}: wall "
        f"{1e6 * _slope([r['round'] for r in late], wall[WARMUP:]):+.0f} us/round, cpu "
        f"{1e6 * _slope([r['round'] for r in late], cpu[WARMUP:]):+.0f}, policy "
        f"{1e6 * _slope([r['round'] for r in late], policy[WARMUP:]):+.0f}, checkpoint "
        f"{1e6 * _slope([r['round'] for r in late], checkpoint[WARMUP:]):+.0f}",
        f"  run dir at the end: {last['bytes'] / 1024:.0f} KiB = "
        + ", ".join(f"{k} {v / 1024:.0f}" for k, v in sorted(last["by_entry"].items(), key=lambda kv: -kv[1]) if v >= 1024),
        f"  rewritten each round: student/policy.json {at_warm['policy_json']:,} B at round {at_warm['round']} -> "
        f"{last['policy_json']:,} B at round {last['round']}; state.json {at_warm['state_json']:,} -> {last['state_json']:,} B",
    ]
    return lines


def main() -> None:
    """Measure and print."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=20, help="rounds of each sweep run")
    p.add_argument("--sim-rounds", type=int, default=100, help="rounds of the long simulated run")
    p.add_argument("--real-rounds", type=int, default=30, help="rounds of the real micro-world run")
    p.add_argument("--real-tokens", type=int, default=1000, help="budget per round of the real run, in tokens")
    a = p.parse_args()
    if min(a.sim_rounds, a.real_rounds) < 2 * WARMUP:
        p.error(f"--sim-rounds and --real-rounds need at least {2 * WARMUP} rounds")
    print("command:", shlex.join([sys.executable, *sys.argv]), flush=True)
    print(f"torch threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; run dirs under {tempfile.gettempdir()}")
    policies = ["read", "uniform"]
    budgets = [2_000_000, 20_000_000, 200_000_000, 2_000_000_000]
    paper = SUITE["paper_20m"]()
    print("\n".join(sweep(f"1. per-round cost vs budget (paper_20m, 8 capabilities, {a.rounds} rounds; medians)", "budget",
                          [(f"{b:,}", paper, b) for b in budgets], a.rounds, policies)), flush=True)
    print("\n".join(sweep(f"2. per-round cost vs capabilities (random worlds, budget 20,000,000, {a.rounds} rounds; medians)",
                          "capabilities", [(n, random_world(n), 20_000_000) for n in (4, 8, 16, 32)], a.rounds, policies)), flush=True)
    long_sim = _in_fresh_process(long_sim_run, a.sim_rounds)
    print("\n".join(long_run_report("3a. simulated run (paper_20m, read, fresh process)", long_sim)), flush=True)
    real = _in_fresh_process(real_run, a.real_rounds, a.real_tokens)
    print("\n".join(long_run_report(
        f"3b. real run (micro-world, configs/demo.yaml, {a.real_tokens:,} tokens/round, 8 probe items per capability, fresh process)", real)))
    ratios = {}
    for name, result in (("sim", long_sim), ("real", real)):
        per = result["rounds"]
        ratios[name] = per[-1]["rss"] / per[WARMUP - 1]["rss"]
    print(f"\nheadline: RSS at the last round / round {WARMUP}: simulated {ratios['sim']:.3f} ({a.sim_rounds} rounds), "
          f"real {ratios['real']:.3f} ({a.real_rounds} rounds)")


if __name__ == "__main__":
    main()

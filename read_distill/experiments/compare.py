"""Methods × seeds × budgets, same world: ``comparison.json`` and Markdown tables (one per
budget) with mean ± std and, for every method against ``read``, the difference with its
interval and paired and Welch tests, Holm-corrected across the table; with several
budgets, the equivalent-budget ratio."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from read_distill.config import Config
from read_distill.experiments.methods import SINGLE_CAPABILITY, method_config
from read_distill.experiments.statistics import holm, paired, vs_read_cells, welch
from read_distill.report import write_comparison
from read_distill.rewards import essential
from read_distill.rundir import RunDirError, config_difference
from read_distill.store import read_json, write_json, write_text
from read_distill.workers import die_with_parent


def run_metrics(summary: dict[str, Any], requirement: tuple[float, ...], top_k: int) -> dict[str, float]:
    """Utility and on-/off-target profile change of one finished run."""
    caps = list(summary["initial_profile"])
    ess = {caps[i] for i in essential(requirement, top_k)}
    change = {c: summary["final_profile"][c] - summary["initial_profile"][c] for c in caps}
    off = [change[c] for c in caps if c not in ess]
    return {
        "final_utility": summary["final_utility"],
        "utility_gain": summary["final_utility"] - summary["initial_utility"],
        "on_target_change": float(np.mean([change[c] for c in ess])) if ess else 0.0,
        "off_target_change": float(np.mean(off)) if off else 0.0,
        # Harm alone: a gain elsewhere does not cancel it (docs/method.md §8).
        "negative_transfer": float(np.mean([min(0.0, x) for x in off])) if off else 0.0,
        "profile_mean": float(np.mean(list(summary["final_profile"].values()))),
    }


def task_card(config: Config, world) -> Any:
    """The task card the comparison is judged on, without loading models: a simulated
    world builds its card from its environment (cheap); the others read the named card."""
    from read_distill.runner import make_world
    from read_distill.tasks import load_card

    if world is not None:
        return world.card
    return make_world(config).card if config.world.kind == "sim" else load_card(config.task.card)


def compare(
    config: Config,
    methods: list[str],
    seeds: list[int],
    out: Path,
    budgets: list[int] | None = None,
    quiet: bool = False,
    world=None,
    jobs: int = 1,
) -> dict[str, Any]:
    """Run every method × seed × budget (resuming runs already in ``out``) and tabulate.

    Run dirs are ``out/<budget>/<method>/seed<seed>``. Every method's config is checked
    before ``out`` is created. Without a ``world`` each method gets one built from its own
    config on its first run (a method may change how the world's student trains); with
    ``jobs`` > 1, runs go to that many worker processes, each building its own.
    """
    from read_distill.preflight import check_inputs
    from read_distill.runner import make_world, run
    from read_distill.tasks import card_requirement

    if jobs > 1 and world is not None:
        raise ValueError("compare: jobs > 1 builds a world in each worker; give no world")
    budgets = budgets or [config.budget.total_tokens]
    configs = {(b, m, s): method_config(config, m, s, b) for b in budgets for m in methods for s in seeds}
    if world is None:
        for m in methods:
            check_inputs(configs[budgets[0], m, seeds[0]])
    # On-target and off-target change are judged on the task's own requirement, also for
    # a method (an ablation) that gives the policy another one.
    card = task_card(config, world)
    requirement = card_requirement(card, tuple(config.capabilities), config.task.requirement)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    run_dirs = {key: out / str(key[0]) / key[1] / f"seed{key[2]}" for key in configs}
    # A run dir is reused (read back or resumed) only if it ran this very config: a method
    # redefined or a config edited since would otherwise put stale runs in the tables.
    for key, d in run_dirs.items():
        if (d / "config.yaml").exists() and (field := config_difference(d / "config.yaml", configs[key])) is not None:
            raise RunDirError(f"{d}: was run with another config ({field}); use another --out, or remove that run dir to redo it")
    pending = [key for key, d in run_dirs.items() if not (d / "summary.json").exists()]
    if jobs > 1:
        _run_parallel({key: configs[key] for key in pending}, run_dirs, jobs, quiet)
    else:
        worlds = dict.fromkeys(methods, world) if world is not None else {}
        for k, key in enumerate(pending, 1):
            budget, method, seed = key
            if not quiet:
                print(f"[compare] run {k} of {len(pending)}: budget {budget:,}: {method} seed {seed}", flush=True)
            if method not in worlds:
                worlds[method] = make_world(configs[key])
            run(configs[key], run_dirs[key], world=worlds[method], resume=_started(run_dirs[key]), quiet=True)
    tables = []
    for budget in budgets:
        runs = {m: [run_metrics(read_json(run_dirs[budget, m, s] / "summary.json"), requirement, config.reward.top_k) for s in seeds]
                for m in methods}
        tables.append({"budget": budget, **tabulate(runs)})
    single = [m for m in methods if m in SINGLE_CAPABILITY]
    equivalent = equivalent_budget(tables, single) if "read" in methods and single and len(budgets) > 1 else None
    header = (
        f"{config.run.name}: {config.run.rounds} rounds, budget unit {config.budget.unit}, seeds {seeds}; mean ± std over "
        "seeds. Tests on final utility against read: paired over seeds (every method runs the same seeds) and Welch; "
        "p-values Holm-corrected within each budget's table."
    )
    parts = [header] + [f"### Budget {t['budget']:,} tokens\n\n{t['table']}" for t in tables]
    if equivalent is not None:
        parts.append(equivalent_text(equivalent))
    text = "\n\n".join(parts)
    result = {"config": config.model_dump(mode="json"), "task": card.name, "methods": methods, "seeds": seeds, "budgets": budgets,
              "tables": tables, "equivalent_budget": equivalent, "text": text}
    write_json(out / "comparison.json", result)
    write_text(out / "comparison.md", text + "\n")
    write_comparison(result, out / "comparison.html")
    return result


def _started(run_dir: Path) -> bool:
    """Whether a run was started in ``run_dir`` (its config written): it resumes, from
    round 0 where it was stopped before committing any."""
    return (run_dir / "config.yaml").exists()


def _run_one(config: Config, run_dir: Path, threads: int) -> float:
    """One run in a worker process (its own world), on ``threads`` torch threads."""
    from read_distill.runner import run

    if config.world.kind != "sim":
        import torch

        torch.set_num_threads(threads)
    return run(config, run_dir, resume=_started(run_dir), quiet=True)["final_utility"]


def _run_parallel(configs: dict[tuple[int, str, int], Config], run_dirs: dict, jobs: int, quiet: bool) -> None:
    """Every run of ``configs`` in ``jobs`` worker processes (spawned: no state shared with
    this one), the machine's cores split between them. The first failure stops the
    comparison once the runs in flight end; they and every finished run resume or are
    kept. Workers end with the comparison's process (:func:`workers.die_with_parent`)."""
    threads = max(1, (os.cpu_count() or 1) // jobs)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=die_with_parent) as pool:
        futures = {pool.submit(_run_one, cfg, run_dirs[key], threads): key for key, cfg in configs.items()}
        try:
            for k, done in enumerate(as_completed(futures), 1):
                budget, method, seed = futures[done]
                utility = done.result()
                if not quiet:
                    print(f"[compare] done {k} of {len(futures)}: budget {budget:,}: {method} seed {seed}: utility {utility:.2f}", flush=True)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def tabulate(runs: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    """Mean ± std of every metric per method, and every method against ``read``: the
    difference with its interval, paired and Welch tests, each Holm-corrected across
    the table. Returns ``{"results": ..., "table": Markdown}``."""
    metrics = ["final_utility", "utility_gain", "on_target_change", "off_target_change", "negative_transfer", "profile_mean"]
    table: dict[str, dict[str, Any]] = {}
    for method, rows in runs.items():
        table[method] = {}
        for m in metrics:
            values = [r[m] for r in rows]
            table[method][m] = {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0, "values": values}
    others = [m for m in runs if m != "read"] if "read" in runs else []
    base = [r["final_utility"] for r in runs.get("read", [])]
    for method in others:
        values = [r["final_utility"] for r in runs[method]]
        table[method]["vs_read"] = {"welch": welch(base, values), "paired": paired(base, values)}
    # One family per test: every method against read in this table.
    for kind in ("welch", "paired"):
        for method, p in zip(others, holm([table[o]["vs_read"][kind]["p"] for o in others]), strict=True):
            table[method]["vs_read"][kind]["p_holm"] = p
    md = [
        "| method | final utility | read − method (paired, 95 % CI) | p paired (Holm) | p Welch (Holm) | on-target Δ | off-target Δ | negative transfer |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method, e in table.items():
        cells = [f"{e['final_utility']['mean']:.2f} ± {e['final_utility']['std']:.2f}"]
        if "vs_read" in e:
            cells += vs_read_cells(e["vs_read"])
        else:
            cells += ["—", "—", "—"]
        cells += [f"{e[m]['mean']:.2f} ± {e[m]['std']:.2f}" for m in ("on_target_change", "off_target_change", "negative_transfer")]
        md.append(f"| {method} | " + " | ".join(cells) + " |")
    return {"results": table, "table": "\n".join(md)}


def equivalent_budget(tables: list[dict[str, Any]], single: list[str]) -> list[dict[str, Any]]:
    """Per budget B: the budget the best single-capability baseline needs to reach read's
    mean final utility at B, and its ratio to B (docs/method.md §8).

    The baseline curve is, per budget run, the best mean over the ``single`` methods; the
    crossing is interpolated linearly in log budget between the two budgets around it.
    Where the curve is already there at the smallest budget, that budget is an upper
    bound (``bound: "at most"``); where it never gets there, the largest budget is a lower
    bound (``bound: "not reached"``)."""
    budgets = [t["budget"] for t in tables]
    curve = [max(t["results"][m]["final_utility"]["mean"] for m in single) for t in tables]
    out = []
    for t in tables:
        target = t["results"]["read"]["final_utility"]["mean"]
        reach, bound = float(budgets[-1]), "not reached"
        for i, value in enumerate(curve):
            if value >= target:
                if i == 0:
                    reach, bound = float(budgets[0]), "at most"
                else:
                    frac = (target - curve[i - 1]) / (value - curve[i - 1])
                    reach, bound = float(np.exp(np.log(budgets[i - 1]) + frac * np.log(budgets[i] / budgets[i - 1]))), "interpolated"
                break
        out.append({"budget": t["budget"], "read_utility": target, "baseline_budget": reach, "ratio": reach / t["budget"], "bound": bound})
    return out


#: How an equivalent-budget row's bound is written before its numbers.
BOUND_SIGN = {"interpolated": "", "at most": "≤ ", "not reached": "> "}


def equivalent_text(rows: list[dict[str, Any]]) -> str:
    """The equivalent-budget rows as a Markdown table."""
    lines = ["### Equivalent budget (best single-capability baseline to reach read)", "",
             "| budget | read | baseline needs | ratio |", "|---|---|---|---|"]
    for r in rows:
        w = BOUND_SIGN[r["bound"]]
        lines.append(f"| {r['budget']:,} | {r['read_utility']:.2f} | {w}{r['baseline_budget']:,.0f} | {w}{r['ratio']:.2f}× |")
    return "\n".join(lines)


def list_runs(root: Path) -> list[str]:
    """One line per run directory under ``root``: name, policy, progress, utility."""
    lines = []
    for state_path in sorted(Path(root).glob("**/state.json")):
        run_dir = state_path.parent
        state = read_json(state_path)
        summary = run_dir / "summary.json"
        if summary.exists():
            s = read_json(summary)
            status = f"done      U {s['initial_utility']:.2f} -> {s['final_utility']:.2f}  policy {s['policy']}"
        else:
            status = f"stopped   after round {state['round']}"
        lines.append(f"{run_dir}  {status}")
    return lines or [f"no runs under {root}"]

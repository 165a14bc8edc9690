"""Policies × seeds at equal budget, same world: ``comparison.json`` and a Markdown table
with mean ± std and Welch t-tests of every policy against ``read``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from read_distill.config import Config
from read_distill.rewards import essential
from read_distill.store import read_json, write_json, write_text


def _with(config: Config, policy: str, seed: int) -> Config:
    return config.model_copy(
        update={
            "policy": config.policy.model_copy(update={"name": policy}),
            "run": config.run.model_copy(update={"seed": seed}),
        }
    )


def welch(a: list[float], b: list[float]) -> tuple[float, float]:
    """Welch's t statistic and two-sided p-value (nan when either side is degenerate)."""
    from scipy import stats

    if len(a) < 2 or len(b) < 2 or (np.var(a) == 0 and np.var(b) == 0):
        return float("nan"), float("nan")
    res = stats.ttest_ind(a, b, equal_var=False)
    return float(res.statistic), float(res.pvalue)


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
        "profile_mean": float(np.mean(list(summary["final_profile"].values()))),
    }


def compare(config: Config, policies: list[str], seeds: list[int], out: Path, quiet: bool = False, world=None) -> dict[str, Any]:
    """Run every policy with every seed (resuming runs already in ``out``) and tabulate.

    Without a ``world`` the inputs are checked before ``out`` is created.
    """
    from read_distill.preflight import check_inputs
    from read_distill.runner import make_world, run
    from read_distill.tasks import card_requirement

    if world is None:
        check_inputs(config)
        world = make_world(config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    requirement = card_requirement(world.card, world.capabilities, config.task.requirement)
    runs: dict[str, list[dict[str, float]]] = {}
    for policy in policies:
        for seed in seeds:
            run_dir = out / policy / f"seed{seed}"
            summary_path = run_dir / "summary.json"
            if summary_path.exists():
                summary = read_json(summary_path)
            else:
                if not quiet:
                    print(f"[compare] {policy} seed {seed}", flush=True)
                summary = run(_with(config, policy, seed), run_dir, world=world, resume=(run_dir / "state.json").exists(), quiet=True)
            runs.setdefault(policy, []).append(run_metrics(summary, requirement, config.reward.top_k))
    metrics = ["final_utility", "utility_gain", "on_target_change", "off_target_change", "profile_mean"]
    table: dict[str, dict[str, Any]] = {}
    for policy, rows in runs.items():
        entry: dict[str, Any] = {}
        for m in metrics:
            values = [r[m] for r in rows]
            entry[m] = {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0, "values": values}
        if "read" in runs and policy != "read":
            t, p = welch([r["final_utility"] for r in runs["read"]], [r["final_utility"] for r in rows])
            entry["welch_vs_read"] = {"t": t, "p": p}
        table[policy] = entry
    md = ["| policy | final utility | utility gain | on-target Δ | off-target Δ | p (vs read) |", "|---|---|---|---|---|---|"]
    for policy, e in table.items():
        p = e.get("welch_vs_read", {}).get("p")
        cells = [f"{e[m]['mean']:.2f} ± {e[m]['std']:.2f}" for m in metrics[:4]]
        md.append(f"| {policy} | " + " | ".join(cells) + f" | {'—' if p is None else f'{p:.3g}'} |")
    text = (
        f"{config.run.name}: budget {config.budget.total_tokens:,} tokens ({config.budget.unit}), "
        f"{config.run.rounds} rounds, seeds {seeds}; mean ± std over seeds; Welch t-test on final utility.\n\n" + "\n".join(md)
    )
    result = {"config": config.model_dump(mode="json"), "policies": policies, "seeds": seeds, "results": table, "table": text}
    write_json(out / "comparison.json", result)
    write_text(out / "comparison.md", text + "\n")
    return result


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

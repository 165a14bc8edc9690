"""Policies × seeds at equal budget, same world: ``comparison.json`` and a Markdown table
with mean ± std and, for every policy against ``read``, the difference with its interval
and Welch and paired tests, Holm-corrected across the table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from read_distill.config import Config
from read_distill.experiments.statistics import holm, paired, welch
from read_distill.rewards import essential
from read_distill.store import read_json, write_json, write_text


def _with(config: Config, policy: str, seed: int) -> Config:
    return config.model_copy(
        update={
            "policy": config.policy.model_copy(update={"name": policy}),
            "run": config.run.model_copy(update={"seed": seed}),
        }
    )


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
        table[policy] = {}
        for m in metrics:
            values = [r[m] for r in rows]
            table[policy][m] = {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0, "values": values}
    others = [p for p in runs if p != "read"] if "read" in runs else []
    base = [r["final_utility"] for r in runs.get("read", [])]
    for policy in others:
        values = [r["final_utility"] for r in runs[policy]]
        table[policy]["vs_read"] = {"welch": welch(base, values), "paired": paired(base, values)}
    # One family per test: every policy against read in this table.
    for kind in ("welch", "paired"):
        for policy, p in zip(others, holm([table[o]["vs_read"][kind]["p"] for o in others]), strict=True):
            table[policy]["vs_read"][kind]["p_holm"] = p
    md = [
        "| policy | final utility | read − policy (paired, 95 % CI) | p paired (Holm) | p Welch (Holm) | on-target Δ | off-target Δ |",
        "|---|---|---|---|---|---|---|",
    ]
    for policy, e in table.items():
        cells = [f"{e['final_utility']['mean']:.2f} ± {e['final_utility']['std']:.2f}"]
        if "vs_read" in e:
            pt, wt = e["vs_read"]["paired"], e["vs_read"]["welch"]
            cells += [f"{pt['diff']:+.2f} [{pt['ci95'][0]:+.2f}, {pt['ci95'][1]:+.2f}]",
                      f"{pt['p']:.3g} ({pt['p_holm']:.3g})", f"{wt['p']:.3g} ({wt['p_holm']:.3g})"]
        else:
            cells += ["—", "—", "—"]
        cells += [f"{e[m]['mean']:.2f} ± {e[m]['std']:.2f}" for m in ("on_target_change", "off_target_change")]
        md.append(f"| {policy} | " + " | ".join(cells) + " |")
    text = (
        f"{config.run.name}: budget {config.budget.total_tokens:,} tokens ({config.budget.unit}), "
        f"{config.run.rounds} rounds, seeds {seeds}; mean ± std over seeds. Tests on final utility against read: "
        "paired over seeds (every policy runs the same seeds) and Welch; p-values Holm-corrected across the table.\n\n"
        + "\n".join(md)
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

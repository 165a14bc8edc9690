"""The transfer study through the run path: one-hot distillation on each capability at
several budgets and seeds gives the transfer matrix T_ij(B) (docs/method.md §1, §8).

Each (capability i, budget B, seed) is a run of ``compare``'s method ``only_<i>``: the
whole budget on capability i every round, with the same teacher, student, prompt source,
replay and probes as every other run. T_ij(B) is the change of capability j's probe
score from the run's initial measurement to its final one, as a mean and 95 % interval
over seeds. Run dirs, resume and ``--jobs`` are ``compare``'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from read_distill.config import Config
from read_distill.experiments.compare import compare
from read_distill.experiments.methods import ONLY
from read_distill.experiments.statistics import mean_interval
from read_distill.store import read_json, write_json, write_text


def transfer(config: Config, seeds: list[int], out: Path, budgets: list[int], quiet: bool = False, world=None, jobs: int = 1) -> dict[str, Any]:
    """Run (or read back) every one-hot run and write ``transfer.json``, ``transfer.md``
    and ``transfer.png`` (a heat-map per budget) in ``out``."""
    caps = list(config.capabilities)
    compare(config, [f"{ONLY}{c}" for c in caps], seeds, out, budgets=budgets, quiet=quiet, world=world, jobs=jobs)
    matrices = []
    for budget in budgets:
        rows = {}
        for i in caps:
            runs = [read_json(Path(out) / str(budget) / f"{ONLY}{i}" / f"seed{s}" / "summary.json") for s in seeds]
            rows[i] = {j: mean_interval([r["final_profile"][j] - r["initial_profile"][j] for r in runs]) for j in caps}
        off = [rows[i][j][0] for i in caps for j in caps if i != j]
        matrices.append({
            "budget": budget,
            "matrix": {i: {j: list(v) for j, v in row.items()} for i, row in rows.items()},
            "diagonal": {i: rows[i][i][0] for i in caps},
            # The spillover harm: how much one-hot training costs the other capabilities.
            "mean_negative_off_diagonal": sum(min(0.0, x) for x in off) / len(off),
        })
    result = {"capabilities": caps, "seeds": seeds, "budgets": budgets, "task": config.task.card, "matrices": matrices}
    out = Path(out)
    write_json(out / "transfer.json", result)
    write_text(out / "transfer.md", summarise(result) + "\n")
    _heatmaps(result, out / "transfer.png")
    return result


def summarise(result: dict[str, Any]) -> str:
    """Markdown: T_ij(B) per budget (rows: the capability trained; columns: the one
    measured), the diagonal across budgets (diminishing returns) and the spillover harm."""
    caps, parts = result["capabilities"], []
    for m in result["matrices"]:
        head = "| trained \\ measured | " + " | ".join(caps) + " |\n|---|" + "---|" * len(caps)
        body = [
            f"| {i} | " + " | ".join(f"{v[0]:+.1f} [{v[1]:+.1f}, {v[2]:+.1f}]" for v in (m["matrix"][i][j] for j in caps)) + " |"
            for i in caps
        ]
        parts.append(f"### T_ij at {m['budget']:,} tokens (mean [95 % interval] over seeds {result['seeds']})\n\n" + "\n".join([head, *body]))
    budgets = [m["budget"] for m in result["matrices"]]
    diag = ["| capability | " + " | ".join(f"{b:,}" for b in budgets) + " |", "|---|" + "---|" * len(budgets)]
    diag += [f"| {c} | " + " | ".join(f"{m['diagonal'][c]:+.1f}" for m in result["matrices"]) + " |" for c in caps]
    harm = ", ".join(f"{m['budget']:,}: {m['mean_negative_off_diagonal']:+.2f}" for m in result["matrices"])
    parts.append("### Self-gain T_ii by budget\n\n" + "\n".join(diag))
    parts.append(f"Spillover harm (mean of min(0, T_ij) over i ≠ j) by budget: {harm}")
    return "\n\n".join(parts)


def _heatmaps(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    caps, mats = result["capabilities"], result["matrices"]
    fig, axes = plt.subplots(1, len(mats), figsize=(4.2 * len(mats), 4.0), squeeze=False, layout="constrained")
    limit = max(1.0, max(abs(m["matrix"][i][j][0]) for m in mats for i in caps for j in caps))
    for ax, m in zip(axes[0], mats, strict=True):
        image = ax.imshow([[m["matrix"][i][j][0] for j in caps] for i in caps], cmap="RdBu", vmin=-limit, vmax=limit)
        ax.set(title=f"T_ij at {m['budget']:,} tokens", xlabel="measured j", ylabel="trained i")
        ax.set_xticks(range(len(caps)), caps, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(len(caps)), caps, fontsize=7)
    fig.colorbar(image, ax=axes[0].tolist(), label="score change (points)")
    fig.savefig(path, dpi=110)
    plt.close(fig)

"""Run directories → human-readable summaries. Reads artefacts; computes nothing new."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def format_summary(summary: dict[str, Any], run_dir: Path) -> str:
    """The final table printed after a run: utility, profile, tokens and time by phase."""
    lines = [
        f"run dir      {run_dir}",
        f"task         {summary['task']}   policy {summary['policy']}   seed {summary['seed']}",
        f"utility      {summary['initial_utility']:.2f} -> {summary['final_utility']:.2f}"
        f"  ({summary['final_utility'] - summary['initial_utility']:+.2f})",
        "",
        f"{'capability':<20}{'initial':>9}{'final':>9}{'change':>9}",
    ]
    for c, before in summary["initial_profile"].items():
        after = summary["final_profile"][c]
        lines.append(f"{c:<20}{before:>9.2f}{after:>9.2f}{after - before:>+9.2f}")
    ledger = summary["ledger"]
    lines += ["", f"tokens       billable {ledger['billable']:,} of budget {ledger['budget']:,} ({summary['budget_unit']})"]
    for phase in ("teacher_prompt", "teacher_gen", "train", "probe", "eval", "profiling"):
        if phase in ledger:
            lines.append(f"  {phase:<18}{ledger[phase]:>14,}")
    lines += ["", "wall time (s)"]
    for phase, seconds in summary["wall_s"].items():
        lines.append(f"  {phase:<18}{seconds:>14.2f}")
    return "\n".join(lines)

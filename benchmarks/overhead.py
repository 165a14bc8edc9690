"""ReAD's control overhead: what probes, dev evaluation and the policy cost next to distillation.

Runs ``configs/demo.yaml`` (or CONFIG with overrides) once, or reads a finished run
directory, and prints from its ``summary.json`` and ``ledger.jsonl`` the wall time and the
tokens of every phase as shares of the run, measured in that run. Control is the work
plain distillation would not do: the probes after each round, the dev evaluations and the
policy. The profile and test utility measured before round 1 and after the last round
(wall phase ``measure``) are the run's result, which any method needs, so they are not
control. The last line is the control overhead in % of wall time:

    .venv/bin/python benchmarks/overhead.py [CONFIG] [key=value ...]
    .venv/bin/python benchmarks/overhead.py --run-dir RUN_DIR
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from pathlib import Path

from read_distill.runner import FINAL, INITIAL

#: Wall-clock phases (summary ``wall_s``) that are control, not distillation.
CONTROL_WALL = ("probe", "dev", "policy")


def token_phases(ledger_lines: list[str]) -> dict[str, int]:
    """Tokens processed per ledger phase, with the probes before round 1 and after the last
    round and the test evaluations (``eval``) as one phase, ``measure``: the result."""
    out: dict[str, int] = defaultdict(int)
    for line in ledger_lines:
        e = json.loads(line)
        measured = e["phase"] == "eval" or (e["phase"] == "probe" and e["round"] in (INITIAL, FINAL))
        out["measure" if measured else e["phase"]] += e["tokens"]
    return dict(out)


def overhead(summary: dict, tokens: dict[str, int]) -> list[str]:
    """The table of phases and the control shares, as printed lines."""
    wall = summary["wall_s"]
    total_s = sum(wall.values())
    total_t = sum(tokens.values())
    lines = [f"{'wall phase':<16}{'s':>10}{'share':>9}"]
    lines += [f"{p:<16}{s:>10.1f}{100 * s / total_s:>8.1f}%" for p, s in sorted(wall.items(), key=lambda kv: -kv[1])]
    lines += ["", f"{'token phase':<16}{'tokens':>14}{'share':>9}"]
    lines += [f"{p:<16}{t:>14,}{100 * t / total_t:>8.1f}%" for p, t in sorted(tokens.items(), key=lambda kv: -kv[1])]
    lines.append("")
    control_s = sum(wall.get(p, 0.0) for p in CONTROL_WALL)
    control_t = tokens.get("probe", 0) + tokens.get("dev", 0)
    billable = summary["ledger"]["billable"]
    lines += [
        f"run: {total_s:.1f} s, {total_t:,} tokens processed for {billable:,} billable",
        f"control tokens (probe + dev): {control_t:,} = {100 * control_t / total_t:.1f} % of tokens processed, "
        f"{control_t / max(1, billable):.2f}x the billable budget",
        f"control overhead: {100 * control_s / total_s:.1f} % of wall time (probe + dev + policy)",
    ]
    return lines


def overhead_of(run_dir: Path) -> list[str]:
    """:func:`overhead` of a finished run directory."""
    summary = json.loads((run_dir / "summary.json").read_text())
    return overhead(summary, token_phases((run_dir / "ledger.jsonl").read_text().splitlines()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", default="configs/demo.yaml")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--run-dir", type=Path, help="read this finished run instead of running one")
    args = parser.parse_args()
    if args.run_dir is not None:
        print("\n".join(overhead_of(args.run_dir)))
        return
    from read_distill.config import load_config
    from read_distill.runner import run

    with tempfile.TemporaryDirectory(prefix="rd-overhead-") as tmp:
        run(load_config(args.config, [*args.overrides, "run.report=false"]), Path(tmp) / "run", quiet=True)
        print("\n".join(overhead_of(Path(tmp) / "run")))


if __name__ == "__main__":
    main()

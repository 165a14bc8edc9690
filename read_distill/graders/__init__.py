"""Graders: plain functions ``grade(answer, completion) -> score in [0, 1]``.

``answer`` is the reference (from a generator or a task's JSONL row), ``completion`` is
the model's raw text. Every grader first extracts the *final answer* from the completion
(:func:`extract_final`): the text after the last ``####`` marker, up to the end of that
line; without a marker, the first non-empty line. The embedded world's teacher writes
``<rationale> #### <answer>``, so distilling its text trains exactly what is graded.

Graders never import torch. ``code`` runs a snippet in the sandbox of
:mod:`read_distill.graders.sandbox` (own namespaces: no network, a read-only filesystem
but for its /tmp, no view of other processes; limits that hold for root; killed whole at
the timeout) and compares its stdout with the answer.

Benchmark graders use the benchmarks' own checkers (the ``bench`` extra): ``bfcl``
(:mod:`.bfcl`), ``ifeval`` (:mod:`.ifeval`), ``gsm8k`` (:mod:`.gsm8k`) and ``mc_logprob``
(:mod:`.mc`, whose "completion" is the student's pick among the row's choices by log-prob).
Their reference answers have a form, checked when task rows are read (:func:`answer_problem`).
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Callable

from read_distill.graders import bfcl, gsm8k, humaneval, ifeval, mc
from read_distill.graders.sandbox import run_python

#: The marker before the final answer in every world completion.
ANSWER_MARKER = "####"


def extract_final(completion: str) -> str:
    """The final answer inside ``completion`` (after the last ``####``; else the first line)."""
    text = completion.replace("\r", "")
    if ANSWER_MARKER in text:
        tail = text.rsplit(ANSWER_MARKER, 1)[1]
        return tail.strip().split("\n", 1)[0].strip()
    for line in text.split("\n"):
        if line.strip():
            return line.strip()
    return ""


def _norm(s: str) -> str:
    return " ".join(s.strip().split()).rstrip(".").strip()


def exact(answer: str, completion: str) -> float:
    """1 if the final answer equals the reference (whitespace-normalised, case-sensitive)."""
    return float(_norm(extract_final(completion)) == _norm(answer))


_NUM = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def numeric(answer: str, completion: str, rel_tol: float = 1e-6, abs_tol: float = 1e-9) -> float:
    """1 if the first number in the final answer equals the reference number."""
    try:
        ref = float(_norm(answer).replace(",", ""))
    except ValueError:
        return exact(answer, completion)
    m = _NUM.search(extract_final(completion).replace(",", ""))
    if not m:
        return 0.0
    return float(math.isclose(float(m.group()), ref, rel_tol=rel_tol, abs_tol=abs_tol))


def choice(answer: str, completion: str) -> float:
    """Multiple choice: the option letter (``A``, ``(b)``, ``B)``...) or option text matches."""
    final = _norm(extract_final(completion))
    ref = _norm(answer)
    m = re.match(r"^\(?([A-Za-z])\)?(?:[.):\s]|$)", final)
    if len(ref) == 1 and m:
        return float(m.group(1).upper() == ref.upper())
    return float(final.lower() == ref.lower())


def _parse_call(src: str) -> tuple[str, tuple[tuple[str, object], ...], tuple[object, ...]] | None:
    try:
        tree = ast.parse(src.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return None
    node = tree.body
    if not isinstance(node, ast.Call):
        return None
    name = ast.unparse(node.func)
    try:
        args = tuple(ast.literal_eval(a) for a in node.args)
        kwargs = tuple(sorted((k.arg or "**", ast.literal_eval(k.value)) for k in node.keywords))
    except (ValueError, TypeError, SyntaxError):
        return None
    return name, kwargs, args


def tool_call(answer: str, completion: str) -> float:
    """1 if the completion is the same single call: same function, same positional and
    keyword arguments (keyword order ignored; values compared as Python literals)."""
    ref = _parse_call(answer)
    got = _parse_call(extract_final(completion))
    if ref is None:
        return exact(answer, completion)
    return float(got is not None and got == ref)


def json_equal(answer: str, completion: str) -> float:
    """1 if the final answer parses as JSON equal to the reference (key order ignored)."""
    try:
        ref = json.loads(answer)
    except json.JSONDecodeError:
        return exact(answer, completion)
    try:
        got = json.loads(extract_final(completion))
    except json.JSONDecodeError:
        return 0.0
    return float(got == ref)


def code(answer: str, completion: str, timeout_s: float = 2.0) -> float:
    """Run the final answer as Python in a sandbox; 1 if its stdout equals ``answer``.

    A bare expression is printed (``3+4`` prints ``7``); a statement block runs as is.
    """
    src = extract_final(completion) if ANSWER_MARKER in completion else completion.strip()
    if not src:
        return 0.0
    try:
        ast.parse(src, mode="eval")
        src = f"print({src})"
    except SyntaxError:
        pass
    out = run_python(src, timeout_s=timeout_s)
    if out is None:
        return 0.0
    return float(out.strip() == answer.strip())


GRADERS: dict[str, Callable[[str, str], float]] = {
    "exact": exact,
    "numeric": numeric,
    "choice": choice,
    "tool_call": tool_call,
    "json": json_equal,
    "code": code,
    "bfcl": bfcl.grade,
    "ifeval": ifeval.grade,
    "gsm8k": gsm8k.grade,
    "mc_logprob": mc.grade,
    "humaneval": humaneval.grade,
}

#: Per grader whose reference answers have a form: why an answer does not fit it (None: fits).
ANSWER_PROBLEMS: dict[str, Callable[[str], str | None]] = {
    "bfcl": bfcl.answer_problem,
    "ifeval": ifeval.answer_problem,
    "gsm8k": gsm8k.answer_problem,
    "mc_logprob": mc.answer_problem,
    "humaneval": humaneval.answer_problem,
}


def answer_problem(grader: str, answer: str) -> str | None:
    """Why ``grader`` cannot grade against the reference ``answer``, or None."""
    check = ANSWER_PROBLEMS.get(grader)
    return check(answer) if check else None


__all__ = ["ANSWER_MARKER", "ANSWER_PROBLEMS", "GRADERS", "answer_problem", "extract_final", "run_python"]

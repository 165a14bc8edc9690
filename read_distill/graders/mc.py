"""Multiple choice by log-prob: the student picks the option it finds most likely.

A row's ``answer`` is JSON ``{"choices": ["...", "..."], "label": <index of the right
one>}``. Nothing is generated: each choice is scored as a continuation of the prompt by
the student's own scoring path (``Student.score``: the mean log-prob per token of the
choice, i.e. normalised by its length in tokens), and the highest one is the student's
pick; the grader then compares the pick with the labelled choice. Ties go to the first.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from read_distill.config import ConfigError
from read_distill.graders.sources import load_reference, read_records, require_text

#: The graders whose "completion" is the student's pick among the row's choices.
PICKED_BY_LOGPROB = ("mc_logprob",)
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def choices(answer: str) -> list[str]:
    """The options of a row's answer."""
    return json.loads(answer)["choices"]


def grade(answer: str, completion: str) -> float:
    """1 if ``completion`` (the student's pick) is the labelled choice."""
    ref = json.loads(answer)
    return float(completion == ref["choices"][ref["label"]])


def pick(prompts: list[str], answers: list[str], score: Callable[[list[str], list[str]], list[float]]) -> tuple[list[str], list[str], list[str]]:
    """Per row, the choice with the highest mean log-prob per token under ``score`` (a
    student's ``score``), all rows' choices scored in one call; also the prompts and
    choices scored (for token accounting)."""
    options = [choices(a) for a in answers]
    flat_prompts = [p for p, opts in zip(prompts, options, strict=True) for _ in opts]
    flat_choices = [c for opts in options for c in opts]
    logprobs = score(flat_prompts, flat_choices)
    picks, start = [], 0
    for opts in options:
        row = logprobs[start : start + len(opts)]
        picks.append(opts[row.index(max(row))])
        start += len(opts)
    return picks, flat_prompts, flat_choices


def answer_problem(answer: str) -> str | None:
    """Why ``answer`` is not a multiple-choice reference, or None."""
    form = 'expected JSON {"choices": ["...", "..."], "label": <index of the right choice>} with 2 or more distinct non-empty choices'
    ref = load_reference(answer)
    if ref is None:
        return f"not a JSON object; {form}"
    if not isinstance(ref.get("choices"), list) or len(ref["choices"]) < 2:
        return f"choices: {form}"
    opts = ref["choices"]
    if not all(isinstance(c, str) and c.strip() for c in opts) or len(set(opts)) != len(opts):
        return f"choices: {form}"
    label = ref.get("label")
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < len(opts):
        return f"label: expected an index from 0 to {len(opts) - 1}; {form}"
    return None


def _label(where: str, value: object, n: int) -> int:
    """A source's answer as an index: an int, or a letter A, B, ..."""
    if isinstance(value, str) and len(value.strip()) == 1 and value.strip().upper() in _LETTERS[:n]:
        return _LETTERS.index(value.strip().upper())
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < n:
        return value
    raise ConfigError(f"{where}: answer: expected an index from 0 to {n - 1} or a letter A-{_LETTERS[n - 1]}, got {json.dumps(value)[:60]}")


def export_rows(source: Path) -> list[dict[str, str]]:
    """Rows of a local multiple-choice JSONL file (MMLU's fields: ``question``,
    ``choices``, ``answer`` as an index or letter) as task rows. The prompt is
    ``Question: ...\\nAnswer:`` and each choice is scored with a leading space, the usual
    form for log-prob multiple choice."""
    rows = []
    for where, record in read_records(source, ("question", "choices", "answer")):
        opts = record["choices"]
        if not isinstance(opts, list) or not 2 <= len(opts) <= len(_LETTERS) or not all(isinstance(c, str) for c in opts):
            raise ConfigError(f"{where}: choices: expected a list of 2 to {len(_LETTERS)} strings")
        answer = json.dumps({"choices": [f" {c.strip()}" for c in opts], "label": _label(where, record["answer"], len(opts))})
        problem = answer_problem(answer)
        if problem:
            raise ConfigError(f"{where}: {problem}")
        prompt = f"Question: {require_text(where, record, 'question').strip()}\nAnswer:"
        rows.append({"prompt": prompt, "answer": answer, "grader": "mc_logprob"})
    return rows

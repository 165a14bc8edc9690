"""IFEval instruction following, graded by the ``if-verifiable`` package's IFEval checkers.

A row's ``answer`` is JSON with IFEval's own fields::

    {"instruction_id_list": ["punctuation:no_comma", ...], "kwargs": [{}, ...]}

The score is IFEval's prompt-level strict accuracy: 1 if the whole completion follows
every instruction, else 0. The completion is judged as it stands (no ``####`` extraction:
the instructions are about the whole response's form).

if-verifiable ships checkers but no data (it loads google/IFEval from the Hugging Face
hub); :func:`export_rows` converts a local copy of IFEval's rows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from read_distill.config import ConfigError
from read_distill.graders.sources import load_reference, missing_package, read_records, require_text

INSTALL = 'pip install -e ".[bench]"'


def _registry() -> dict[str, Any]:
    """IFEval's instruction id -> checker class, with language detection made repeatable."""
    import langdetect
    from if_verifiable.ifeval.instructions_registry import INSTRUCTION_DICT

    # langdetect samples at random; a fixed seed makes one completion always grade the same
    # (runs are resumed and compared on their scores).
    langdetect.DetectorFactory.seed = 0
    return INSTRUCTION_DICT


def _instructions(ref: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """The instruction ids and their kwargs (IFEval's ``None`` values dropped, as its evaluator does)."""
    kwargs = [{k: v for k, v in kw.items() if v is not None} for kw in ref["kwargs"]]
    return ref["instruction_id_list"], kwargs


def grade(answer: str, completion: str) -> float:
    """1 if the completion follows every instruction of the row (IFEval, strict)."""
    from if_verifiable.common import evaluate_instructions

    ids, kwargs = _instructions(json.loads(answer))
    _, scores = evaluate_instructions(completion, ids, kwargs, "", _registry())
    return scores.binary_strict


def _sentence_counter_problem() -> str | None:
    """Why IFEval's sentence counter cannot run here (NLTK's punkt data is downloaded
    separately from NLTK), or None."""
    from if_verifiable.ifeval import instructions_util

    try:
        instructions_util.count_sentences("One. Two.")
    except LookupError:
        return "needs NLTK's punkt_tab data, which is not installed (python -m nltk.downloader punkt_tab)"
    return None


def answer_problem(answer: str) -> str | None:
    """Why ``answer`` is not an IFEval reference this grader can check, or None."""
    missing = missing_package("if_verifiable", "if-verifiable", INSTALL)
    if missing:
        return missing
    form = 'expected JSON {"instruction_id_list": [...], "kwargs": [{...}, ...]} with one kwargs object per instruction'
    ref = load_reference(answer)
    if ref is None:
        return f"not a JSON object; {form}"
    if not isinstance(ref.get("instruction_id_list"), list) or not ref["instruction_id_list"]:
        return f"instruction_id_list: expected a non-empty list; {form}"
    kwargs = ref.get("kwargs")
    if not isinstance(kwargs, list) or len(kwargs) != len(ref["instruction_id_list"]) or not all(isinstance(k, dict) for k in kwargs):
        return f"kwargs: {form}"
    registry = _registry()
    for instruction, kw in zip(*_instructions(ref), strict=True):
        if instruction not in registry:
            return f"unknown instruction {instruction!r}; expected one of {', '.join(sorted(registry))}"
        try:
            registry[instruction](instruction).build_description(**kw)
        except (TypeError, ValueError) as e:
            return f"{instruction}: kwargs {json.dumps(kw)} do not fit its checker ({e})"
        if instruction == "length_constraints:number_sentences":
            problem = _sentence_counter_problem()
            if problem:
                return f"{instruction}: {problem}"
    return None


def export_rows(source: Path) -> list[dict[str, str]]:
    """Rows of a local IFEval JSONL file (google/IFEval's fields: ``prompt``,
    ``instruction_id_list``, ``kwargs``; others ignored) as task rows."""
    rows = []
    for where, record in read_records(source, ("prompt", "instruction_id_list", "kwargs")):
        ref = {"instruction_id_list": record["instruction_id_list"], "kwargs": record["kwargs"]}
        answer = json.dumps(ref)
        problem = answer_problem(answer)
        if problem:
            raise ConfigError(f"{where}: {problem}")
        rows.append({"prompt": require_text(where, record, "prompt"), "answer": answer, "grader": "ifeval"})
    return rows

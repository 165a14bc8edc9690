"""Numeric-answer math in GSM8K's form: the final number after ``####``, else the last number.

GSM8K's reference solutions end in ``#### <number>``; a row's ``answer`` may be that
whole solution or the bare number. A completion's number is the first one after its last
``####``, or, without a marker, the last number in it (GSM8K's usual "flexible"
extraction: a model that never writes the marker still ends on its answer). Thousands
separators and a leading ``$`` are ignored; numbers compare as floats.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from read_distill.config import ConfigError
from read_distill.graders.sources import read_records, require_text

#: A number as GSM8K writes them: optional sign, digits with thousands commas, decimals.
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def final_number(text: str) -> float | None:
    """The answer number in ``text`` (first after the last ``####``; else the last one), or None."""
    from read_distill.graders import ANSWER_MARKER  # here: the registry imports this module

    text = text.replace("$", "")
    if ANSWER_MARKER in text:
        found = _NUMBER.findall(text.rsplit(ANSWER_MARKER, 1)[1])[:1]
    else:
        found = _NUMBER.findall(text)[-1:]
    return float(found[0].replace(",", "")) if found else None


def format_number(x: float) -> str:
    """``x`` as a reference answer: an integer without ``.0``, else in full."""
    return str(int(x)) if x.is_integer() else repr(x)


def grade(answer: str, completion: str) -> float:
    """1 if the completion's answer number equals the reference's."""
    ref = final_number(answer)
    got = final_number(completion)
    return float(ref is not None and got is not None and math.isclose(got, ref, rel_tol=1e-9, abs_tol=1e-9))


def answer_problem(answer: str) -> str | None:
    """Why ``answer`` holds no reference number, or None."""
    if final_number(answer) is None:
        return "expected a number, or a solution ending in '#### <number>'"
    return None


def export_rows(source: Path) -> list[dict[str, str]]:
    """Rows of a local GSM8K JSONL file (openai/gsm8k's ``question``, ``answer``) as task
    rows whose answer is the final number."""
    rows = []
    for where, record in read_records(source, ("question", "answer")):
        number = final_number(require_text(where, record, "answer"))
        if number is None:
            raise ConfigError(f"{where}: answer: expected a solution ending in '#### <number>'")
        rows.append({"prompt": require_text(where, record, "question"), "answer": format_number(number), "grader": "gsm8k"})
    return rows

"""Task data files: JSONL rows of ``prompt``, ``answer`` and an optional ``grader``.

Every row is checked when the file is read (which a run does before its run directory
exists), and the first bad one is a ConfigError naming the file, the line, the field and
the form expected: UTF-8 text, one JSON object per line, no key given twice, known keys
only, non-empty strings, a known grader, an answer in the form its grader reads, each
prompt once.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from read_distill.config import ConfigError, read_input
from read_distill.graders import answer_problem
from read_distill.tasks import TaskCard, grader_problem
from read_distill.types import Item

#: The keys a row may have; ``grader`` defaults to the card's ``metric``.
ROW_KEYS = ("prompt", "answer", "grader")
#: JSON's names of the types json.loads returns, for messages.
_JSON_TYPES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}
_EXPECTED = 'expected one JSON object per line: {"prompt": ..., "answer": ..., "grader": ...} (grader optional)'


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's pairs as a dict; a key given twice is an error (json keeps the last)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} is given twice")
        out[key] = value
    return out


def _parse_row(line: str, where: str) -> dict[str, Any]:
    """One line as a JSON object with known keys only."""
    try:
        row = json.loads(line, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{where}: not valid JSON ({e.msg} at column {e.colno}); {_EXPECTED}") from None
    except ValueError as e:
        raise ConfigError(f"{where}: {e}; {_EXPECTED}") from None
    if not isinstance(row, dict):
        raise ConfigError(f"{where}: got a JSON {_JSON_TYPES.get(type(row), type(row).__name__)}; {_EXPECTED}")
    unknown = sorted(set(row) - set(ROW_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; expected only {', '.join(ROW_KEYS)}")
    return row


def _row_item(row: dict[str, Any], card: TaskCard, where: str) -> Item:
    """The Item of a parsed row; the card's metric grades rows that name no grader."""
    for key in ("prompt", "answer"):
        if key not in row:
            raise ConfigError(f"{where}: {key}: missing; {_EXPECTED}")
        # Empty answers cannot be graded nor scored by log-prob; empty prompts ask nothing.
        if not isinstance(row[key], str) or not row[key].strip():
            raise ConfigError(f"{where}: {key}: expected a non-empty string, got {json.dumps(row[key])[:60]}")
    grader = row.get("grader", card.metric)
    if not isinstance(grader, str):
        raise ConfigError(f"{where}: grader: expected a string, got {json.dumps(grader)[:60]}")
    problem = grader_problem(grader)
    if problem:
        raise ConfigError(f"{where}: grader: {problem}")
    problem = answer_problem(grader, row["answer"])
    if problem:
        raise ConfigError(f"{where}: answer: {problem}")
    return Item(prompt=row["prompt"], answer=row["answer"], grader=grader, capability=card.name)


def require_data_file(path: Path, field: str) -> Path:
    """``path``, normalised, if it is a file; else a ConfigError naming it, the ``field``
    that names it and how to create it (the paper configs' benchmark files: ``make
    paper-data``)."""
    from read_distill.bench import missing_data_hint

    path = Path(os.path.normpath(path))
    if not path.exists():
        raise ConfigError(f"{path}: no such file ({field}); {missing_data_hint(path)}")
    return path


def read_rows(path: Path, card: TaskCard) -> list[Item]:
    """Every row of the JSONL file ``path`` as an Item of ``card``; blank lines are skipped."""
    items: list[Item] = []
    first_line: dict[str, int] = {}
    # Lines end at "\n" only, as editors count them (str.splitlines also splits at U+2028
    # and other separators a JSON string may hold).
    for n, line in enumerate(read_input(path, "task data file").split("\n"), 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        item = _row_item(_parse_row(line, where), card, where)
        if item.prompt in first_line:
            raise ConfigError(f"{where}: prompt: the same as on line {first_line[item.prompt]}; expected each prompt once")
        first_line[item.prompt] = n
        items.append(item)
    if not items:
        raise ConfigError(f"{path}: no rows; {_EXPECTED}")
    return items

"""Benchmark inputs: files a user has (JSONL in the benchmark's own fields), read for
conversion, and the JSON reference answers of task rows.

A bad line is a ConfigError naming the file, the line and the field expected.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from read_distill.config import ConfigError, read_input


def read_records(path: Path, fields: tuple[str, ...]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, record)`` for each non-blank line of the JSONL file ``path``, where
    ``where`` is ``path:line`` and every record has ``fields``."""
    expected = f"expected one JSON object per line with {', '.join(fields)}"
    for n, line in enumerate(read_input(path, "benchmark file").split("\n"), 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{where}: not valid JSON ({e.msg} at column {e.colno}); {expected}") from None
        if not isinstance(record, dict):
            raise ConfigError(f"{where}: not a JSON object; {expected}")
        missing = [f for f in fields if f not in record]
        if missing:
            raise ConfigError(f"{where}: {missing[0]}: missing; {expected}")
        yield where, record


def require_text(where: str, record: dict[str, Any], field: str) -> str:
    """``record[field]``, which must be a non-empty string."""
    value = record[field]
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: {field}: expected a non-empty string, got {json.dumps(value)[:60]}")
    return value


def load_reference(answer: str) -> dict[str, Any] | None:
    """The JSON object a benchmark row's reference answer holds, or None where it holds none."""
    try:
        ref = json.loads(answer)
    except json.JSONDecodeError:
        return None
    return ref if isinstance(ref, dict) else None


def missing_package(module: str, package: str, install: str) -> str | None:
    """What to install where ``package`` (imported as ``module``) is missing, or None."""
    if importlib.util.find_spec(module) is None:
        return f"needs the {package} package; {install}"
    return None

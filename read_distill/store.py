"""Atomic file writes for the run directory (write a temporary file, fsync, rename), and
reading back the append-only JSONL files it keeps."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from read_distill import ranks


def write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically (readers see the old or the new file).
    Under a multi-process launch only the controller writes (:mod:`read_distill.ranks`)."""
    if not ranks.is_controller():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600 files; run artefacts are meant to be shared and read.
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename is None:
            # A failed write or fsync names no file; the one being replaced is what to report.
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise


def remove_temporaries(directory: Path) -> None:
    """Delete the temporary files ``write_text`` leaves under ``directory`` when its process
    is killed between creating one and renaming it in. Only for a directory no other
    process writes (a run directory whose lock the caller holds): a live writer's
    temporary file would go too."""
    for p in directory.rglob(".*.tmp"):
        if p.is_file():
            p.unlink()


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    write_text(path, json.dumps(obj, indent=1, sort_keys=False) + "\n")


def read_json(path: Path) -> Any:
    """Read a JSON file written by ``write_json``."""
    return json.loads(path.read_text())


def read_jsonl(path: Path, cut: bool = False) -> list[Any]:
    """The complete lines of the append-only JSONL file at ``path`` (none if it is missing),
    parsed. A last line without its newline is an append cut off by a kill or a full disk:
    it is not read, and with ``cut`` (the file's one writer) it is cut from the file, so the
    next append starts on a line of its own."""
    if not path.exists():
        return []
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    if cut and len(complete) < len(data):
        os.truncate(path, len(complete))
    return [json.loads(line) for line in complete.decode().splitlines() if line.strip()]

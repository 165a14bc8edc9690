"""A persistent teacher-output cache: a resumed or repeated run never pays twice for a prompt.

Entries are keyed by (teacher name, sampling parameters, SHA-256 of the prompt) and kept
in an SQLite file: each batch of new generations is committed in one transaction, so a
killed run leaves either all of a batch or none of it, and several runs may share a cache.
Hits come back as ``Generation(cached=True)``; the caller charges them to the ledger with
``cached=True``, which makes them free (``Ledger.billable``).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

from read_distill.backends.base import Teacher
from read_distill.types import Generation


def _canonical(sampling: dict[str, Any]) -> str:
    # 256 and 256.0, or 0 and 0.0, are the same request; bools stay bools.
    def norm(v: Any) -> Any:
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v

    return json.dumps({k: norm(v) for k, v in sampling.items()}, sort_keys=True)


def cache_key(teacher_name: str, sampling: dict[str, Any], prompt: str) -> str:
    """The cache key of one request (hex SHA-256 of teacher, canonical sampling, prompt hash)."""
    prompt_sha = hashlib.sha256(prompt.encode()).hexdigest()
    return hashlib.sha256(json.dumps([teacher_name, _canonical(sampling), prompt_sha]).encode()).hexdigest()


def _to_row(g: Generation) -> str:
    top = None if g.top_logprobs is None else [{str(k): v for k, v in pos.items()} for pos in g.top_logprobs]
    return json.dumps(
        {
            "text": g.text,
            "prompt_tokens": g.prompt_tokens,
            "completion_tokens": g.completion_tokens,
            "top_logprobs": top,
        }
    )


def _from_row(row: str) -> Generation:
    d = json.loads(row)
    if d["top_logprobs"] is not None:
        d["top_logprobs"] = [{int(k): v for k, v in pos.items()} for pos in d["top_logprobs"]]
    return Generation(**d, cached=True)


class CachedTeacher:
    """Wraps a ``Teacher``; answers repeated requests from the cache at ``path``.

    ``hits`` and ``misses`` count prompts answered from the cache and by the teacher.
    A prompt repeated within one batch is generated once; its repeats are hits.
    """

    def __init__(self, teacher: Teacher, path: Path | str) -> None:
        self.teacher = teacher
        self.name = teacher.name
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        with self._db:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS generations ("
                "key TEXT PRIMARY KEY, teacher TEXT, sampling TEXT, prompt_sha256 TEXT, generation TEXT)"
            )
        self.hits = 0
        self.misses = 0
        self._owed: set[str] = set()

    def _lookup(self, keys: list[str]) -> dict[str, Generation]:
        found: dict[str, Generation] = {}
        unique = list(dict.fromkeys(keys))
        # SQLite limits the number of bound parameters; query in slices.
        for start in range(0, len(unique), 500):
            part = unique[start : start + 500]
            marks = ",".join("?" * len(part))
            for key, row in self._db.execute(f"SELECT key, generation FROM generations WHERE key IN ({marks})", part):
                found[key] = _from_row(row)
        return found

    def generate(self, prompts: list[str], sampling: dict[str, Any]) -> list[Generation]:
        """Cached generations where present; one teacher call for the rest, stored before returning."""
        keys = [cache_key(self.name, sampling, p) for p in prompts]
        found = self._lookup(keys)
        todo = list(dict.fromkeys(k for k in keys if k not in found))
        fresh: dict[str, Generation] = {}
        if todo:
            first = dict(zip(keys, prompts, strict=True))  # equal keys have equal prompts
            new = self.teacher.generate([first[k] for k in todo], sampling)
            sampling_json = _canonical(sampling)
            with self._db:
                self._db.executemany(
                    "INSERT OR IGNORE INTO generations VALUES (?, ?, ?, ?, ?)",
                    [
                        (k, self.name, sampling_json, hashlib.sha256(first[k].encode()).hexdigest(), _to_row(g))
                        for k, g in zip(todo, new, strict=True)
                    ],
                )
            fresh = {k: replace(g, cached=False) for k, g in zip(todo, new, strict=True)}
        out: list[Generation] = []
        for k in keys:
            if k in fresh:
                # The first occurrence is the one the teacher was paid for; repeats are hits.
                out.append(fresh.pop(k))
                found[k] = replace(out[-1], cached=True)
                self.misses += 1
            elif k in self._owed:
                self._owed.discard(k)
                out.append(replace(found[k], cached=False))
                self.hits += 1
            else:
                out.append(found[k])
                self.hits += 1
        return out

    def last_row(self) -> int:
        """The row id of the newest entry (0 when empty): a mark for :meth:`owe_after`."""
        return self._db.execute("SELECT COALESCE(MAX(rowid), 0) FROM generations").fetchone()[0]

    def owe_after(self, row: int) -> None:
        """Hand each entry stored after ``row`` out once as uncached (``cached=False``), later
        uses as hits, without calling the teacher.

        A resumed run marks what its dropped work generated: the teacher was paid for those
        entries once, but their ledger charges went with the work that never committed, so
        the redone work charges them again, where an uninterrupted run charged them.
        """
        self._owed = {k for (k,) in self._db.execute("SELECT key FROM generations WHERE rowid > ?", (row,))}

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM generations").fetchone()[0]

    def close(self) -> None:
        """Close the database (the cache stays on disk)."""
        self._db.close()

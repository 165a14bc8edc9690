"""The token ledger: one append-only JSONL file, the single source of truth for spend.

Each charge records the tokens a phase processed and how many of them are *billable*
(count against the budget B). What is billable depends on ``budget.unit``:

* ``train`` (the paper): the teacher-generated tokens the student trains on, i.e. the
  label tokens of the ``train`` phase.
* ``gen+train`` (the reference code): teacher generated tokens plus student training
  tokens (prompt + label, no padding).

Probe, evaluation and profiling charges are overhead: recorded, never billable. A charge
that would take billable spend past B is refused; callers cut their work to fit first.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

from read_distill import ranks
from read_distill.store import read_jsonl
from read_distill.types import PHASES, LedgerEntry

UNITS = ("train", "gen+train")


class BudgetExceeded(RuntimeError):
    """A charge would take billable spend past the budget."""


class Ledger:
    """Append-only record of token charges against a budget of ``budget_tokens``."""

    def __init__(self, path: Path | None, budget_tokens: int, unit: str = "train") -> None:
        if unit not in UNITS:
            raise ValueError(f"budget.unit must be one of {UNITS}, got {unit!r}")
        self.path = path
        self.budget_tokens = int(budget_tokens)
        self.unit = unit
        self.entries: list[LedgerEntry] = []
        if path is not None:
            # Every committed charge was synced before its commit, so a torn last charge
            # belongs to work a resume redoes: it is dropped (and cut by the controller, the
            # file's one writer).
            self.entries = [LedgerEntry(**d) for d in read_jsonl(path, cut=ranks.is_controller())]
        # Running sums over ``entries`` (kept in step with them; never persisted).
        self._spent = sum(e.billable for e in self.entries)
        self._by_round: dict[int, int] = defaultdict(int)
        for e in self.entries:
            self._by_round[e.round] += e.billable
        self._file = None

    # -- what counts ------------------------------------------------------------------
    def billable(self, phase: str, prompt_tokens: int, label_tokens: int, cached: bool = False) -> int:
        """How many tokens of a charge count against B under this ledger's unit."""
        if phase == "train":
            return label_tokens if self.unit == "train" else prompt_tokens + label_tokens
        if phase == "teacher_gen" and self.unit == "gen+train" and not cached:
            return label_tokens
        return 0

    # -- charging ---------------------------------------------------------------------
    def charge(
        self, round: int, phase: str, tokens: int, billable: int = 0, cached: bool = False, teacher: str | None = None
    ) -> LedgerEntry:
        """Record a charge (``teacher``: the name of the teacher a teacher phase called);
        refuse (``BudgetExceeded``) if it would overspend B."""
        if phase not in PHASES:
            raise ValueError(f"unknown ledger phase {phase!r}; expected one of {PHASES}")
        if tokens < 0 or billable < 0 or billable > tokens:
            raise ValueError(f"bad charge: tokens={tokens} billable={billable}")
        if billable > self.remaining:
            raise BudgetExceeded(
                f"charge of {billable} billable tokens in round {round} ({phase}) exceeds the "
                f"remaining budget of {self.remaining} tokens"
            )
        entry = LedgerEntry(round=round, phase=phase, tokens=int(tokens), billable=int(billable), cached=cached, teacher=teacher)
        self.entries.append(entry)
        self._spent += entry.billable
        self._by_round[round] += entry.billable
        # Under a multi-process launch the controller alone writes the file (read_distill.ranks).
        if self.path is not None and ranks.is_controller():
            if self._file is None:
                self._file = self.path.open("a")
            self._file.write(json.dumps(entry.to_json()) + "\n")
            self._file.flush()
        return entry

    def sync(self) -> None:
        """Make every charge so far durable (the runner calls this before a commit point;
        charges of an uncommitted round are dropped on resume anyway)."""
        if self._file is not None:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        """Sync and close the file."""
        if self._file is not None:
            self.sync()
            self._file.close()
            self._file = None

    def truncate(self, keep) -> None:
        """Rewrite the ledger keeping only entries for which ``keep(entry)`` is true.

        Used once, on resume, to drop the charges of a round that never committed (its
        work is redone). Atomic: the old file stays intact until the new one is renamed in.
        """
        self.close()
        self.entries = [e for e in self.entries if keep(e)]
        self._spent = sum(e.billable for e in self.entries)
        self._by_round = defaultdict(int)
        for e in self.entries:
            self._by_round[e.round] += e.billable
        if self.path is not None:
            from read_distill.store import write_text

            write_text(self.path, "".join(json.dumps(e.to_json()) + "\n" for e in self.entries))

    # -- totals (always derived from the entries) ---------------------------------------
    @property
    def spent(self) -> int:
        """Billable tokens spent so far."""
        return self._spent

    @property
    def remaining(self) -> int:
        """Billable tokens left in the budget."""
        return self.budget_tokens - self.spent

    def spent_in_round(self, round: int) -> int:
        """Billable tokens charged in ``round``."""
        return self._by_round.get(round, 0)

    def totals(self) -> dict[str, int]:
        """Tokens processed per phase (billable or not), plus ``billable`` and ``budget``."""
        out: dict[str, int] = defaultdict(int)
        for e in self.entries:
            out[e.phase] += e.tokens
        out["billable"] = self.spent
        out["budget"] = self.budget_tokens
        return dict(out)


def teacher_tokens(entries: list[LedgerEntry]) -> dict[str, dict[str, int]]:
    """Tokens per teacher from the teacher charges of ``entries``: prompt tokens sent, tokens
    generated, how many of those came from the teacher cache (free), and how many were billable."""
    out: dict[str, dict[str, int]] = {}
    for e in entries:
        if e.teacher is None:
            continue
        row = out.setdefault(e.teacher, {"prompt": 0, "generated": 0, "cached": 0, "billable": 0})
        if e.phase == "teacher_prompt":
            row["prompt"] += e.tokens
        else:
            row["generated"] += e.tokens
            row["cached"] += e.tokens if e.cached else 0
            row["billable"] += e.billable
    return out


def round_quota(remaining_tokens: int, rounds_left: int) -> int:
    """The billable quota of the next round: what is left, spread over the rounds left.

    Under-spend in earlier rounds carries over; the last round takes exactly what remains.
    """
    if rounds_left <= 0:
        return 0
    return remaining_tokens // rounds_left if rounds_left > 1 else remaining_tokens

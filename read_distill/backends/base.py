"""The interfaces between the round loop and the models it drives.

A backend is anything with these methods; there is no base class to inherit from.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from read_distill.ledger import Ledger
from read_distill.tasks import TaskCard
from read_distill.types import Example, Generation, Item, Profile, TrainStats

if TYPE_CHECKING:
    from read_distill.teachers import Teachers


class Teacher(Protocol):
    """The large model whose outputs are distilled."""

    name: str

    def generate(self, prompts: list[str], sampling: dict[str, Any]) -> list[Generation]:
        """Complete a batch of prompts. ``sampling`` holds max_new_tokens, temperature,
        top_logprobs (0 = none)."""
        ...


class Student(Protocol):
    """The small model being distilled; the only trainable state of a run."""

    def fit(self, examples: list[Example], quota_tokens: int, ledger: Ledger, round: int) -> TrainStats:
        """Train on ``examples`` in order until ``quota_tokens`` billable tokens are spent
        (the last example cut to fit) or the examples run out, charging ``ledger`` under
        ``round`` as it goes."""
        ...

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        """Greedy completions (for graded probes and task evaluation)."""
        ...

    def score(self, prompts: list[str], references: list[str]) -> list[float]:
        """Mean log-prob per token of each reference given its prompt."""
        ...

    def save(self, directory: Path) -> None:
        """Write a checkpoint that ``load`` restores exactly. Under several processes every
        rank calls it (a sharded student gathers its weights) and rank 0 alone writes."""
        ...

    def load(self, directory: Path) -> None:
        """Restore the checkpoint written by ``save``."""
        ...


class World(Protocol):
    """Everything a run needs besides the policy: models, prompt source, probes, task."""

    capabilities: tuple[str, ...]
    #: The downstream task (its requirement, or the declared capability for the fallback).
    card: TaskCard
    #: Per-capability max_new_tokens for teacher generation and probes (config overrides applied).
    max_new_tokens: dict[str, int]

    def teachers(self) -> Teachers:
        """The run's teachers (a default, and any capability's own), loaded once per run."""
        ...

    def student(self, seed: int) -> Student:
        """A fresh copy of the initial student S0; ``seed`` fixes its training randomness."""
        ...

    def evaluation_hashes(self) -> set[str]:
        """``templates.prompt_hash`` of every probe and task evaluation prompt (leakage filter)."""
        ...

    def draw(self, capability: str, difficulty: str, seed: int) -> Item:
        """A training prompt of ``capability`` at ``difficulty``, deterministic in ``seed``."""
        ...

    def probe(
        self, student: Student, ledger: Ledger, round: int, capabilities: tuple[str, ...] | None = None, sequential: bool = False
    ) -> Profile:
        """Measure the student's profile on ``capabilities`` (default all; charged as probe
        overhead); ``sequential``: after a round, stop a capability once its interval is tight."""
        ...

    def evaluate(self, student: Student, split: str, ledger: Ledger, round: int) -> float:
        """The task's utility U in [0, 100] on ``split`` ("dev" or "test")."""
        ...

    def answer_form(self, requirement: tuple[float, ...]) -> tuple[float, ...]:
        """1 for the one needed capability (r_c > 0) whose probe items are graded like the
        task's answers, 0 elsewhere; empty where no single capability is."""
        ...

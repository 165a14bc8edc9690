"""``SimWorld``: a world whose student is a profile moved by known dynamics.

Its teacher and student implement the same Protocols as real models, so every policy
runs through the one real round loop; a run takes milliseconds per round.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from read_distill import ranks
from read_distill.ledger import Ledger
from read_distill.tasks import TaskCard
from read_distill.teachers import Teachers
from read_distill.types import Example, Generation, Item, Profile, TrainStats

#: Examples a round of a simulated run is cut into (sets the token size of one example).
EXAMPLES_PER_ROUND = 40


class SimTeacher:
    """Returns empty completions of a fixed token size: only the token counts matter."""

    name = "sim-teacher"

    def __init__(self, example_tokens: int) -> None:
        self.example_tokens = example_tokens

    def generate(self, prompts: list[str], sampling: dict) -> list[Generation]:
        return [Generation(text="", prompt_tokens=0, completion_tokens=self.example_tokens) for _ in prompts]


class SimStudent:
    """A student whose only state is its true profile and its spend per capability."""

    def __init__(self, world: SimWorld, seed: int) -> None:
        self.world = world
        self.seed = seed
        self.profile = np.asarray(world.initial_profile, dtype=float).copy()
        self.spent_tokens = np.zeros(len(world.capabilities))

    def fit(self, examples: list[Example], quota_tokens: int, ledger: Ledger, round: int) -> TrainStats:
        caps = self.world.capabilities
        spend = np.zeros(len(caps))
        trained = billed = used = 0
        for e in examples:
            if billed >= quota_tokens:
                break
            cost = ledger.billable("train", e.prompt_tokens, e.completion_tokens)
            take = min(cost, quota_tokens - billed)
            frac = take / cost if cost else 1.0
            tokens = round_half(frac * (e.prompt_tokens + e.completion_tokens))
            ledger.charge(round, "train", max(tokens, take), take)
            spend[caps.index(e.capability)] += take
            trained += tokens
            billed += take
            used += 1
        rng = np.random.default_rng([self.seed, round, 17])
        self.profile = np.asarray(self.world.dynamics(self.profile, spend, self.spent_tokens, rng), dtype=float)
        self.spent_tokens = self.spent_tokens + spend
        return TrainStats(
            examples=used,
            trained_tokens=trained,
            billable_tokens=billed,
            optimizer_steps=0,
            mean_loss=0.0,
            spend_per_capability={c: int(s) for c, s in zip(caps, spend, strict=True)},
        )

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        raise NotImplementedError("a simulated student has no text interface")

    def score(self, prompts: list[str], references: list[str]) -> list[float]:
        raise NotImplementedError("a simulated student has no text interface")

    def save(self, directory: Path) -> None:
        if not ranks.is_controller():
            return  # every rank holds the same state; the controller writes it
        directory.mkdir(parents=True, exist_ok=True)
        state = {"profile": self.profile.tolist(), "spent_tokens": self.spent_tokens.tolist()}
        (directory / "sim_student.json").write_text(json.dumps(state))

    def load(self, directory: Path) -> None:
        state = json.loads((directory / "sim_student.json").read_text())
        self.profile = np.asarray(state["profile"], dtype=float)
        self.spent_tokens = np.asarray(state["spent_tokens"], dtype=float)


def round_half(x: float) -> int:
    return int(np.floor(x + 0.5))


class SimWorld:
    """A simulated world with known dynamics (public API; outside checks construct it).

    ``dynamics(profile, spend_tokens, spent_tokens, rng) -> new_profile`` moves the true
    profile; ``utility(profile) -> float`` is the task metric; ``requirement`` is r_τ
    (capability -> weight, or a vector in capability order). Probes see the true profile
    plus Gaussian noise of ``probe_noise_std`` points; the test utility is noise-free.
    """

    def __init__(
        self,
        capabilities: Sequence[str],
        initial_profile: Sequence[float] | dict[str, float],
        dynamics: Callable,
        utility: Callable,
        requirement: Sequence[float] | dict[str, float],
        probe_noise_std: float = 0.0,
        name: str = "sim",
        example_tokens: int = 1000,
    ) -> None:
        self.capabilities = tuple(capabilities)
        if isinstance(initial_profile, dict):
            initial_profile = [initial_profile[c] for c in self.capabilities]
        self.initial_profile = np.asarray(initial_profile, dtype=float)
        if isinstance(requirement, dict):
            requirement = [requirement.get(c, 0.0) for c in self.capabilities]
        self.requirement = tuple(float(x) for x in requirement)
        self.dynamics = dynamics
        self.utility = utility
        self.probe_noise_std = probe_noise_std
        self.name = name
        self.example_tokens = example_tokens
        #: Generation limits are irrelevant here (the sim teacher's outputs have a fixed size).
        self.max_new_tokens = {c: example_tokens for c in self.capabilities}
        self.card = TaskCard(
            name=name,
            description=f"simulated task {name}",
            requirement={c: r for c, r in zip(self.capabilities, self.requirement, strict=True) if r > 0},
        )

    def with_example_tokens(self, budget_tokens: int, rounds: int) -> SimWorld:
        """This world with examples sized so a round is ~``EXAMPLES_PER_ROUND`` examples."""
        clone = object.__new__(SimWorld)
        clone.__dict__.update(self.__dict__)
        clone.example_tokens = max(1, budget_tokens // (rounds * EXAMPLES_PER_ROUND))
        return clone

    def teachers(self) -> Teachers:
        return Teachers(SimTeacher(self.example_tokens))

    def student(self, seed: int) -> SimStudent:
        return SimStudent(self, seed)

    def evaluation_hashes(self) -> set[str]:
        return set()

    def draw(self, capability: str, difficulty: str, seed: int) -> Item:
        return Item(
            prompt=f"{capability}/{difficulty}/{seed}",
            answer="",
            capability=capability,
            template=f"{capability}-{seed % 8}",
        )

    def probe(
        self, student: SimStudent, ledger: Ledger, round: int, capabilities: tuple[str, ...] | None = None, sequential: bool = False
    ) -> Profile:
        """The student's profile with the world's probe noise (fixed: ``sequential`` changes nothing here)."""
        noise = np.zeros(len(self.capabilities))
        if self.probe_noise_std > 0:
            noise = np.random.default_rng([student.seed, round + 1, 29]).normal(0, self.probe_noise_std, noise.shape)
        seen = np.clip(student.profile + noise, 0.0, 100.0)
        half = 1.96 * self.probe_noise_std
        kept = [(c, float(v)) for c, v in zip(self.capabilities, seen, strict=True) if capabilities is None or c in capabilities]
        return Profile(scores=dict(kept), intervals={c: (v - half, v + half) for c, v in kept})

    def evaluate(self, student: SimStudent, split: str, ledger: Ledger, round: int) -> float:
        return float(self.utility(student.profile))

    def answer_form(self, requirement: tuple[float, ...]) -> tuple[float, ...]:
        """A simulated task has scores, not answers: no capability's form is the task's."""
        return ()

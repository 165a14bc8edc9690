"""The vocabulary: plain data passed between the stages of a ReAD run.

Everything here is JSON-friendly (``to_json``/``from_json`` where a type is persisted)
so the run directory can be read back without pickles.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: The paper's eight capabilities, in the order used by default configs.
CAPABILITIES: tuple[str, ...] = (
    "general_knowledge",
    "steerability",
    "reasoning",
    "math",
    "code",
    "tool_use",
    "long_context",
    "multilingual",
)

#: Ledger phases; only some are billable against the budget (see ``ledger.py``).
#: Ledger phases. ``eval`` is the task's test split (the result), ``dev`` its dev split
#: (the policy's checkpoints: control).
PHASES: tuple[str, ...] = ("teacher_prompt", "teacher_gen", "train", "probe", "dev", "eval", "profiling")

DIFFICULTIES: tuple[str, ...] = ("easy", "medium", "hard")


@dataclass(frozen=True)
class Item:
    """One instantiated prompt of a capability with its reference answer.

    ``factors`` are the difficulty control factors (docs/method.md §4), e.g. ``{"hops": 3}``.
    ``rationale`` is a step-by-step solution (the CoT signal) or empty.
    """

    prompt: str
    answer: str
    rationale: str = ""
    factors: dict[str, float] = field(default_factory=dict)
    capability: str = ""
    template: str = ""
    grader: str = "exact"


@dataclass(frozen=True)
class Generation:
    """A teacher's output for one prompt, with its token counts."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    #: Per generated position, the teacher's top-k ``{token_id: logprob}``; None if not asked.
    top_logprobs: list[dict[int, float]] | None = None
    cached: bool = False


@dataclass(frozen=True)
class Example:
    """A training pair: a prompt and the teacher's completion, tagged by capability."""

    prompt: str
    completion: str
    capability: str
    prompt_tokens: int
    completion_tokens: int
    template: str = ""
    difficulty: str = "medium"
    top_logprobs: list[dict[int, float]] | None = None
    #: The name of the teacher that wrote ``completion`` (empty for replay text).
    teacher: str = ""

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        if d["top_logprobs"] is not None:
            d["top_logprobs"] = [{str(k): v for k, v in pos.items()} for pos in d["top_logprobs"]]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Example:
        d = dict(d)
        if d.get("top_logprobs") is not None:
            d["top_logprobs"] = [{int(k): v for k, v in pos.items()} for pos in d["top_logprobs"]]
        return cls(**d)


@dataclass(frozen=True)
class Profile:
    """A student's capability profile: score in [0, 100] per capability, with 95 % intervals."""

    scores: dict[str, float]
    #: capability -> (low, high) bootstrap 95 % interval; empty when not measured.
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: capability -> the score of every item measured, in suite order (empty where the
    #: world has no items). In memory only: a view (``probes.sequential_view``) is read off
    #: them in the round they were measured, never after a resume.
    items: dict[str, tuple[float, ...]] = field(default_factory=dict, compare=False)

    def vector(self, capabilities: tuple[str, ...]) -> list[float]:
        """Scores in the order of ``capabilities``."""
        return [self.scores[c] for c in capabilities]

    def widths(self, capabilities: tuple[str, ...]) -> list[float]:
        """Interval widths in the order of ``capabilities`` (0 where unknown)."""
        return [
            (self.intervals[c][1] - self.intervals[c][0]) if c in self.intervals else 0.0
            for c in capabilities
        ]

    def updated(self, measured: Profile) -> Profile:
        """This profile with the capabilities in ``measured`` replaced by their new scores."""
        return Profile(scores={**self.scores, **measured.scores}, intervals={**self.intervals, **measured.intervals})

    def to_json(self) -> dict[str, Any]:
        return {"scores": self.scores, "intervals": {k: list(v) for k, v in self.intervals.items()}}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Profile:
        return cls(
            scores={k: float(v) for k, v in d["scores"].items()},
            intervals={k: (float(v[0]), float(v[1])) for k, v in d.get("intervals", {}).items()},
        )


#: An allocation w_t: the share of a round's tokens per capability, on the simplex, in the
#: order of the run's capabilities. A tuple so it is hashable (candidate sets deduplicate).
Allocation = tuple[float, ...]


@dataclass(frozen=True)
class Context:
    """The bandit context x_t = [r ; s/100 ; b_t/B ; rho_t] (docs/method.md §6), kept structured."""

    requirement: tuple[float, ...]
    profile_frac: tuple[float, ...]
    remaining_frac: float
    #: Last allocation (zeros before the first round).
    last_allocation: tuple[float, ...]
    #: Last round's per-capability score change / 100 (zeros before the first round).
    last_gain: tuple[float, ...]
    #: Probe interval widths / 100 per capability (zeros where unknown).
    profile_width_frac: tuple[float, ...] = ()
    #: 1 for the capability in whose form the task's answers are graded, else 0 (empty
    #: where the world cannot tell); see ``World.answer_form``.
    answer_form: tuple[float, ...] = ()

    def vector(self) -> list[float]:
        """The flat feature vector fed to reward models."""
        return [
            *self.requirement,
            *self.profile_frac,
            self.remaining_frac,
            *self.last_allocation,
            *self.last_gain,
            *self.profile_width_frac,
        ]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Context:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclass(frozen=True)
class PilotResult:
    """What one pilot run observed, scaled to one round's spend of the main run.

    A pilot spends ``tokens``, not a round's quota; its per-capability score change is
    multiplied by ``scale`` = round tokens / ``tokens`` (a linear approximation) so that
    ``gain`` and ``reward`` share the scale of the main run's rounds. Its probe noise is
    multiplied by ``scale`` too, which is why a policy needs it.
    """

    #: The context the pilot started from (S0, the whole budget left).
    context: Context
    #: Score change per capability in points, scaled to a round.
    gain: tuple[float, ...]
    #: The proxy reward of ``gain`` (docs/method.md §6).
    reward: float
    #: Round tokens / pilot tokens.
    scale: float
    #: Tokens the pilot spent, in B's unit (its share, cut to what was left).
    tokens: int


@dataclass(frozen=True)
class LedgerEntry:
    """One charge: ``tokens`` processed in ``phase``; ``billable`` of them count against B."""

    round: int
    phase: str
    tokens: int
    billable: int
    cached: bool = False
    #: The teacher's name, on teacher_prompt and teacher_gen charges (None elsewhere).
    teacher: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The entry as one ledger line; ``teacher`` only where it is set."""
        d = asdict(self)
        if d["teacher"] is None:
            del d["teacher"]
        return d


@dataclass(frozen=True)
class TrainStats:
    """What one call of ``Student.fit`` did."""

    examples: int
    trained_tokens: int
    billable_tokens: int
    optimizer_steps: int
    mean_loss: float
    spend_per_capability: dict[str, int] = field(default_factory=dict)
    #: (optimizer step counted over the student's life, loss, learning rate) per step.
    steps: list[tuple[int, float, float]] = field(default_factory=list)


@dataclass(frozen=True)
class RoundRecord:
    """What a round decided and observed; written to ``rounds/NNNN/``."""

    round: int
    allocation: Allocation
    quota_tokens: int
    spent_tokens: int
    spend_per_capability: dict[str, int]
    profile_before: dict[str, float]
    profile_after: dict[str, float]
    reward: float
    gain: float
    spillover: float
    cost_penalty: float
    dev_utility: float | None = None
    #: What the policy said about its choice (e.g. UCB mean and bonus); free-form, JSON.
    policy_info: dict[str, Any] = field(default_factory=dict)

"""Task cards: load, validate, and the manual requirement vector (docs/method.md §3)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from read_distill.config import ConfigError, Seed, Weight, describe_errors, parse_yaml, read_input
from read_distill.graders import GRADERS

#: Where the embedded micro-world's cards live; a bare name resolves here.
BUILTIN_CARDS = Path(__file__).parent / "world" / "tasks"


#: What every part of a card refuses: unknown keys, NaN and inf.
_STRICT = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


def grader_problem(name: str) -> str | None:
    """Why ``name`` cannot score a task's rows, or None: it must name a grader, or be ""
    (scored by the log-prob of the answer)."""
    if name and name not in GRADERS:
        return f"unknown grader {name!r}; expected one of {', '.join(sorted(GRADERS))}, or \"\" to score by log-prob of the answer"
    return None


class Exemplar(BaseModel):
    model_config = _STRICT
    prompt: str
    answer: str


class TaskData(BaseModel):
    """Where a task's dev/test rows come from: a world generator, or JSONL files."""

    model_config = _STRICT
    generator: str | None = Field(None, description="A key of world.TASK_GENERATORS.")
    dev_size: int = Field(64, ge=1, description="Generated dev rows.")
    test_size: int = Field(128, ge=1, description="Generated test rows.")
    seed: Seed = Field(0, description="Seed of the generated splits.")
    dev: str | None = Field(None, description="JSONL of prompt/answer/grader rows (relative to the card).")
    test: str | None = Field(None, description="JSONL of prompt/answer/grader rows (relative to the card).")

    @field_validator("generator")
    @classmethod
    def _known_generator(cls, v: str | None) -> str | None:
        from read_distill.world import TASK_GENERATORS  # the micro-world's; imported only for cards that name one

        if v is not None and v not in TASK_GENERATORS:
            raise PydanticCustomError("unknown_generator", "unknown generator; expected one of {names}", {"names": ", ".join(sorted(TASK_GENERATORS))})
        return v

    @model_validator(mode="after")
    def _one_source(self) -> TaskData:
        if self.generator is not None:
            ok = self.dev is None and self.test is None
        else:
            ok = self.dev is not None and self.test is not None
        if not ok:
            raise PydanticCustomError("data_source", "expected either a generator or both dev and test JSONL files")
        return self


class TaskCard(BaseModel):
    """A downstream task τ: what it is, what it needs, how it is scored."""

    model_config = _STRICT
    name: str
    description: str
    input_format: str = ""
    output_format: str = ""
    exemplars: tuple[Exemplar, ...] = ()
    requirement: dict[str, Weight] | None = Field(None, description="Manual r_τ; normalised on use.")
    capability: str | None = Field(None, description="Declared main capability (fallback requirement).")
    metric: str = Field("exact", description="Grader of rows that name none (\"\": log-prob of the answer).")
    floors: dict[str, Annotated[float, Field(ge=0, le=100)]] = Field(
        default_factory=dict, description="capability -> the probe score a distillation for this task must keep (0-100)."
    )
    data: TaskData | None = None
    #: Directory the card was loaded from (JSONL paths are relative to it).
    source_dir: str = ""

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, v: str) -> str:
        problem = grader_problem(v)
        if problem:
            # The problem quotes user text; as context it is never read as a template.
            raise PydanticCustomError("unknown_grader", "{problem}", {"problem": problem})
        return v


def load_card(ref: str) -> TaskCard:
    """A card by built-in name (``tool_math``) or by path to a YAML file."""
    path = Path(ref)
    if not path.suffix:
        path = BUILTIN_CARDS / f"{ref}.yaml"
        if not path.exists():
            known = sorted(p.stem for p in BUILTIN_CARDS.glob("*.yaml"))
            raise ConfigError(f"task.card: unknown task card {ref!r}; built-in cards: {known}")
    raw = parse_yaml(read_input(path, "task card file"), str(path))
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        card = TaskCard.model_validate({**raw, "source_dir": str(path.parent)})
    except ValidationError as e:
        raise ConfigError(describe_errors(e.errors(), str(path))) from None
    if card.data is None:
        # Worlds that load cards evaluate on their rows; only simulated worlds go without.
        raise ConfigError(f"{path}: data: missing; expected a generator or dev and test JSONL files")
    return card


def requirement_vector(
    capabilities: tuple[str, ...],
    manual: dict[str, Any] | None = None,
    declared: str | None = None,
    epsilon: float = 0.05,
    source: str = "task card",
) -> tuple[float, ...]:
    """r_τ on the simplex, in the order of ``capabilities``.

    A manual vector is normalised (missing entries are 0; unknown names and an all-zero
    vector are errors). Without one, the fallback is one-hot on the declared capability
    with ``epsilon`` of the mass spread evenly over all capabilities.
    """
    if manual:
        unknown = sorted(set(manual) - set(capabilities))
        if unknown:
            raise ConfigError(f"{source}: requirement names unknown capabilities {unknown}; expected some of {list(capabilities)}")
        values = [float(manual.get(c, 0.0)) for c in capabilities]
        if any(v < 0 for v in values):
            raise ConfigError(f"{source}: requirement weights must be >= 0, got {manual}")
        total = sum(values)
        if not math.isfinite(total):
            raise ConfigError(f"{source}: requirement weights add up to {total}; expected finite weights (they are normalised)")
        if total <= 0:
            raise ConfigError(f"{source}: requirement is all zero; give at least one positive weight")
        return tuple(v / total for v in values)
    if declared is None:
        raise ConfigError(f"{source}: no requirement and no declared capability; give `requirement: {{capability: weight}}`")
    if declared not in capabilities:
        raise ConfigError(f"{source}: capability {declared!r} is not one of {list(capabilities)}")
    n = len(capabilities)
    return tuple((1 - epsilon) * (c == declared) + epsilon / n for c in capabilities)


def card_requirement(
    card: TaskCard, capabilities: tuple[str, ...], override: dict[str, float] | str | None = None
) -> tuple[float, ...]:
    """The requirement of ``card`` (or of ``override``, the config's manual vector; ``uniform``
    weighs every capability alike: the ablation without identification)."""
    if override == "uniform":
        return tuple(1.0 / len(capabilities) for _ in capabilities)
    if override:
        return requirement_vector(capabilities, override, source="task.requirement")
    return requirement_vector(capabilities, card.requirement, card.capability, source=f"task card {card.name!r}")


def card_floors(card: TaskCard, capabilities: tuple[str, ...], listed: dict[str, float]) -> dict[str, float]:
    """The card's floors with the config's ``floors.scores`` over them; a name that is not
    a capability of the run is an error."""
    for source, floors in ((f"task card {card.name!r} floors", card.floors), ("floors.scores", listed)):
        unknown = sorted(set(floors) - set(capabilities))
        if unknown:
            raise ConfigError(f"{source}: unknown capabilities {unknown}; expected some of {list(capabilities)}")
    return {**card.floors, **listed}

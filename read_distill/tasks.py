"""Task cards: load, validate, and the manual requirement vector (docs/method.md §3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from read_distill.config import ConfigError

#: Where the embedded micro-world's cards live; a bare name resolves here.
BUILTIN_CARDS = Path(__file__).parent / "world" / "tasks"


class Exemplar(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    prompt: str
    answer: str


class TaskData(BaseModel):
    """Where a task's dev/test rows come from: a world generator, or JSONL files."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    generator: str | None = Field(None, description="A key of world.TASK_GENERATORS.")
    dev_size: int = Field(64, ge=1, description="Generated dev rows.")
    test_size: int = Field(128, ge=1, description="Generated test rows.")
    seed: int = Field(0, description="Seed of the generated splits.")
    dev: str | None = Field(None, description="JSONL of prompt/answer/grader rows (relative to the card).")
    test: str | None = Field(None, description="JSONL of prompt/answer/grader rows (relative to the card).")


class TaskCard(BaseModel):
    """A downstream task τ: what it is, what it needs, how it is scored."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    description: str
    input_format: str = ""
    output_format: str = ""
    exemplars: tuple[Exemplar, ...] = ()
    requirement: dict[str, float] | None = Field(None, description="Manual r_τ; normalised on use.")
    capability: str | None = Field(None, description="Declared main capability (fallback requirement).")
    metric: str = "exact"
    data: TaskData | None = None
    #: Directory the card was loaded from (JSONL paths are relative to it).
    source_dir: str = ""


def load_card(ref: str) -> TaskCard:
    """A card by built-in name (``tool_math``) or by path to a YAML file."""
    path = Path(ref)
    if not path.suffix:
        path = BUILTIN_CARDS / f"{ref}.yaml"
        if not path.exists():
            known = sorted(p.stem for p in BUILTIN_CARDS.glob("*.yaml"))
            raise ConfigError(f"task.card: unknown task card {ref!r}; built-in cards: {known}")
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"task.card: no such task card file {path}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        return TaskCard.model_validate({**raw, "source_dir": str(path.parent)})
    except ValidationError as e:
        msgs = [f"{path}: {'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()]
        raise ConfigError("\n".join(msgs)) from None


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
        if total <= 0:
            raise ConfigError(f"{source}: requirement is all zero; give at least one positive weight")
        return tuple(v / total for v in values)
    if declared is None:
        raise ConfigError(f"{source}: no requirement and no declared capability; give `requirement: {{capability: weight}}`")
    if declared not in capabilities:
        raise ConfigError(f"{source}: capability {declared!r} is not one of {list(capabilities)}")
    n = len(capabilities)
    return tuple((1 - epsilon) * (c == declared) + epsilon / n for c in capabilities)


def card_requirement(card: TaskCard, capabilities: tuple[str, ...], override: dict[str, float] | None = None) -> tuple[float, ...]:
    """The requirement of ``card`` (or of ``override``, the config's manual vector)."""
    if override:
        return requirement_vector(capabilities, override, source="task.requirement")
    return requirement_vector(capabilities, card.requirement, card.capability, source=f"task card {card.name!r}")

"""Task cards: load, validate, and the manual requirement vector (docs/method.md §3)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer, field_validator, model_validator
from pydantic_core import PydanticCustomError

from read_distill.config import ConfigError, Seed, Weight, describe_errors, parse_yaml, read_input
from read_distill.graders import GRADERS

#: Where the embedded micro-world's cards live; a bare name resolves here.
BUILTIN_CARDS = Path(__file__).parent / "world" / "tasks"


#: What every part of a card refuses: unknown keys, NaN and inf.
_STRICT = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


#: The learned requirement forms: ``auto`` (the model at the default location) and
#: ``{learned: MODEL_DIR}`` (a model ``read-distill requirement train`` wrote).
AUTO, LEARNED = "auto", "learned"
LEARNED_FORMS = "capability -> weight, auto, or {learned: MODEL_DIR}"


def learned_form(v: Any, extra: tuple[str, ...] = ()) -> str | dict[str, str] | None:
    """``v`` as a learned requirement (``"auto"`` or ``{"learned": path}``; a string of
    ``extra`` as it is), or None where it is a mapping of weights. A string or a
    ``learned`` mapping of any other form is a one-line PydanticCustomError."""

    def refuse(message: str) -> PydanticCustomError:
        # As context, the message (which holds braces) is never read as a template.
        return PydanticCustomError("requirement", "{message}", {"message": message})

    if isinstance(v, str):
        if v == AUTO or v in extra:
            return v
        raise refuse(f"expected capability -> weight, {', '.join((*extra, AUTO))}, or {{learned: MODEL_DIR}}")
    if isinstance(v, dict) and LEARNED in v:
        if set(v) != {LEARNED}:
            raise refuse(f"{{learned: MODEL_DIR}} takes no other key; expected {LEARNED_FORMS}")
        path = v[LEARNED]
        if not isinstance(path, str) or not path.strip():
            raise refuse("learned: expected the directory of a model `read-distill requirement train` wrote")
        return {LEARNED: path}
    return None


def learned_model_dir(spec: Any, base: Path) -> Path | None:
    """The model directory of a learned requirement ``spec`` (relative paths from
    ``base``), or None where ``spec`` is not a learned one."""
    if spec == AUTO:
        from read_distill.requirement import default_model_dir

        return default_model_dir()
    if isinstance(spec, dict) and LEARNED in spec:
        path = Path(spec[LEARNED]).expanduser()
        return path if path.is_absolute() else base / path
    return None


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
    requirement: dict[str, Weight] | None = Field(
        None, description="Manual r_τ (normalised on use); or `auto` or `{learned: MODEL_DIR}`: inferred from the card's text by g_φ."
    )
    capability: str | None = Field(None, description="Declared main capability (fallback requirement).")
    metric: str = Field("exact", description="Grader of rows that name none (\"\": log-prob of the answer).")
    floors: dict[str, Annotated[float, Field(ge=0, le=100)]] = Field(
        default_factory=dict, description="capability -> the probe score a distillation for this task must keep (0-100)."
    )
    data: TaskData | None = None
    #: Directory the card was loaded from (JSONL paths are relative to it).
    source_dir: str = ""

    @field_validator("requirement", mode="wrap")
    @classmethod
    def _learned_requirement(cls, v: Any, handler: Any) -> Any:
        # `auto` and `{learned: MODEL_DIR}` pass as they are; a mapping of weights is
        # validated as the field's type says.
        learned = learned_form(v)
        return learned if learned is not None else handler(v)

    @field_serializer("requirement")
    def _requirement_as_given(self, v: Any) -> Any:
        return v

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


def requirement_source(card: TaskCard, override: dict[str, Any] | str | None = None) -> dict[str, Any]:
    """Where the requirement of ``card`` comes from: ``{"kind": "uniform" | "manual" |
    "fallback" | "learned", "from": "task.requirement" | "task card", "model": MODEL_DIR}``
    (``model`` for a learned one only)."""
    spec, where, base = (override, "task.requirement", Path.cwd()) if override else (card.requirement, "task card", Path(card.source_dir or "."))
    if spec == "uniform":
        return {"kind": "uniform", "from": where}
    model = learned_model_dir(spec, base)
    if model is not None:
        return {"kind": "learned", "from": where, "form": spec, "model": str(model)}
    return {"kind": "manual" if spec else "fallback", "from": where}


def card_requirement(
    card: TaskCard, capabilities: tuple[str, ...], override: dict[str, Any] | str | None = None
) -> tuple[float, ...]:
    """The requirement of ``card`` (or of ``override``, the config's ``task.requirement``;
    ``uniform`` weighs every capability alike: the ablation without identification). A
    learned one (``auto`` or ``{learned: MODEL_DIR}``) is g_φ of the card's text."""
    source = requirement_source(card, override)
    if source["kind"] == "uniform":
        return tuple(1.0 / len(capabilities) for _ in capabilities)
    if source["kind"] == "learned":
        from read_distill.requirement.model import infer_requirement

        field = "task.requirement" if override else f"task card {card.name!r}"
        return infer_requirement(Path(source["model"]), card, capabilities, field)
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

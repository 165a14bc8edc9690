"""The embedded micro-world: eight capability generators, composite tasks, exact graders.

Importing this package is cheap (no torch). Models and the build live in
``read_distill.world.build`` / ``read_distill.world.model``.

* ``GENERATORS[capability].generate(seed, difficulty, template=None) -> Item`` with
  ``TEMPLATES`` and ``FACTOR_RANGES`` (factor -> (min, max), docs/method.md §4).
* ``TASK_GENERATORS[name].generate(seed, difficulty) -> Item`` for task cards: six
  composites plus ``cap_<capability>`` single-capability tasks.
* ``grade(item, completion)`` scores with ``GRADERS[item.grader]``.
* Completions are ``" <rationale> #### <answer>"`` (:func:`reference_completion`).
* Seeds: training draws use seeds below ``DEV_SEED_BASE``; dev and test items
  (``split_items``) use disjoint seed ranges above it, so held-out items are never the
  same draw as training items.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from read_distill.graders import GRADERS, extract_final
from read_distill.types import CAPABILITIES, Item
from read_distill.world import (
    code,
    general_knowledge,
    long_context,
    math,
    multilingual,
    reasoning,
    steerability,
    tool_use,
)
from read_distill.world.composites import TASK_GENERATORS as _COMPOSITES
from read_distill.world.composites import Composite
from read_distill.world.lexicon import completion_text

GENERATORS: dict[str, ModuleType] = {
    "general_knowledge": general_knowledge,
    "steerability": steerability,
    "reasoning": reasoning,
    "math": math,
    "code": code,
    "tool_use": tool_use,
    "long_context": long_context,
    "multilingual": multilingual,
}
assert tuple(GENERATORS) == CAPABILITIES

#: Per capability, the max new tokens a completion may need (rationale + answer).
MAX_NEW_TOKENS: dict[str, int] = {
    "general_knowledge": 40, "steerability": 96, "reasoning": 48, "math": 48,
    "code": 64, "tool_use": 40, "long_context": 32, "multilingual": 64,
}

DEV_SEED_BASE = 1_000_000_000
TEST_SEED_BASE = 2_000_000_000
SPLIT_STRIDE = 1_000_003


def _single(capability: str) -> Composite:
    mod = GENERATORS[capability]
    return Composite(
        f"cap_{capability}",
        {capability: 1.0},
        f"The {capability} capability alone.",
        lambda seed, difficulty, _m=mod: _m.generate(seed, difficulty),
        dict(mod.FACTOR_RANGES),
    )


TASK_GENERATORS: dict[str, Composite] = {
    **_COMPOSITES,
    **{f"cap_{c}": _single(c) for c in CAPABILITIES},
}
#: The composite (multi-capability) tasks only.
COMPOSITE_TASKS: tuple[str, ...] = tuple(_COMPOSITES)


def grade(item: Item, completion: str) -> float:
    """Score ``completion`` against ``item`` with the item's grader."""
    return GRADERS[item.grader](item.answer, completion)


def reference_completion(item: Item, signal: str = "cot") -> str:
    """What a perfect teacher writes: ``" <rationale> #### <answer>"`` (``resp``: answer only)."""
    return completion_text(item.rationale, item.answer, signal)


def final_answer(completion: str) -> str:
    return extract_final(completion)


def split_seed(split: str, index: int, seed: int = 0) -> int:
    """The item seed of row ``index`` of ``split`` ("train", "dev" or "test")."""
    if split == "train":
        return seed * SPLIT_STRIDE + index
    base = {"dev": DEV_SEED_BASE, "test": TEST_SEED_BASE}[split]
    return base + seed * SPLIT_STRIDE + index


def split_items(generator: str, split: str, size: int, seed: int = 0, difficulty: str = "medium") -> list[Item]:
    """``size`` items of a capability or task generator for ``split`` (deterministic)."""
    gen = GENERATORS.get(generator) or TASK_GENERATORS[generator]
    return [gen.generate(split_seed(split, i, seed), difficulty) for i in range(size)]


@dataclass(frozen=True)
class TaskRow:
    prompt: str
    answer: str
    grader: str


__all__ = [
    "CAPABILITIES", "COMPOSITE_TASKS", "GENERATORS", "MAX_NEW_TOKENS", "TASK_GENERATORS",
    "grade", "reference_completion", "split_items", "split_seed",
]

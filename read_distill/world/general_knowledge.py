"""general_knowledge: facts about the fixed knowledge base of fictional entities.

Questions chain the ``friend`` relation ``hops - 1`` times and end on an attribute, so
difficulty (hops) is a real knob: every hop is one more memorised fact to recall.
"""

from __future__ import annotations

from read_distill.types import Item
from read_distill.world.lexicon import NAMES, check_difficulty, knowledge_base, pick_template, rng_for

CAPABILITY = "general_knowledge"
TEMPLATES = ("what_is", "tell_me", "fill", "which")
FACTOR_RANGES = {"hops": (1, 3)}
_FINAL_ATTRS = ("city", "color", "pet")


def chain_phrase(name: str, hops_before: int) -> str:
    return "friend of " * hops_before + name


def walk(name: str, attrs: list[str]) -> tuple[str, list[str]]:
    """Follow ``attrs`` (innermost first) from ``name``; the value and the rationale steps."""
    kb = knowledge_base()
    cur, steps = name, []
    for a in attrs:
        val = kb[cur].get(a)
        steps.append(f"{a} of {cur} is {val}.")
        cur = val
    return cur, steps


def question(template: str, attr: str, phrase: str) -> str:
    if template == "what_is":
        return f"Q: What is the {attr} of {phrase}?"
    if template == "tell_me":
        return f"Q: Tell me the {attr} of {phrase}."
    if template == "fill":
        return f"Q: The {attr} of {phrase} is what?"
    return f"Q: Which {attr} has {phrase}?"


def generate(seed: int, difficulty: str = "medium", template: str | None = None) -> Item:
    hops = check_difficulty(difficulty) + 1
    rng = rng_for(CAPABILITY, seed)
    template = pick_template(rng, TEMPLATES, template)
    name = rng.choice(NAMES)
    attr = rng.choice(_FINAL_ATTRS)
    answer, steps = walk(name, ["friend"] * (hops - 1) + [attr])
    prompt = question(template, attr, chain_phrase(name, hops - 1)) + "\nA:"
    return Item(prompt, answer, " ".join(steps), {"hops": float(hops)}, CAPABILITY, template, "exact")

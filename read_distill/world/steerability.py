"""steerability: follow output constraints (order, case, separator, wrapper) on simple words.

Constraints always apply in the canonical order reverse -> case -> join -> wrap, and the
rationale shows the text after each. Difficulty: number of constraints and of words.
"""

from __future__ import annotations

import json

from read_distill.types import Item
from read_distill.world.lexicon import COLORS, PETS, SIZES, check_difficulty, pick_template, rng_for

CAPABILITY = "steerability"
TEMPLATES = ("rewrite", "words_do", "format", "input_pipe")
FACTOR_RANGES = {"constraints": (1, 3), "words": (2, 4)}
WORD_POOL = (*COLORS, *PETS, *SIZES)
JSON_KEYS = ("out", "res", "val", "ans")
#: constraint groups in application order; at most one per group
_GROUPS = (("reverse",), ("upper",), ("commas", "dashes"), ("brackets", "json"))
_RULE_TEXT = {
    "reverse": "reverse order",
    "upper": "upper case",
    "commas": "join with commas",
    "dashes": "join with dashes",
    "brackets": "in brackets",
}


def apply_rules(words: list[str], rules: list[str], key: str = "out") -> tuple[str, list[str]]:
    """Apply ``rules`` (canonical order) to ``words``; the result and the rationale steps."""
    ws, text, steps = list(words), " ".join(words), []
    for r in rules:
        if r == "reverse":
            ws = ws[::-1]
            text = " ".join(ws)
        elif r == "upper":
            ws = [w.upper() for w in ws]
            text = " ".join(ws)
        elif r == "commas":
            text = ", ".join(ws)
        elif r == "dashes":
            text = "-".join(ws)
        elif r == "brackets":
            text = f"[{text}]"
        elif r == "json":
            text = json.dumps({key: text})
        steps.append(f"{r}: {text}.")
    return text, steps


def rule_text(rule: str, key: str) -> str:
    return f'json with key "{key}"' if rule == "json" else _RULE_TEXT[rule]


def choose_rules(rng, n: int) -> list[str]:
    groups = sorted(rng.sample(range(len(_GROUPS)), n))
    return [rng.choice(_GROUPS[g]) for g in groups]


def instruction(template: str, words: list[str], rules_txt: str) -> str:
    w = " ".join(words)
    if template == "rewrite":
        return f"Rewrite: {w}\nRules: {rules_txt}."
    if template == "words_do":
        return f"Words: {w}. Do: {rules_txt}."
    if template == "format":
        return f"Format the words {w} with: {rules_txt}."
    return f"Input: {w} | constraints: {rules_txt}"


def generate(seed: int, difficulty: str = "medium", template: str | None = None) -> Item:
    d = check_difficulty(difficulty)
    rng = rng_for(CAPABILITY, seed)
    template = pick_template(rng, TEMPLATES, template)
    n_rules, n_words = d + 1, d + 2
    words = rng.sample(WORD_POOL, n_words)
    rules = choose_rules(rng, n_rules)
    key = rng.choice(JSON_KEYS)
    answer, steps = apply_rules(words, rules, key)
    rules_txt = "; ".join(rule_text(r, key) for r in rules)
    prompt = instruction(template, words, rules_txt) + "\nA:"
    factors = {"constraints": float(n_rules), "words": float(n_words)}
    return Item(prompt, answer, " ".join(steps), factors, CAPABILITY, template, "exact")

"""math: multi-step addition/subtraction word problems with a step-by-step rationale.

Each step is one two-number operation written ``a+b=c.``; running values stay in
[0, 59]. Difficulty: number of steps and the operand range.
"""

from __future__ import annotations

from read_distill.types import Item
from read_distill.world.lexicon import NAMES, OBJECTS, check_difficulty, pick_template, rng_for

CAPABILITY = "math"
TEMPLATES = ("story", "expr", "counter", "ages")
FACTOR_RANGES = {"steps": (1, 3), "max_operand": (5, 12)}
_MAX_OPERAND = (5, 9, 12)
_MAX_VALUE = 59


def operations(rng, steps: int, max_operand: int) -> tuple[int, list[tuple[str, int]]]:
    """A start value and ``steps`` (op, operand) pairs keeping values in [0, 59]."""
    start = rng.randint(1, max_operand)
    cur, ops = start, []
    for _ in range(steps):
        k = rng.randint(1, max_operand)
        if cur + k <= _MAX_VALUE and (cur - k < 0 or rng.random() < 0.5):
            ops.append(("+", k))
            cur += k
        else:
            k = min(k, cur)
            ops.append(("-", k))
            cur -= k
    return start, ops


def rationale_steps(start: int, ops: list[tuple[str, int]]) -> tuple[int, list[str]]:
    cur, steps = start, []
    for op, k in ops:
        new = cur + k if op == "+" else cur - k
        steps.append(f"{cur}{op}{k}={new}.")
        cur = new
    return cur, steps


def expression(start: int, ops: list[tuple[str, int]]) -> str:
    return " ".join([str(start), *[f"{op} {k}" for op, k in ops]])


def phrase(rng, template: str, start: int, ops: list[tuple[str, int]]) -> str:
    if template == "expr":
        return f"Compute {expression(start, ops)}."
    if template == "counter":
        words = [f"{'Add' if op == '+' else 'Subtract'} {k}." for op, k in ops]
        return f"Start at {start}. " + " ".join(words) + " Result?"
    if template == "story":
        who, obj = rng.choice(NAMES), rng.choice(OBJECTS)
        words = [f"{who} {'gets' if op == '+' else 'gives away'} {k}." for op, k in ops]
        return f"{who} has {start} {obj}. " + " ".join(words) + f" How many {obj} now?"
    people = rng.sample(NAMES, len(ops) + 1)
    words = [
        f"{people[i + 1]} is {k} years {'older' if op == '+' else 'younger'} than {people[i]}."
        for i, (op, k) in enumerate(ops)
    ]
    return f"{people[0]} is {start}. " + " ".join(words) + f" How old is {people[-1]}?"


def generate(seed: int, difficulty: str = "medium", template: str | None = None) -> Item:
    d = check_difficulty(difficulty)
    rng = rng_for(CAPABILITY, seed)
    template = pick_template(rng, TEMPLATES, template)
    steps, max_operand = d + 1, _MAX_OPERAND[d]
    start, ops = operations(rng, steps, max_operand)
    answer, rsteps = rationale_steps(start, ops)
    prompt = "Q: " + phrase(rng, template, start, ops) + "\nA:"
    factors = {"steps": float(steps), "max_operand": float(max_operand)}
    return Item(prompt, str(answer), " ".join(rsteps), factors, CAPABILITY, template, "numeric")

"""code: predict the output of tiny Python programs.

Four program shapes (arithmetic function, accumulation loop, list/string pipeline, list
indexing). The reference answer is what the program prints, obtained by running it
(:func:`execute`; tests check it agrees with the sandboxed executor of
``read_distill.graders``). Rationales trace the execution in the same step formats as
``math`` (``a+b=c.``) and ``steerability`` (``upper: ...``), which is a sub-skill the
capabilities honestly share. Difficulty: program size.
"""

from __future__ import annotations

import contextlib
import io

from read_distill.types import Item
from read_distill.world.lexicon import COLORS, PETS, check_difficulty, pick_template, rng_for
from read_distill.world.math import operations, rationale_steps

CAPABILITY = "code"
TEMPLATES = ("func", "loop", "pipeline", "index")
FACTOR_RANGES = {"size": (1, 3)}
_WORDS = (*COLORS, *PETS)


def execute(program: str) -> str:
    """Run one of this module's own generated programs; its stdout without the final newline."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(program, {"__builtins__": {"print": print, "range": range}})  # noqa: S102 - our own code
    return buf.getvalue().rstrip("\n")


def _func(rng, size: int) -> tuple[str, str]:
    x, ops = operations(rng, size, 9)
    body = " ".join(["x", *[f"{op} {k}" for op, k in ops]])
    _, steps = rationale_steps(x, ops)
    return f"def f(x):\n    return {body}\nprint(f({x}))", " ".join([f"x={x}.", *steps])


def _loop(rng, size: int) -> tuple[str, str]:
    t, k = rng.randint(0, 9), rng.randint(1, 9)
    _, steps = rationale_steps(t, [("+", k)] * size)
    prog = f"t = {t}\nfor i in range({size}):\n    t = t + {k}\nprint(t)"
    return prog, " ".join(steps)


def _pipeline(rng, size: int) -> tuple[str, str]:
    words = rng.sample(_WORDS, 3)
    ops = sorted(rng.sample(range(3), size))  # 0 reverse, 1 upper, 2 join
    expr, steps, cur = "w", [], list(words)
    sep = rng.choice(["-", ", "])
    for o in ops:
        if o == 0:
            expr, cur = f"{expr}[::-1]", cur[::-1]
            steps.append(f"reverse: {' '.join(cur)}.")
        elif o == 1:
            expr, cur = f"[x.upper() for x in {expr}]", [c.upper() for c in cur]
            steps.append(f"upper: {' '.join(cur)}.")
        else:
            expr = f"'{sep}'.join({expr})"
            steps.append(f"{'dashes' if sep == '-' else 'commas'}: {sep.join(cur)}.")
    if 2 not in ops:
        expr = f"' '.join({expr})"
    listing = ", ".join(f"'{w}'" for w in words)
    return f"w = [{listing}]\nprint({expr})", " ".join(steps)


def _index(rng, size: int) -> tuple[str, str]:
    n = size + 2
    words = rng.sample(_WORDS, n)
    i = rng.randrange(n)
    listing = ", ".join(f"'{w}'" for w in words)
    return f"xs = [{listing}]\nprint(xs[{i}])", f"xs[{i}] is {words[i]}."


_SHAPES = {"func": _func, "loop": _loop, "pipeline": _pipeline, "index": _index}


def generate(seed: int, difficulty: str = "medium", template: str | None = None) -> Item:
    size = check_difficulty(difficulty) + 1
    rng = rng_for(CAPABILITY, seed)
    template = pick_template(rng, TEMPLATES, template)
    program, rationale = _SHAPES[template](rng, size)
    answer = execute(program)
    prompt = f"Code:\n{program}\nQ: What does it print?\nA:"
    return Item(prompt, answer, rationale, {"size": float(size)}, CAPABILITY, template, "exact")

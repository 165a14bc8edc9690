"""Composite task generators: items whose success needs several capabilities at once.

Each composite reuses the capability generators' formats, so a capability learned on its
own templates transfers to the composite, and the requirement vectors below are *true*:
every listed capability is needed for a correct answer (the rationale shows each part).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from read_distill.types import Item
from read_distill.world import general_knowledge as gk
from read_distill.world import long_context as lc
from read_distill.world import math as wmath
from read_distill.world import reasoning as rsn
from read_distill.world import tool_use as tu
from read_distill.world.lexicon import NAMES, check_difficulty, rng_for, vel_lexicon


@dataclass(frozen=True)
class Composite:
    """A task generator: ``generate(seed, difficulty)`` plus its true requirement."""

    name: str
    requirement: dict[str, float]
    description: str
    fn: Callable[[int, str], Item]
    factor_ranges: dict[str, tuple[float, float]]

    def generate(self, seed: int, difficulty: str = "medium") -> Item:
        return self.fn(seed, difficulty)

    @property
    def FACTOR_RANGES(self) -> dict[str, tuple[float, float]]:  # noqa: N802 - same name as modules
        return self.factor_ranges


def _tool_math(seed: int, difficulty: str) -> Item:
    d = check_difficulty(difficulty)
    rng = rng_for("tool_math", seed)
    n_tools = d + 2
    tool = rng.choice(["set_alarm", "feed", "book_trip", "paint"])
    values = tu.sample_values(rng, tool)
    int_arg = next(a for a, k in tu.TOOLS[tool][0] if k == "int")
    start, ops = wmath.operations(rng, d + 1, 9)
    total, steps = wmath.rationale_steps(start, ops)
    if total == 0:
        start, ops, total, steps = 5, [("+", 2)], 7, ["5+2=7."]
    values[int_arg] = total
    shown = dict(values)
    shown[int_arg] = wmath.expression(start, ops)
    phrase = tu.TOOLS[tool][1].format(**shown)
    prompt = tu.schema_line(rng, tool, n_tools) + "\n" + tu.request_line("request", phrase) + "\nA:"
    rationale = f"use {tool}. " + " ".join(steps)
    return Item(prompt, tu.render_call(tool, values), rationale,
                {"tools": float(n_tools), "steps": float(d + 1)}, "tool_math", "tool_math", "tool_call")


def _kb_vel(seed: int, difficulty: str) -> Item:
    d = check_difficulty(difficulty)
    rng = rng_for("kb_vel", seed)
    lex = vel_lexicon()
    hops = 1 if d == 0 else 2 if d == 1 else 3
    name = rng.choice(NAMES)
    attr = rng.choice(["color", "pet"])
    answer_en, steps = gk.walk(name, ["friend"] * (hops - 1) + [attr])
    # the question in Vel: "what <attr> of (friend of)* <name>"
    chain = " ".join([lex["friend"], lex["of"]] * (hops - 1))
    q = " ".join(w for w in [lex["what"], lex[attr], lex["of"], chain, name] if w)
    answer = lex[answer_en]
    rationale = " ".join([*steps, f"{answer_en}={answer}."])
    return Item(f"Vel: {q}?\nA:", answer, rationale, {"hops": float(hops)}, "kb_vel", "kb_vel", "exact")


def _long_tool(seed: int, difficulty: str) -> Item:
    d = check_difficulty(difficulty)
    rng = rng_for("long_tool", seed)
    template = rng.choice(lc.TEMPLATES)
    people, values, target = lc.table(rng, d)
    tool, arg = rng.choice([("call", "name"), ("send_gift", "to")])
    args = tu.sample_values(rng, tool)
    args[arg] = values[target]
    shown = dict(args)
    shown[arg] = f"the {template} of {target}"
    prompt = (f"{lc.document_text(template, people, values)}\n{tu.schema_line(rng, tool, 3)}\n"
              f"{tu.request_line('request', tu.TOOLS[tool][1].format(**shown))}\nA:")
    rationale = f"use {tool}. {lc.record(target, values[target])}"
    return Item(prompt, tu.render_call(tool, args), rationale, {"records": float(len(people))},
                "long_tool", "long_tool", "tool_call")


def _reasoning_json(seed: int, difficulty: str) -> Item:
    d = check_difficulty(difficulty)
    rng = rng_for("reasoning_json", seed)
    template = rng.choice(["kin_up", "kin_down", "order"])
    text, ans, rationale = rsn.build(rng, template, d + 1, d + 1)
    key = rng.choice(["who", "name", "ans"])
    prompt = f'{text} Reply as json with key "{key}".\nA:'
    answer = json.dumps({key: ans})
    return Item(prompt, answer, f"{rationale} json: {answer}.", {"hops": float(d + 1)},
                "reasoning_json", "reasoning_json", "json")


def _kb_tool(seed: int, difficulty: str) -> Item:
    d = check_difficulty(difficulty)
    rng = rng_for("kb_tool", seed)
    hops = d + 1
    name = rng.choice(NAMES)
    tool, attr, arg = rng.choice([("get_weather", "city", "city"), ("set_color", "color", "color")])
    value, steps = gk.walk(name, ["friend"] * (hops - 1) + [attr])
    phrase = tu.TOOLS[tool][1].format(**{arg: f"the {attr} of {gk.chain_phrase(name, hops - 1)}"})
    prompt = tu.schema_line(rng, tool, 3) + "\n" + tu.request_line("request", phrase) + "\nA:"
    rationale = f"use {tool}. " + " ".join(steps)
    return Item(prompt, tu.render_call(tool, {arg: value}), rationale, {"hops": float(hops)},
                "kb_tool", "kb_tool", "tool_call")


def _lc_vel(seed: int, difficulty: str) -> Item:
    d = check_difficulty(difficulty)
    rng = rng_for("lc_vel", seed)
    lex = vel_lexicon()
    template = rng.choice(lc.TEMPLATES)
    people, values, target = lc.table(rng, d)
    v = values[target]
    prompt = f"{lc.document_text(template, people, values)}\nQ: {lc.KINDS[template][1].format(n=target)} Answer in Vel.\nA:"
    # Vel keeps names as they are; "X is the <relation> of Y" in Vel words
    answer = f"{v} {lex['is']} {lex[template]} {lex['of']} {target}"
    rationale = f"{lc.record(target, v)} {template}={lex[template]}."
    return Item(prompt, answer, rationale, {"records": float(len(people))}, "lc_vel", "lc_vel", "exact")


TASK_GENERATORS: dict[str, Composite] = {
    c.name: c
    for c in (
        Composite("tool_math", {"tool_use": 0.5, "math": 0.5},
                  "Call a tool whose integer argument is given as arithmetic to compute.",
                  _tool_math, {"tools": (2, 4), "steps": (1, 3)}),
        Composite("kb_vel", {"multilingual": 0.5, "general_knowledge": 0.5},
                  "A knowledge-base question asked in Vel, answered in Vel.",
                  _kb_vel, {"hops": (1, 3)}),
        Composite("long_tool", {"long_context": 0.5, "tool_use": 0.5},
                  "A tool call whose argument is a person found in a document.",
                  _long_tool, {"records": (3, 12)}),
        Composite("reasoning_json", {"reasoning": 0.6, "steerability": 0.4},
                  "A multi-hop relational question answered as a JSON object with a given key.",
                  _reasoning_json, {"hops": (1, 3)}),
        Composite("kb_tool", {"general_knowledge": 0.5, "tool_use": 0.5},
                  "A tool call whose argument is a fact from the knowledge base.",
                  _kb_tool, {"hops": (1, 3)}),
        Composite("lc_vel", {"long_context": 0.5, "multilingual": 0.5},
                  "Find a person in an English document and state the relation in Vel.",
                  _lc_vel, {"records": (3, 12)}),
    )
}

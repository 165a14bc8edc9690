"""tool_use: given a schema of functions, emit exactly one call (graded by AST).

The request names one tool's action and its argument values; the answer is the call
with keyword arguments in schema order. Difficulty: tools in the schema and arguments
of the called tool.
"""

from __future__ import annotations

from read_distill.types import Item
from read_distill.world.lexicon import CITIES, COLORS, NAMES, OBJECTS, PETS, check_difficulty, pick_template, rng_for

CAPABILITY = "tool_use"
TEMPLATES = ("request", "user", "please", "task")
FACTOR_RANGES = {"tools": (2, 4), "args": (1, 3)}

#: name -> (arguments with their kinds, request phrase with {arg} slots)
TOOLS: dict[str, tuple[tuple[tuple[str, str], ...], str]] = {
    "get_weather": ((("city", "city"),), "the weather in {city}"),
    "set_color": ((("color", "color"),), "make the lamp {color}"),
    "call": ((("name", "name"),), "phone {name}"),
    "set_alarm": ((("hour", "int"), ("minute", "int")), "an alarm at {hour} h {minute} min"),
    "feed": ((("pet", "pet"), ("count", "int")), "feed the {pet} {count} times"),
    "send_gift": ((("to", "name"), ("item", "object")), "send {item} to {to}"),
    "book_trip": ((("who", "name"), ("city", "city"), ("day", "int")), "a trip for {who} to {city} on day {day}"),
    "paint": ((("pet", "pet"), ("color", "color"), ("count", "int")), "paint {count} {pet} figures {color}"),
    "move": ((("x", "int"), ("y", "int"), ("z", "int")), "a move to {x} {y} {z}"),
}
_POOLS = {"city": CITIES, "color": COLORS, "name": NAMES, "pet": PETS, "object": OBJECTS}


def by_arity(n: int) -> list[str]:
    return [t for t, (args, _) in TOOLS.items() if len(args) == n]


def signature(tool: str) -> str:
    return f"{tool}({', '.join(a for a, _ in TOOLS[tool][0])})"


def render_call(tool: str, values: dict[str, object]) -> str:
    parts = [f"{a}={values[a]!r}" for a, _ in TOOLS[tool][0]]
    return f"{tool}({', '.join(parts)})"


def sample_values(rng, tool: str, int_max: int = 30) -> dict[str, object]:
    return {a: (rng.randint(1, int_max) if kind == "int" else rng.choice(_POOLS[kind])) for a, kind in TOOLS[tool][0]}


def schema_line(rng, tool: str, n_tools: int) -> str:
    others = rng.sample([t for t in TOOLS if t != tool], n_tools - 1)
    names = [tool, *others]
    rng.shuffle(names)
    return "Tools: " + "; ".join(signature(t) for t in names)


def request_line(template: str, phrase: str) -> str:
    return {
        "request": f"Request: {phrase}.",
        "user": f"User wants {phrase}.",
        "please": f"Please do {phrase}.",
        "task": f"Task: {phrase}.",
    }[template]


def generate(seed: int, difficulty: str = "medium", template: str | None = None) -> Item:
    d = check_difficulty(difficulty)
    rng = rng_for(CAPABILITY, seed)
    template = pick_template(rng, TEMPLATES, template)
    n_tools, n_args = d + 2, d + 1
    tool = rng.choice(by_arity(n_args))
    values = sample_values(rng, tool)
    phrase = TOOLS[tool][1].format(**values)
    prompt = schema_line(rng, tool, n_tools) + "\n" + request_line(template, phrase) + "\nA:"
    answer = render_call(tool, values)
    factors = {"tools": float(n_tools), "args": float(n_args)}
    return Item(prompt, answer, f"use {tool}.", factors, CAPABILITY, template, "tool_call")

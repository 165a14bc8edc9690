"""Capability-targeted generation, prompt side (SPEC §4): the template library (typed
slots, output-format constraints, difficulty factors, reference answers), difficulty
scores and tertiles, the curriculum, the template share cap and the leakage hashes."""

from __future__ import annotations

import ast
import hashlib
import json
import math
import operator
import random
import re
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from read_distill.config import ConfigError
from read_distill.types import DIFFICULTIES, Item

#: (fraction of budget spent below which it applies, (easy, medium, hard) probabilities).
CURRICULUM: tuple[tuple[float, tuple[float, float, float]], ...] = (
    (0.30, (0.10, 0.80, 0.10)),
    (0.70, (0.10, 0.50, 0.40)),
    (1.01, (0.05, 0.20, 0.75)),
)


def curriculum(spent_frac: float) -> tuple[float, float, float]:
    """Easy/medium/hard probabilities once ``spent_frac`` of the budget is spent."""
    for limit, probs in CURRICULUM:
        if spent_frac < limit:
            return probs
    return CURRICULUM[-1][1]


def difficulty_score(factors: Mapping[str, float], ranges: Mapping[str, tuple[float, float]]) -> float:
    """d(x): mean over factors of the min–max-normalised factor (ranges from a calibration pool)."""
    parts = []
    for name, (lo, hi) in ranges.items():
        if name in factors:
            parts.append(0.0 if hi <= lo else min(1.0, max(0.0, (factors[name] - lo) / (hi - lo))))
    return sum(parts) / len(parts) if parts else 0.0


def normalise_prompt(text: str) -> str:
    """Strip, collapse whitespace, lowercase: what the leakage filter compares."""
    return re.sub(r"\s+", " ", text.strip()).lower()


def prompt_hash(text: str) -> str:
    """SHA-256 of the normalised prompt."""
    return hashlib.sha256(normalise_prompt(text).encode()).hexdigest()


class TemplateShareCap:
    """Within a sliding window of draws per capability, no template may exceed a share."""

    def __init__(self, window: int = 128, cap_frac: float = 0.25) -> None:
        self.window = window
        self.cap_frac = cap_frac
        self._recent: dict[str, deque[str]] = {}

    def allows(self, capability: str, template: str) -> bool:
        """Would drawing ``template`` keep it within the cap? (A short window is judged as
        if it held at least 1/cap draws, so the first draws are never refused.)"""
        recent = self._recent.get(capability, ())
        count = Counter(recent)[template] + 1
        return count <= self.cap_frac * max(len(recent) + 1, 1.0 / self.cap_frac)

    def record(self, capability: str, template: str) -> None:
        """Count a draw that was kept."""
        self._recent.setdefault(capability, deque(maxlen=self.window)).append(template)

    def state_dict(self) -> dict[str, list[str]]:
        """The windows, JSON-serialisable (a resumed run continues from them)."""
        return {c: list(d) for c, d in self._recent.items()}

    def load_state_dict(self, state: dict[str, list[str]]) -> None:
        """Restore what ``state_dict`` returned."""
        self._recent = {c: deque(v, maxlen=self.window) for c, v in state.items()}


# == The template library (SPEC §4) ======================================================
#
# A template is an instruction scaffold with typed slots, read from JSONL (one template a
# line). Slots are filled in their declared order from a deterministic seed, so a slot's
# bounds and every expression may use the slots before it. Expressions (slot bounds,
# derived slots, factors, reference answers) are a small Python subset checked before it
# runs; nothing in a pool file can call arbitrary code.

#: The pools shipped with the package, one JSONL file per capability.
SHIPPED_POOLS = Path(__file__).parent / "template_pools"

SLOT_TYPES = ("int", "float", "choice", "pool", "list", "expr")

#: Largest list an expression may build (range, repetition, comprehension).
MAX_SEQUENCE = 10_000
#: Longest string an expression may build (a generated long-context document fits).
MAX_TEXT = 1_000_000


class ExpressionError(ValueError):
    """An expression uses something outside the safe subset, or fails when evaluated."""


#: Format specs ``fmt`` accepts: fill/align/sign, a width of at most two digits, precision, type.
_SPEC = re.compile(r"[^{}]?[<>^=]?[+\- ]?,?0?\d{0,2}(\.\d{1,2})?[bdefgosxX%]?")


def _pow(a: Any, b: Any) -> Any:
    if isinstance(b, (int, float)) and abs(b) > 64:
        raise ExpressionError(f"exponent {b} is too large (at most 64)")
    return a**b


def _mul(a: Any, b: Any) -> Any:
    # Repetition of a string or list is bounded, like every sequence an expression builds.
    for seq, n in ((a, b), (b, a)):
        if isinstance(seq, (str, list)) and isinstance(n, int) and len(seq) * n > (MAX_TEXT if isinstance(seq, str) else MAX_SEQUENCE):
            raise ExpressionError(f"sequence of {len(seq) * n} elements is too long")
    return a * b


def _range(*args: int) -> list[int]:
    r = range(*args)
    if len(r) > MAX_SEQUENCE:
        raise ExpressionError(f"range of {len(r)} elements is too long")
    return list(r)


def _lettered(options: list[Any]) -> str:
    """``A. x`` / ``B. y`` lines for a multiple-choice question."""
    return "\n".join(f"{chr(65 + i)}. {o}" for i, o in enumerate(options))


def _call_repr(name: str, kwargs: dict[str, Any]) -> str:
    """``name(k=v, ...)`` with Python-literal values: a reference tool call."""
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"


_BINOPS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: _mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: _pow,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}
_COMPARE = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}
#: Functions an expression may call.
FUNCTIONS: dict[str, Any] = {
    "abs": abs, "min": min, "max": max, "round": round, "int": int, "float": float, "str": str,
    "bool": bool, "dict": dict, "len": len, "repr": repr, "sorted": sorted, "sum": sum, "list": list,
    "range": _range, "reversed": lambda xs: list(reversed(xs)), "set": set, "any": any, "all": all,
    "prod": lambda xs: _bounded(math.prod(xs)), "gcd": math.gcd, "sqrt": math.sqrt, "floor": math.floor, "ceil": math.ceil, "comb": math.comb,
    "factorial": lambda n: math.factorial(n) if 0 <= n <= 100 else _fail(f"factorial({n}) is out of range"),
    "join": lambda xs, sep=", ": sep.join(str(x) for x in xs),
    "lettered": _lettered,
    "json": lambda x: json.dumps(x, ensure_ascii=False),
    "call": lambda name, kwargs: _call_repr(name, kwargs),
    "fmt": lambda x, spec: format(x, spec) if _SPEC.fullmatch(spec) else _fail(f"format spec {spec!r} is not allowed"),
}
#: Methods an expression may call, per receiver type.
METHODS: dict[type, frozenset[str]] = {
    str: frozenset({"upper", "lower", "title", "capitalize", "strip", "replace", "split", "count",
                    "startswith", "endswith", "find", "join", "swapcase", "isdigit"}),
    list: frozenset({"index", "count"}),
    dict: frozenset({"get", "keys", "values", "items"}),
}


def _fail(message: str) -> Any:
    raise ExpressionError(message)


def _bounded(value: Any) -> Any:
    """Refuse results too large to be meant (huge integers, runaway strings or lists)."""
    if isinstance(value, int) and value.bit_length() > 4096:
        raise ExpressionError("integer result is too large")
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise ExpressionError(f"string result of {len(value)} characters is too long")
    if isinstance(value, list) and len(value) > MAX_SEQUENCE:
        raise ExpressionError(f"result of {len(value)} elements is too long")
    return value


class Expression:
    """A parsed expression of the safe subset: literals, slot names, arithmetic,
    comparisons, conditionals, indexing, list/dict literals, one-``for`` comprehensions,
    and calls of :data:`FUNCTIONS` and of :data:`METHODS`."""

    def __init__(self, source: str) -> None:
        self.source = source
        try:
            self.tree = ast.parse(source.strip(), mode="eval").body
        except SyntaxError as e:
            raise ExpressionError(f"not an expression: {e.msg}") from None
        self.names: set[str] = set()
        self._check(self.tree, bound=frozenset())

    def _check(self, node: ast.AST, bound: frozenset[str]) -> None:
        """Refuse every node outside the subset; collect the free names (slot references)."""
        if isinstance(node, (ast.ListComp, ast.GeneratorExp)):
            if len(node.generators) != 1 or not isinstance(node.generators[0].target, ast.Name):
                raise ExpressionError("a comprehension may have one `for NAME in ...` clause only")
            gen = node.generators[0]
            self._check(gen.iter, bound)
            inner = bound | {gen.target.id}
            for cond in gen.ifs:
                self._check(cond, inner)
            self._check(node.elt, inner)
            return
        if isinstance(node, ast.Name):
            if node.id not in bound and node.id not in FUNCTIONS:
                self.names.add(node.id)
            return
        if isinstance(node, ast.Call):
            if node.keywords:
                raise ExpressionError("keyword arguments are not allowed in calls")
            if isinstance(node.func, ast.Name):
                if node.func.id not in FUNCTIONS:
                    raise ExpressionError(f"unknown function {node.func.id!r}; allowed: {sorted(FUNCTIONS)}")
            elif isinstance(node.func, ast.Attribute):
                allowed = set().union(*METHODS.values())
                if node.func.attr not in allowed:
                    raise ExpressionError(f"method {node.func.attr!r} is not allowed; allowed: {sorted(allowed)}")
                self._check(node.func.value, bound)
            else:
                raise ExpressionError("only named functions and methods can be called")
            for a in node.args:
                self._check(a, bound)
            return
        allowed_nodes = (
            ast.Constant, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.Subscript,
            ast.Slice, ast.List, ast.Tuple, ast.Dict,
            ast.operator, ast.unaryop, ast.boolop, ast.cmpop, ast.expr_context,
        )
        if not isinstance(node, allowed_nodes):
            raise ExpressionError(f"{type(node).__name__} is not allowed in expressions")
        if isinstance(node, ast.BinOp) and type(node.op) not in _BINOPS:
            raise ExpressionError(f"operator {type(node.op).__name__} is not allowed")
        if isinstance(node, ast.UnaryOp) and type(node.op) not in _UNARY:
            raise ExpressionError(f"operator {type(node.op).__name__} is not allowed")
        if isinstance(node, ast.Compare) and any(type(op) not in _COMPARE for op in node.ops):
            raise ExpressionError("only ==, !=, <, <=, >, >=, in, not in comparisons are allowed")
        for child in ast.iter_child_nodes(node):
            self._check(child, bound)

    def __call__(self, env: dict[str, Any]) -> Any:
        """Evaluate with slot values ``env``."""
        try:
            return self._eval(self.tree, env)
        except ExpressionError:
            raise
        except (ArithmeticError, LookupError, TypeError, ValueError) as e:
            raise ExpressionError(f"{type(e).__name__}: {e}") from None

    def _eval(self, node: ast.AST, env: dict[str, Any]) -> Any:
        ev = self._eval
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in env:
                return env[node.id]
            if node.id in FUNCTIONS:
                return FUNCTIONS[node.id]
            raise ExpressionError(f"unknown name {node.id!r}")
        if isinstance(node, ast.BinOp):
            return _bounded(_BINOPS[type(node.op)](ev(node.left, env), ev(node.right, env)))
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](ev(node.operand, env))
        if isinstance(node, ast.BoolOp):
            values = (ev(v, env) for v in node.values)
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.Compare):
            left = ev(node.left, env)
            for op, comp in zip(node.ops, node.comparators, strict=True):
                right = ev(comp, env)
                if not _COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.IfExp):
            return ev(node.body, env) if ev(node.test, env) else ev(node.orelse, env)
        if isinstance(node, ast.Subscript):
            return ev(node.value, env)[ev(node.slice, env)]
        if isinstance(node, ast.Slice):
            return slice(*(None if p is None else ev(p, env) for p in (node.lower, node.upper, node.step)))
        if isinstance(node, (ast.List, ast.Tuple)):
            out = [ev(e, env) for e in node.elts]
            return out if isinstance(node, ast.List) else tuple(out)
        if isinstance(node, ast.Dict):
            if any(k is None for k in node.keys):
                raise ExpressionError("** in dict literals is not allowed")
            return {ev(k, env): ev(v, env) for k, v in zip(node.keys, node.values, strict=True)}
        if isinstance(node, (ast.ListComp, ast.GeneratorExp)):
            gen = node.generators[0]
            seq = ev(gen.iter, env)
            if len(seq) > MAX_SEQUENCE:
                raise ExpressionError(f"comprehension over {len(seq)} elements is too long")
            out = []
            for x in seq:
                inner = {**env, gen.target.id: x}
                if all(ev(c, inner) for c in gen.ifs):
                    out.append(ev(node.elt, inner))
            return out
        if isinstance(node, ast.Call):
            args = [ev(a, env) for a in node.args]
            if isinstance(node.func, ast.Name):
                return FUNCTIONS[node.func.id](*args)
            receiver = ev(node.func.value, env)
            if node.func.attr not in METHODS.get(type(receiver), frozenset()):
                raise ExpressionError(f"{type(receiver).__name__} has no allowed method {node.func.attr!r}")
            return _bounded(getattr(receiver, node.func.attr)(*args))
        raise ExpressionError(f"{type(node).__name__} is not allowed in expressions")


def format_value(value: Any) -> str:
    """How a slot value or an answer is written: floats without float noise (``37.05``, not
    ``37.050000000000004``), integral floats as integers, lists comma-separated, dicts as JSON."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value == round(value) and abs(value) < 1e15:
            return str(int(round(value)))
        return format(round(value, 9), ".10g")
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _band(n: int, difficulty: str | None) -> tuple[int, int]:
    """Index range [lo, hi) of ``difficulty``'s third of ``n`` ordered values (all if None);
    an empty third falls back to the nearest non-empty one."""
    if difficulty is None or n < 3:
        return (0, n) if difficulty is None or n == 0 else _small_band(n, difficulty)
    b = DIFFICULTIES.index(difficulty)
    return (-(-b * n // 3), -(-(b + 1) * n // 3))


def _small_band(n: int, difficulty: str) -> tuple[int, int]:
    # One or two values: easy takes the first, hard the last, medium the last of two.
    k = 0 if difficulty == "easy" or n == 1 else n - 1
    return (k, k + 1)


_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)?)\}|[{}]")


@dataclass(frozen=True)
class Slot:
    """One typed slot. ``int``/``float``: ``lo``..``hi`` (numbers or expressions);
    ``choice``: ``values`` ordered from easy to hard; ``pool``: ``values`` drawn uniformly;
    ``list``: ``count`` draws from ``values`` (distinct unless ``replace``) joined by ``sep``;
    ``expr``: derived from earlier slots."""

    name: str
    type: str
    lo: Expression | None = None
    hi: Expression | None = None
    format: str = "{:.2f}"
    values: tuple[Any, ...] = ()
    count: Expression | None = None
    sep: str = ", "
    replace: bool = False
    value: Expression | None = None

    def fill(self, env: dict[str, Any], rng: random.Random, difficulty: str | None) -> Any:
        """Draw this slot's value; ``difficulty`` (when this slot drives difficulty) picks the
        easy/medium/hard third of its range or ordered values."""
        if self.type == "int":
            lo, hi = int(self.lo(env)), int(self.hi(env))
            if hi < lo:
                raise ExpressionError(f"empty int range {lo}..{hi}")
            a, b = _band(hi - lo + 1, difficulty)
            return lo + rng.randrange(a, b)
        if self.type == "float":
            lo, hi = float(self.lo(env)), float(self.hi(env))
            b = DIFFICULTIES.index(difficulty) if difficulty is not None else None
            x = rng.uniform(lo, hi) if b is None else rng.uniform(lo + b * (hi - lo) / 3, lo + (b + 1) * (hi - lo) / 3)
            # The value computed with is the value the prompt shows.
            return float(self.format.format(x))
        if self.type == "choice":
            a, b = _band(len(self.values), difficulty)
            return self.values[rng.randrange(a, b)]
        if self.type == "pool":
            return rng.choice(self.values)
        if self.type == "list":
            k = int(self.count(env))
            if self.replace and 0 <= k <= MAX_SEQUENCE:
                return rng.choices(self.values, k=k)
            if not 0 <= k <= len(self.values):
                raise ExpressionError(f"count {k} is not within 0..{len(self.values)} (the number of values)")
            return rng.sample(list(self.values), k)
        return self.value(env)

    def render(self, value: Any) -> str:
        """The text a placeholder of this slot becomes."""
        if self.type == "float":
            return self.format.format(value)
        if self.type == "list":
            return self.sep.join(format_value(v) for v in value)
        return format_value(value)


@dataclass(frozen=True)
class Template:
    """An instruction scaffold with typed slots, output-format constraint, difficulty
    factors, and an optional reference answer expression with its grader."""

    id: str
    capability: str
    template: str
    slots: tuple[Slot, ...]
    factors: dict[str, Expression]
    answer: Expression | None = None
    grader: str = ""
    format: str = ""
    #: Slots a factor depends on (directly or through derived slots): difficulty moves them.
    drivers: frozenset[str] = frozenset()

    def fill(self, seed: int, difficulty: str | None = None) -> dict[str, Any]:
        """The slot values for ``seed`` (``difficulty`` None: every slot drawn uniformly)."""
        # A string seed goes through SHA-512 in `random`, so draws do not depend on
        # PYTHONHASHSEED, the platform or the Python version.
        rng = random.Random(f"{self.id}|{seed}|{difficulty}")
        env: dict[str, Any] = {}
        for slot in self.slots:
            env[slot.name] = slot.fill(env, rng, difficulty if slot.name in self.drivers else None)
        return env

    def render(self, text: str, env: dict[str, Any]) -> str:
        """``text`` with ``{slot}`` / ``{slot.field}`` replaced; ``{{`` and ``}}`` are braces."""
        by_name = {s.name: s for s in self.slots}

        def sub(m: re.Match[str]) -> str:
            token = m.group(0)
            if token in ("{{", "}}"):
                return token[0]
            name, _, field = m.group(1).partition(".")
            value = env[name]
            return format_value(value[field]) if field else by_name[name].render(value)

        return _PLACEHOLDER.sub(sub, text)

    def instantiate(self, seed: int, difficulty: str | None = None) -> Item:
        """The item of ``seed`` at ``difficulty`` (deterministic in both)."""
        env = self.fill(seed, difficulty)
        prompt = self.render(self.template, env)
        if self.format:
            prompt += "\n\n" + self.render(self.format, env)
        return Item(
            prompt=prompt,
            answer=format_value(self.answer(env)) if self.answer is not None else "",
            factors={k: float(f(env)) for k, f in self.factors.items()},
            capability=self.capability,
            template=self.id,
            grader=self.grader,
        )


def _parse_template(raw: Any, where: str) -> Template:
    """One JSONL row → Template; every problem raises ConfigError naming ``where`` and the field."""
    from read_distill.graders import GRADERS

    def bad(field: str, expected: str, got: Any) -> ConfigError:
        return ConfigError(f"{where}: field {field!r}: expected {expected}, got {got!r}")

    def expr(field: str, value: Any, known: set[str]) -> Expression:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise bad(field, "a number or an expression string", value)
        try:
            e = Expression(str(value))
        except ExpressionError as err:
            raise bad(field, f"an expression of the safe subset ({err})", value) from None
        unknown = e.names - known
        if unknown:
            raise bad(field, f"an expression over earlier slots {sorted(known)}; unknown names {sorted(unknown)}", value)
        return e

    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {type(raw).__name__}")
    allowed = {"id", "capability", "template", "slots", "factors", "answer", "grader", "format"}
    extra = sorted(set(raw) - allowed)
    if extra:
        raise bad(extra[0], f"one of the fields {sorted(allowed)}", extra[0])
    for key in ("id", "capability", "template"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise bad(key, "a non-empty string", raw.get(key))
    slots_raw = raw.get("slots", {})
    if not isinstance(slots_raw, dict):
        raise bad("slots", "an object of name -> slot", slots_raw)
    slots: list[Slot] = []
    known: set[str] = set()
    deps: dict[str, set[str]] = {}
    for name, spec in slots_raw.items():
        field = f"slots.{name}"
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name in FUNCTIONS:
            raise bad(field, "a slot name that is an identifier and not a function name", name)
        if not isinstance(spec, dict) or spec.get("type") not in SLOT_TYPES:
            raise bad(f"{field}.type", f"one of {list(SLOT_TYPES)}", spec.get("type") if isinstance(spec, dict) else spec)
        kind = spec["type"]
        keys = {"int": {"min", "max"}, "float": {"min", "max"}, "choice": {"values"}, "pool": {"values"},
                "list": {"values", "count"}, "expr": {"value"}}[kind]
        optional = {"float": {"format"}, "list": {"sep", "replace"}}.get(kind, set())
        for key in sorted(keys - set(spec)):
            raise bad(f"{field}.{key}", f"a value (required for a {kind} slot)", None)
        for key in sorted(set(spec) - keys - optional - {"type"}):
            raise bad(f"{field}.{key}", f"one of {sorted(keys | optional | {'type'})} for a {kind} slot", key)
        kw: dict[str, Any] = {"name": name, "type": kind}
        if kind in ("int", "float"):
            kw["lo"], kw["hi"] = expr(f"{field}.min", spec["min"], known), expr(f"{field}.max", spec["max"], known)
            deps[name] = kw["lo"].names | kw["hi"].names
            if kind == "float":
                fmt = spec.get("format", "{:.2f}")
                try:
                    fmt.format(1.5)
                except (ValueError, IndexError, KeyError, AttributeError):
                    raise bad(f"{field}.format", "a format string like '{:.2f}'", fmt) from None
                kw["format"] = fmt
        elif kind == "expr":
            kw["value"] = expr(f"{field}.value", spec["value"], known)
            deps[name] = kw["value"].names
        else:
            values = spec["values"]
            if not isinstance(values, list) or not values:
                raise bad(f"{field}.values", "a non-empty list", values)
            kw["values"] = tuple(values)
            if kind == "list":
                kw["count"] = expr(f"{field}.count", spec["count"], known)
                deps[name] = kw["count"].names
                sep = spec.get("sep", ", ")
                if not isinstance(sep, str):
                    raise bad(f"{field}.sep", "a string", sep)
                kw["sep"] = sep
                if not isinstance(spec.get("replace", False), bool):
                    raise bad(f"{field}.replace", "true or false", spec["replace"])
                kw["replace"] = spec.get("replace", False)
            else:
                deps[name] = set()
        slots.append(Slot(**kw))
        known.add(name)
    factors_raw = raw.get("factors")
    if not isinstance(factors_raw, dict) or not factors_raw:
        raise bad("factors", "a non-empty object of factor name -> number or expression", factors_raw)
    factors = {k: expr(f"factors.{k}", v, known) for k, v in factors_raw.items()}
    # A slot drives difficulty when a factor depends on it, directly or through derived slots.
    drivers: set[str] = set()
    frontier = set().union(*(f.names for f in factors.values()))
    while frontier:
        name = frontier.pop()
        if name not in drivers:
            drivers.add(name)
            if next(s for s in slots if s.name == name).type in ("expr", "list"):
                frontier |= deps[name]
    answer = expr("answer", raw["answer"], known) if "answer" in raw else None
    grader = raw.get("grader", "exact" if answer is not None else "")
    if answer is None and "grader" in raw:
        raise bad("grader", "no grader when there is no answer (the item is scored by log-prob)", grader)
    if answer is not None and grader not in GRADERS:
        raise bad("grader", f"one of {sorted(GRADERS)}", grader)
    fmt = raw.get("format", "")
    if not isinstance(fmt, str):
        raise bad("format", "a string (the output-format constraint)", fmt)
    for field, text in (("template", raw["template"]), ("format", fmt)):
        for m in _PLACEHOLDER.finditer(text):
            token = m.group(0)
            if token in ("{{", "}}"):
                continue
            if m.group(1) is None:
                raise bad(field, "text whose literal braces are doubled ({{ and }})", text)
            if m.group(1).partition(".")[0] not in known:
                raise bad(field, f"placeholders naming slots {sorted(known)}", "{" + m.group(1) + "}")
    template = Template(
        id=raw["id"], capability=raw["capability"], template=raw["template"], slots=tuple(slots),
        factors=factors, answer=answer, grader=grader, format=fmt, drivers=frozenset(drivers),
    )
    # A trial instantiation per difficulty catches what only evaluation shows (a bad index,
    # an empty range, a non-numeric factor) at load time rather than mid-run.
    for difficulty in (None, *DIFFICULTIES):
        try:
            template.instantiate(0, difficulty)
        except ExpressionError as err:
            raise ConfigError(f"{where}: template {raw['id']!r} fails to instantiate ({difficulty or 'any'} difficulty): {err}") from None
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigError(f"{where}: template {raw['id']!r} fails to instantiate: {type(err).__name__}: {err}") from None
    return template


def load_pool(path: Path | str) -> list[Template]:
    """The templates of one JSONL file (one template a line; blank lines skipped)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such template pool") from None
    templates, seen = [], set()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}:{n}: not valid JSON: {e.msg}") from None
        t = _parse_template(raw, f"{path}:{n}")
        if t.id in seen:
            raise ConfigError(f"{path}:{n}: field 'id': expected an id unique in the pool, got {t.id!r} again")
        seen.add(t.id)
        templates.append(t)
    return templates


def load_pools(directory: Path | str | None = None) -> list[Template]:
    """Every ``*.jsonl`` pool in ``directory`` (default: the shipped pools), ids unique across them."""
    directory = Path(directory) if directory is not None else SHIPPED_POOLS
    files = sorted(directory.glob("*.jsonl"))
    if not files:
        raise ConfigError(f"{directory}: no template pools (*.jsonl) found")
    templates, where = [], {}
    for f in files:
        for t in load_pool(f):
            if t.id in where:
                raise ConfigError(f"{f}: template id {t.id!r} is also used in {where[t.id]}")
            where[t.id] = f
            templates.append(t)
    return templates


@dataclass(frozen=True)
class Calibration:
    """A capability's difficulty scale: factor ranges and the tertile cut points of d(x)."""

    ranges: dict[str, tuple[float, float]]
    #: d at the 1/3 and 2/3 quantiles of the calibration pool.
    cuts: tuple[float, float]

    def tertile(self, factors: Mapping[str, float]) -> str:
        """easy (d <= first cut), hard (d > second cut) or medium."""
        d = difficulty_score(factors, self.ranges)
        return "easy" if d <= self.cuts[0] else "hard" if d > self.cuts[1] else "medium"


def calibrate(items: list[Item]) -> Calibration:
    """Factor ranges and d tertiles over a calibration pool of one capability's items."""
    ranges: dict[str, tuple[float, float]] = {}
    for it in items:
        for k, v in it.factors.items():
            lo, hi = ranges.get(k, (v, v))
            ranges[k] = (min(lo, v), max(hi, v))
    ds = sorted(difficulty_score(it.factors, ranges) for it in items)
    q = lambda p: ds[min(len(ds) - 1, int(p * len(ds)))]  # noqa: E731
    return Calibration(ranges, (q(1 / 3), q(2 / 3)))


class TemplateSource:
    """Items for (capability, difficulty, seed), with difficulty judged on a calibration pool.

    The calibration pool holds ``per_template`` instantiations of every template, spread
    evenly over the three difficulty hints (calibration seeds are negative, so no training
    or probe seed repeats them). A draw picks a template uniformly among those that reached
    the asked tertile in calibration, instantiates it with the difficulty as a hint, and
    redraws (up to ``max_tries``) until the item's d falls in the tertile; failing that it
    keeps the try closest to it.
    """

    def __init__(self, templates: list[Template], per_template: int = 12, max_tries: int = 16) -> None:
        self.max_tries = max_tries
        self.by_capability: dict[str, list[Template]] = {}
        for t in templates:
            self.by_capability.setdefault(t.capability, []).append(t)
        self.calibration: dict[str, Calibration] = {}
        self.reach: dict[str, set[str]] = {}
        for capability, pool in self.by_capability.items():
            samples = {
                t.id: [t.instantiate(-1 - k, DIFFICULTIES[k % 3]) for k in range(per_template)] for t in pool
            }
            cal = calibrate([it for items in samples.values() for it in items])
            self.calibration[capability] = cal
            for tid, items in samples.items():
                self.reach[tid] = {cal.tertile(it.factors) for it in items}

    @property
    def capabilities(self) -> tuple[str, ...]:
        return tuple(self.by_capability)

    def tertile(self, item: Item) -> str:
        """The difficulty of ``item`` on its capability's calibrated scale."""
        return self.calibration[item.capability].tertile(item.factors)

    def draw(self, capability: str, difficulty: str, seed: int, graded_only: bool = False) -> Item:
        """An item of ``capability`` in ``difficulty``'s tertile, deterministic in ``seed``.
        ``graded_only``: only templates with a reference answer."""
        pool = self.by_capability.get(capability)
        if not pool:
            raise ConfigError(f"no templates for capability {capability!r}; pools cover {sorted(self.by_capability)}")
        if graded_only:
            pool = [t for t in pool if t.answer is not None] or pool
        candidates = [t for t in pool if difficulty in self.reach[t.id]] or pool
        rng = random.Random(f"draw|{capability}|{difficulty}|{seed}|{graded_only}")
        cal = self.calibration[capability]
        target = DIFFICULTIES.index(difficulty)
        best, best_gap = None, math.inf
        for _ in range(self.max_tries):
            item = rng.choice(candidates).instantiate(rng.getrandbits(63), difficulty)
            gap = abs(DIFFICULTIES.index(cal.tertile(item.factors)) - target)
            if gap == 0:
                return item
            if gap < best_gap:
                best, best_gap = item, gap
        assert best is not None
        return best

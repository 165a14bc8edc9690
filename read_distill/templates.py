"""Capability-targeted generation, prompt side (docs/method.md §4): the template library,
difficulty scores and tertiles, the curriculum, the template share cap and leakage hashes.

A template pool is a JSONL file, one template a line (the shipped pools are in
``template_pools/``; ``world.template_dir`` points at others). A row is plain data::

    {"id": "math.fence_perimeter", "capability": "math",
     "template": "A farmer fences a rectangular field that measures {l} m by {w} m. ...",
     "slots": {"size": {"type": "choice", "values": [{"digits": 1, "min": 1, "max": 9}, ...]},
               "l": {"type": "int", "min": "size.min", "max": "size.max"}, ...},
     "difficulty": ["size"], "factors": {"digits": "size.digits", "steps": 2},
     "compute": "fence_perimeter", "answer": "{answer}", "grader": "numeric", "format": "..."}

Slots are drawn in order from the seed: ``int`` and ``float`` in [min, max], ``choice`` one
of ``values``, ``list`` ``count`` distinct values (``replace``: repeats allowed), ``index`` a
position in an earlier list. A bound or count is a number or names an earlier slot.
``difficulty`` lists the slots the difficulty hint moves to the easy, middle or hard third
of their range (``choice`` values are ordered from easy to hard). ``{name}`` in the text or
the answer, and a name in ``factors``, reads a slot, a step into it (``{rec.capital}``,
``{pair.0}``) or a value of the row's ``compute`` function.

What plain data cannot say is plain Python, not an expression language in the pools:
``compute`` names a function of :data:`read_distill.template_functions.FUNCTIONS`, which gets
the slot values and the seeded ``random.Random`` (for draws that depend on earlier values)
and returns more named values. A reference answer such as "what does this program print"
is a small program; as a function it is read, tested and debugged like the rest of the
code, and no second language has to be learnt or sandboxed. A template without ``answer``
is ungraded: probes score it by the log-prob of the teacher's answer.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError
from pydantic_core import PydanticCustomError

from read_distill.config import ConfigError, read_input
from read_distill.graders import GRADERS
from read_distill.template_functions import FUNCTIONS
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


# == The template library ===================================================================

#: The pools shipped with the package, one JSONL file per capability.
SHIPPED_POOLS = Path(__file__).parent / "template_pools"

#: A slot name, then optional steps into it: a record field or a list position (``rec.capital``, ``pair.0``).
_PATH = re.compile(r"[A-Za-z_]\w*(?:\.\w+)*")
#: ``{path}`` placeholders; ``{{`` and ``}}`` are literal braces, any other brace is an error.
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{(" + _PATH.pattern + r")\}|[{}]")


def format_value(value: Any) -> str:
    """How a value is written: floats without float noise (``37.05``, not
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


def lookup(values: Mapping[str, Any], path: str) -> Any:
    """The value at ``path``: a name in ``values``, then a field or list position per step."""
    name, *steps = path.split(".")
    value = values[name]
    for step in steps:
        value = value[int(step)] if isinstance(value, list) else value[step]
    return value


def _resolve(bound: Any, values: Mapping[str, Any]) -> Any:
    """A bound or count: the number itself, or the value it names."""
    return lookup(values, bound) if isinstance(bound, str) else bound


def _band(n: int, difficulty: str | None) -> tuple[int, int]:
    """Index range [lo, hi) of ``difficulty``'s third of ``n`` ordered values (all of them for
    None). With one or two values, easy takes the first and medium and hard the last."""
    if difficulty is None or n == 0:
        return 0, n
    if n < 3:
        k = 0 if difficulty == "easy" else n - 1
        return k, k + 1
    b = DIFFICULTIES.index(difficulty)
    return -(-b * n // 3), -(-(b + 1) * n // 3)


def _number_or_path(numbers: tuple[type, ...], expected: str) -> BeforeValidator:
    """Accept a number of the given types or a path naming another value; else say ``expected``."""

    def check(value: Any) -> Any:
        if isinstance(value, bool) or not (
            isinstance(value, numbers) or isinstance(value, str) and _PATH.fullmatch(value)
        ):
            raise PydanticCustomError("expected", expected)
        return value

    return BeforeValidator(check)


def _format_spec(spec: str) -> str:
    try:
        spec.format(1.5)
    except (ValueError, IndexError, KeyError, AttributeError):
        raise PydanticCustomError("expected", "a format string like '{:.2f}'") from None
    return spec


_EARLIER = "the name of an earlier slot (like 'n' or 'size.max')"
IntBound = Annotated[int | str, _number_or_path((int,), f"a whole number or {_EARLIER}")]
FloatBound = Annotated[float | str, _number_or_path((int, float), f"a number or {_EARLIER}")]
Factor = Annotated[
    float | str,
    _number_or_path((int, float), "a number or the name of a slot or computed value (like 'n' or 'rec.rank')"),
]
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_]\w*$")]
Text = Annotated[str, StringConstraints(min_length=1)]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Slot(_Data):
    def render(self, value: Any) -> str:
        """The text a ``{slot}`` placeholder becomes."""
        return format_value(value)


class IntSlot(_Slot):
    """An integer in [min, max]."""

    type: Literal["int"]
    min: IntBound
    max: IntBound

    def draw(self, values: Mapping[str, Any], rng: random.Random, difficulty: str | None) -> int:
        lo, hi = int(_resolve(self.min, values)), int(_resolve(self.max, values))
        if hi < lo:
            raise ValueError(f"empty range {lo}..{hi}")
        a, b = _band(hi - lo + 1, difficulty)
        return lo + rng.randrange(a, b)


class FloatSlot(_Slot):
    """A number in [min, max], written (and computed with) as ``format`` shows it."""

    type: Literal["float"]
    min: FloatBound
    max: FloatBound
    format: Annotated[str, BeforeValidator(_format_spec)] = "{:.2f}"

    def draw(self, values: Mapping[str, Any], rng: random.Random, difficulty: str | None) -> float:
        lo, hi = float(_resolve(self.min, values)), float(_resolve(self.max, values))
        if difficulty is not None:
            b = DIFFICULTIES.index(difficulty)
            lo, hi = lo + b * (hi - lo) / 3, lo + (b + 1) * (hi - lo) / 3
        # Round to what the prompt shows, so the answer is computed from the value the model sees.
        return float(self.format.format(rng.uniform(lo, hi)))

    def render(self, value: Any) -> str:
        return self.format.format(value)


class ChoiceSlot(_Slot):
    """One of ``values`` (a string, number, or record that ``{slot.field}`` reads)."""

    type: Literal["choice"]
    values: Annotated[list[Any], Field(min_length=1)]

    def draw(self, values: Mapping[str, Any], rng: random.Random, difficulty: str | None) -> Any:
        a, b = _band(len(self.values), difficulty)
        return self.values[rng.randrange(a, b)]


class ListSlot(_Slot):
    """``count`` of ``values``, distinct unless ``replace``; written joined by ``sep``."""

    type: Literal["list"]
    values: Annotated[list[Any], Field(min_length=1)]
    count: IntBound
    sep: str = ", "
    replace: bool = False

    def draw(self, values: Mapping[str, Any], rng: random.Random, difficulty: str | None) -> list[Any]:
        k = int(_resolve(self.count, values))
        if k < 0 or not self.replace and k > len(self.values):
            raise ValueError(f"count {k} is not within 0..{len(self.values)} (the number of values)")
        return rng.choices(self.values, k=k) if self.replace else rng.sample(self.values, k)

    def render(self, value: Any) -> str:
        return self.sep.join(format_value(v) for v in value)


class IndexSlot(_Slot):
    """A position (from 0) in the earlier list slot ``of``."""

    type: Literal["index"]
    of: Name

    def draw(self, values: Mapping[str, Any], rng: random.Random, difficulty: str | None) -> int:
        n = len(values[self.of])
        if n == 0:
            raise ValueError(f"no position in the empty list {self.of!r}")
        a, b = _band(n, difficulty)
        return rng.randrange(a, b)


Slot = Annotated[IntSlot | FloatSlot | ChoiceSlot | ListSlot | IndexSlot, Field(discriminator="type")]
SLOT_TYPES: dict[str, type[_Slot]] = {
    "int": IntSlot,
    "float": FloatSlot,
    "choice": ChoiceSlot,
    "list": ListSlot,
    "index": IndexSlot,
}


class Template(_Data):
    """One row of a pool: an instruction scaffold with typed slots, an output-format
    constraint, difficulty factors and an optional reference answer with its grader."""

    id: Text
    capability: Text
    template: Text
    format: str = ""
    slots: dict[Name, Slot] = {}
    difficulty: tuple[str, ...] = ()
    compute: str | None = None
    factors: Annotated[dict[str, Factor], Field(min_length=1)]
    answer: str | None = None
    grader: str | None = None

    @property
    def graded_by(self) -> str:
        """The grader of this template's items: ``grader``, by default ``exact``; "" when ungraded."""
        return "" if self.answer is None else self.grader or "exact"

    def fill(self, seed: int, difficulty: str | None = None) -> dict[str, Any]:
        """Slot and computed values for ``seed`` (``difficulty`` None: every slot drawn uniformly)."""
        # A string seed goes through SHA-512 in `random`, so draws do not depend on
        # PYTHONHASHSEED, the platform or the Python version.
        rng = random.Random(f"{self.id}|{seed}|{difficulty}")
        values: dict[str, Any] = {}
        for name, slot in self.slots.items():
            values[name] = slot.draw(values, rng, difficulty if name in self.difficulty else None)
        if self.compute is not None:
            computed = FUNCTIONS[self.compute](dict(values), rng)
            clash = sorted(set(computed) & set(values))
            if clash:
                raise ValueError(f"compute {self.compute!r} returns {clash}, which are slot names")
            values.update(computed)
        return values

    def render(self, text: str, values: Mapping[str, Any]) -> str:
        """``text`` with each ``{path}`` replaced by the value it names; ``{{`` and ``}}`` are braces."""

        def sub(m: re.Match[str]) -> str:
            path = m.group(1)
            if path is None:
                return m.group(0)[0]
            return self.slots[path].render(values[path]) if path in self.slots else format_value(lookup(values, path))

        return _PLACEHOLDER.sub(sub, text)

    def instantiate(self, seed: int, difficulty: str | None = None) -> Item:
        """The item of ``seed`` at ``difficulty`` (deterministic in both)."""
        values = self.fill(seed, difficulty)
        prompt = self.render(self.template, values)
        if self.format:
            prompt += "\n\n" + self.render(self.format, values)
        return Item(
            prompt=prompt,
            answer="" if self.answer is None else self.render(self.answer, values),
            factors={k: float(lookup(values, f) if isinstance(f, str) else f) for k, f in self.factors.items()},
            capability=self.capability,
            template=self.id,
            grader=self.graded_by,
        )


def _bad(where: str, field: str, expected: str, got: Any) -> ConfigError:
    return ConfigError(f"{where}: field {field!r}: expected {expected}, got {got!r}")


#: Pydantic error types whose message does not read as "expected ...".
_EXPECTED = {
    "missing": "a value (the field is required)",
    "string_too_short": "a non-empty string",
    "too_short": "at least one entry",
}


def _describe(error: Mapping[str, Any], where: str) -> ConfigError:
    """The first pydantic error of a row as one line naming the field and the expected form."""
    loc = [str(p) for p in error["loc"]]
    model: type[BaseModel] = Template
    if len(loc) > 2 and loc[0] == "slots" and loc[2] in SLOT_TYPES:
        model = SLOT_TYPES[loc.pop(2)]  # the discriminator's own step: not a field of the row
    kind, got = error["type"], error.get("input")
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        got = got.get("type") if isinstance(got, dict) else got
        return _bad(where, ".".join([*loc, "type"]), f"one of {sorted(SLOT_TYPES)}", got)
    if kind == "extra_forbidden":
        return _bad(where, ".".join(loc), f"one of the fields {list(model.model_fields)}", loc[-1])
    expected = (
        error["msg"] if kind == "expected" else _EXPECTED.get(kind, error["msg"].removeprefix("Input should be "))
    )
    return _bad(where, ".".join(loc), expected, None if kind == "missing" else got)


def _check_slot_references(t: Template, where: str) -> None:
    """Every bound, count and ``of`` that names a slot names one declared before."""
    earlier: dict[str, _Slot] = {}
    for name, slot in t.slots.items():
        for key in ("min", "max", "count", "of"):
            ref = getattr(slot, key, None)
            if isinstance(ref, str) and ref.split(".")[0] not in earlier:
                kind = "a list slot" if key == "of" else "a number or a slot"
                raise _bad(where, f"slots.{name}.{key}", f"{kind} declared before {name!r} {list(earlier)}", ref)
        if isinstance(slot, IndexSlot) and not isinstance(earlier[slot.of], ListSlot):
            raise _bad(where, f"slots.{name}.of", f"a list slot declared before {name!r}", slot.of)
        earlier[name] = slot


def _check_fields(t: Template, where: str) -> None:
    """The difficulty slots, the compute function, the grader and the braces of the texts."""
    for name in t.difficulty:
        if not isinstance(t.slots.get(name), (IntSlot, FloatSlot, ChoiceSlot, IndexSlot)):
            ranged = [n for n, s in t.slots.items() if not isinstance(s, ListSlot)]
            raise _bad(where, "difficulty", f"names of int, float, choice or index slots {ranged}", name)
    if t.compute is not None and t.compute not in FUNCTIONS:
        raise _bad(where, "compute", "the name of a function in read_distill.template_functions.FUNCTIONS", t.compute)
    if t.grader is not None and t.answer is None:
        raise _bad(where, "grader", "no grader when there is no answer (the item is scored by log-prob)", t.grader)
    if t.grader is not None and t.grader not in GRADERS:
        raise _bad(where, "grader", f"one of {sorted(GRADERS)}", t.grader)
    for field in ("template", "format", "answer"):
        text = getattr(t, field) or ""
        if any(m.group(0) in "{}" for m in _PLACEHOLDER.finditer(text)):
            raise _bad(where, field, "text whose literal braces are doubled ({{ and }})", text)


def _check_names(t: Template, values: Mapping[str, Any], where: str) -> None:
    """Every placeholder and factor names a slot or a computed value."""
    texts = {field: getattr(t, field) or "" for field in ("template", "format", "answer")}
    uses = [(field, m.group(1)) for field, text in texts.items() for m in _PLACEHOLDER.finditer(text) if m.group(1)]
    uses += [(f"factors.{k}", v) for k, v in t.factors.items() if isinstance(v, str)]
    computed = sorted(set(values) - set(t.slots))
    for field, path in uses:
        if path.split(".")[0] not in values:
            known = f"slots {list(t.slots)}" + (f" or values of {t.compute!r} {computed}" if t.compute else "")
            raise _bad(where, field, f"names of {known}", path)


def _failed(t: Template, where: str, difficulty: str | None, err: Exception) -> ConfigError:
    return ConfigError(
        f"{where}: template {t.id!r} fails to instantiate ({difficulty or 'any'} difficulty): {type(err).__name__}: {err}"
    )


def parse_template(raw: Any, where: str) -> Template:
    """One JSONL row → Template; every problem raises a one-line ConfigError naming ``where`` and the field."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {type(raw).__name__}")
    try:
        template = Template.model_validate(raw)
    except ValidationError as e:
        raise _describe(e.errors()[0], where) from None
    _check_slot_references(template, where)
    _check_fields(template, where)
    # Trial draws, one per difficulty hint, catch what only drawing shows (an empty range, a
    # failing compute function, a non-numeric factor) at load time rather than mid-run. Any
    # exception a row's draw or compute function raises is that row's error.
    try:
        values = template.fill(0)
    except Exception as err:
        raise _failed(template, where, None, err) from None
    _check_names(template, values, where)
    for difficulty in (None, *DIFFICULTIES):
        try:
            template.instantiate(0, difficulty)
        except Exception as err:
            raise _failed(template, where, difficulty, err) from None
    return template


def load_pool(path: Path | str) -> list[Template]:
    """The templates of one JSONL file (one template a line; blank lines skipped)."""
    path = Path(path)
    # Lines end at "\n" only, as editors count them (a JSON string may hold U+2028).
    lines = read_input(path, "template pool").split("\n")
    templates, seen = [], set()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}:{n}: not valid JSON: {e.msg}") from None
        t = parse_template(raw, f"{path}:{n}")
        if t.id in seen:
            raise _bad(f"{path}:{n}", "id", "an id unique in the pool", t.id)
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
    cut = lambda p: ds[min(len(ds) - 1, int(p * len(ds)))]  # noqa: E731
    return Calibration(ranges, (cut(1 / 3), cut(2 / 3)))


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
            samples = {t.id: [t.instantiate(-1 - k, DIFFICULTIES[k % 3]) for k in range(per_template)] for t in pool}
            cal = calibrate([it for items in samples.values() for it in items])
            self.calibration[capability] = cal
            for tid, items in samples.items():
                self.reach[tid] = {cal.tertile(it.factors) for it in items}

    @property
    def capabilities(self) -> tuple[str, ...]:
        """The capabilities the pools cover."""
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

"""The template library: the shipped pools, slot typing, the safe evaluator, validation
errors, determinism and difficulty tertiles."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from read_distill.config import ConfigError
from read_distill.graders import GRADERS
from read_distill.templates import (
    SHIPPED_POOLS,
    Expression,
    ExpressionError,
    TemplateSource,
    load_pool,
    load_pools,
    prompt_hash,
)
from read_distill.types import CAPABILITIES, DIFFICULTIES


@pytest.fixture(scope="module")
def templates():
    return load_pools()


@pytest.fixture(scope="module")
def source(templates):
    return TemplateSource(templates)


def test_every_capability_ships_a_small_pool_of_at_least_30(templates):
    files = sorted(p.stem for p in SHIPPED_POOLS.glob("*.jsonl"))
    assert files == sorted(CAPABILITIES)
    for path in SHIPPED_POOLS.glob("*.jsonl"):
        assert path.stat().st_size < 100_000, path
        pool = load_pool(path)
        assert len(pool) >= 30, path
        assert {t.capability for t in pool} == {path.stem}
    counts = Counter(t.capability for t in templates)
    assert set(counts) == set(CAPABILITIES)


def test_graded_templates_accept_their_own_answer(templates):
    # "#### <answer>" is what a perfect teacher writes; every grader must give it full marks.
    graded = [t for t in templates if t.answer is not None]
    assert len(graded) >= 8 * 10
    for t in graded:
        assert t.grader in GRADERS
        for seed, difficulty in ((1, "easy"), (2, "hard")):
            item = t.instantiate(seed, difficulty)
            assert item.answer, t.id
            if t.grader == "code":
                continue  # the sandbox runs a subprocess per call; checked once below
            assert GRADERS[t.grader](item.answer, f"Reasoning.\n#### {item.answer}") == 1.0, (t.id, item.answer)
    code = next(t for t in graded if t.grader == "code")
    item = code.instantiate(0, "medium")
    assert GRADERS["code"](item.answer, f"#### {item.answer}") == 1.0


def test_ungraded_templates_have_no_answer_and_no_grader(templates):
    for t in templates:
        if t.answer is None:
            item = t.instantiate(3, "medium")
            assert item.answer == "" and item.grader == ""


def test_instantiate_is_deterministic_and_seeds_vary(templates):
    for t in templates:
        a, b = t.instantiate(11, "medium"), t.instantiate(11, "medium")
        assert a == b
    distinct = {t.id: len({prompt_hash(t.instantiate(s, "medium").prompt) for s in range(8)}) for t in templates}
    # Almost every template gives several distinct prompts over a handful of seeds.
    assert sum(n >= 3 for n in distinct.values()) >= 0.9 * len(templates)


def test_items_carry_capability_template_and_factors(templates):
    for t in templates:
        item = t.instantiate(5, "hard")
        assert item.capability == t.capability and item.template == t.id
        assert item.factors and all(isinstance(v, float) for v in item.factors.values())
        assert "{" not in item.prompt or "}" in item.prompt  # no half-rendered placeholder


def test_difficulty_tertiles_are_non_degenerate_per_capability(source):
    for capability in CAPABILITIES:
        cal = source.calibration[capability]
        assert cal.cuts[0] < cal.cuts[1], capability
        items = [t.instantiate(10**6 + k, DIFFICULTIES[k % 3]) for t in source.by_capability[capability] for k in range(6)]
        shares = Counter(cal.tertile(it.factors) for it in items)
        for d in DIFFICULTIES:
            assert shares[d] >= 0.15 * len(items), (capability, dict(shares))


def test_draw_respects_the_tertile_and_is_deterministic(source):
    for capability in CAPABILITIES:
        hits = 0
        for d in DIFFICULTIES:
            for seed in range(10):
                item = source.draw(capability, d, seed)
                assert item == source.draw(capability, d, seed)
                assert item.capability == capability
                hits += source.tertile(item) == d
        assert hits >= 27, capability
        graded = source.draw(capability, "medium", 3, graded_only=True)
        assert graded.answer and graded.grader in GRADERS


def test_difficulty_hint_moves_the_driving_slots(templates):
    t = next(t for t in templates if t.id == "math.add_stock")
    easy = [t.instantiate(s, "easy").factors["digits"] for s in range(20)]
    hard = [t.instantiate(s, "hard").factors["digits"] for s in range(20)]
    assert max(easy) < min(hard)


def _write(tmp_path, rows):
    path = tmp_path / "pool.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


BASE = {
    "id": "t1",
    "capability": "math",
    "template": "What is {a} + {b}?",
    "slots": {"a": {"type": "int", "min": 1, "max": 9}, "b": {"type": "int", "min": "a", "max": "a + 5"}},
    "factors": {"size": "a + b"},
    "answer": "a + b",
    "grader": "numeric",
    "format": "End with '#### <answer>'.",
}


def test_a_valid_template_round_trips(tmp_path):
    (t,) = load_pool(_write(tmp_path, [BASE]))
    item = t.instantiate(4, "easy")
    a, b = (int(x) for x in item.prompt.split("What is ")[1].split("?")[0].split(" + "))
    assert a <= b <= a + 5 and item.answer == str(a + b) and item.prompt.endswith("End with '#### <answer>'.")
    assert item.factors == {"size": float(a + b)} and item.grader == "numeric"


def test_float_slot_computes_with_the_value_shown(tmp_path):
    row = {**BASE, "template": "Price {p}", "slots": {"p": {"type": "float", "min": 0, "max": 10, "format": "{:.1f}"}},
           "factors": {"p": "p"}, "answer": "p * 3"}
    (t,) = load_pool(_write(tmp_path, [row]))
    for seed in range(20):
        item = t.instantiate(seed)
        text = item.prompt.split()[1]
        shown = float(text)
        assert len(text.split(".")[1]) == 1
        assert abs(float(item.answer) - shown * 3) < 1e-9


def test_choice_pool_list_and_record_fields(tmp_path):
    row = {
        "id": "t2", "capability": "general_knowledge",
        "template": "{who} visits {rec.city} with {xs}; level {lvl}.",
        "slots": {
            "who": {"type": "pool", "values": ["Ana", "Ben"]},
            "rec": {"type": "pool", "values": [{"city": "Oslo", "country": "Norway"}]},
            "lvl": {"type": "choice", "values": ["low", "mid", "high"]},
            "xs": {"type": "list", "values": ["a", "b", "c"], "count": 2, "sep": "+"},
        },
        "factors": {"level": "['low', 'mid', 'high'].index(lvl)"},
        "answer": "rec['country']",
    }
    (t,) = load_pool(_write(tmp_path, [row]))
    hard = t.instantiate(1, "hard")
    assert "Oslo" in hard.prompt and "level high" in hard.prompt and hard.answer == "Norway"
    assert t.instantiate(1, "easy").factors["level"] == 0.0
    assert hard.grader == "exact"  # the default grader of a template with an answer


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"slots": {"a": {"type": "range", "min": 1, "max": 2}}}, "'slots.a.type'"),
        ({"slots": {"a": {"type": "int", "min": 1}}}, "'slots.a.max'"),
        ({"template": "What is {c}?"}, "'template'"),
        ({"grader": "fuzzy"}, "'grader'"),
        ({"answer": "__import__('os').system('true')"}, "'answer'"),
        ({"answer": "a.__class__"}, "'answer'"),
        ({"factors": {}}, "'factors'"),
        ({"factors": {"size": "zz + 1"}}, "'factors.size'"),
        ({"surprise": 1}, "'surprise'"),
        ({"id": ""}, "'id'"),
    ],
)
def test_validation_errors_name_file_line_and_field(tmp_path, change, needle):
    path = _write(tmp_path, ["", {**BASE, "id": "ok"}, {**BASE, **change}])
    with pytest.raises(ConfigError) as e:
        load_pool(path)
    message = str(e.value)
    assert f"{path}:3" in message and needle in message and "expected" in message


def test_runtime_failures_and_bad_json_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"pool.jsonl:1: not valid JSON"):
        load_pool(_write(tmp_path, ["{not json"]))
    with pytest.raises(ConfigError, match=r"pool.jsonl:1: .*fails to instantiate"):
        load_pool(_write(tmp_path, [{**BASE, "answer": "a // 0"}]))
    with pytest.raises(ConfigError, match="unique"):
        load_pool(_write(tmp_path, [BASE, BASE]))


@pytest.mark.parametrize(
    "source",
    ["open('/etc/passwd')", "(lambda: 1)()", "a.__class__", "[].__len__()", "2 ** 10000", "'x' * 10**7", "list(range(10**8))", "fmt(1, '999999')"],
)
def test_the_evaluator_refuses_unsafe_or_runaway_expressions(source):
    with pytest.raises(ExpressionError):
        Expression(source)({"a": 1})


def test_the_evaluator_computes_what_pools_need():
    env = {"xs": [3, 1, 2], "s": "level", "d": {"k": 4}}
    assert Expression("sorted(xs)[-1] + d['k']")(env) == 7
    assert Expression("[x * x for x in xs if x > 1]")(env) == [9, 4]
    assert Expression("s[::-1].upper()")(env) == "LEVEL"
    assert Expression("call('f', {'a': 1, 'b': 'x'})")(env) == "f(a=1, b='x')"
    assert Expression("lettered(['p', 'q'])")(env) == "A. p\nB. q"
    assert Expression("1 if 2 > 1 and not False else 0")(env) == 1

"""The template library: the shipped pools, row validation, slots and computed values,
difficulty tertiles, the curriculum, the template share cap and the leakage hash."""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections import Counter

import pytest

from read_distill.config import ConfigError
from read_distill.graders import GRADERS
from read_distill.template_functions import FUNCTIONS
from read_distill.templates import (
    SHIPPED_POOLS,
    TemplateShareCap,
    TemplateSource,
    curriculum,
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


# == The shipped pools ======================================================================


def test_every_capability_ships_a_small_pool_of_at_least_30(templates):
    assert sorted(p.stem for p in SHIPPED_POOLS.glob("*.jsonl")) == sorted(CAPABILITIES)
    for path in SHIPPED_POOLS.glob("*.jsonl"):
        assert path.stat().st_size < 100_000, path
        pool = load_pool(path)
        assert len(pool) >= 30, path
        assert {t.capability for t in pool} == {path.stem}


def test_every_function_serves_a_shipped_template(templates):
    used = {t.compute for t in templates}
    assert set(FUNCTIONS) <= used, sorted(set(FUNCTIONS) - used)


def test_every_template_draws_at_every_difficulty_and_grades_its_own_answer(templates):
    # "#### <answer>" is what a perfect teacher writes; every grader must give it full marks.
    graded = [t for t in templates if t.answer is not None]
    assert len(graded) >= 8 * 10
    for t in templates:
        for seed, difficulty in enumerate((None, *DIFFICULTIES)):
            item = t.instantiate(seed, difficulty)
            assert item.capability == t.capability and item.template == t.id
            assert item.factors.keys() == t.factors.keys() and all(isinstance(v, float) for v in item.factors.values())
            if t.answer is None:
                assert item.answer == "" and item.grader == "", t.id
            elif item.grader != "code":  # the sandbox runs a subprocess per call; checked once below
                assert GRADERS[item.grader](item.answer, f"Reasoning.\n#### {item.answer}") == 1.0, (t.id, item.answer)
    item = next(t for t in graded if t.graded_by == "code").instantiate(0, "medium")
    assert GRADERS["code"](item.answer, f"#### {item.answer}") == 1.0


def test_what_a_python_program_prints_is_its_reference_answer(templates):
    programs = [t for t in templates if t.template.startswith("What does this Python program print?")]
    assert len(programs) >= 10
    for t in programs:
        for seed, difficulty in enumerate(DIFFICULTIES):
            item = t.instantiate(seed, difficulty)
            code = re.search(r"```python\n(.*?)```", item.prompt, re.S).group(1)
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(code, {})  # the pool's own program, as the prompt shows it
            assert out.getvalue().strip() == item.answer, (t.id, code)


def test_instantiate_is_deterministic_and_seeds_vary(templates):
    for t in templates:
        assert t.instantiate(11, "medium") == t.instantiate(11, "medium")
    distinct = {t.id: len({prompt_hash(t.instantiate(s, "medium").prompt) for s in range(8)}) for t in templates}
    # Almost every template gives several distinct prompts over a handful of seeds.
    assert sum(n >= 3 for n in distinct.values()) >= 0.9 * len(templates)


def test_no_placeholder_is_left_in_a_prompt(templates):
    for t in templates:
        for seed, difficulty in enumerate(DIFFICULTIES):
            assert not re.search(r"\{[A-Za-z_][\w.]*\}", t.instantiate(seed, difficulty).prompt), t.id


# == Difficulty =============================================================================


def test_difficulty_tertiles_are_non_degenerate_per_capability(source):
    for capability in CAPABILITIES:
        cal = source.calibration[capability]
        assert cal.cuts[0] < cal.cuts[1], capability
        items = [
            t.instantiate(10**6 + k, DIFFICULTIES[k % 3]) for t in source.by_capability[capability] for k in range(6)
        ]
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


def test_the_difficulty_hint_moves_the_difficulty_slots(templates):
    t = next(t for t in templates if t.id == "math.add_stock")
    easy = [t.instantiate(s, "easy").factors["digits"] for s in range(20)]
    hard = [t.instantiate(s, "hard").factors["digits"] for s in range(20)]
    assert max(easy) < min(hard)


def test_curriculum_moves_from_medium_to_hard():
    stages = [curriculum(f) for f in (0.0, 0.5, 0.99, 1.0)]
    assert all(sum(p) == pytest.approx(1.0) for p in stages)
    assert stages[0][1] > stages[0][2] and stages[-1][2] > stages[-1][1]
    assert [p[2] for p in stages] == sorted(p[2] for p in stages)


# == Share cap and leakage hash =============================================================


def test_share_cap_refuses_a_template_above_its_share_of_the_window():
    cap = TemplateShareCap(window=8, cap_frac=0.25)
    assert cap.allows("math", "a")  # the first draw of an empty window
    cap.record("math", "a")
    assert not cap.allows("math", "a")  # 2 of a window judged as 4 draws is above 25 %
    for t in "bcdefg":
        cap.record("math", t)
    assert cap.allows("math", "a") and cap.allows("code", "a")  # 2 of 8; other capabilities count apart
    cap.record("math", "a")
    assert not cap.allows("math", "a")  # 3 of 8
    restored = TemplateShareCap(window=8, cap_frac=0.25)
    restored.load_state_dict(json.loads(json.dumps(cap.state_dict())))
    assert restored.state_dict() == cap.state_dict() and not restored.allows("math", "a")
    for t in "hijklmno":
        restored.record("math", t)  # the window slides past every "a"
    assert restored.allows("math", "a")


def test_leakage_hash_ignores_case_and_whitespace_only():
    assert prompt_hash("  What is 2 +\n 2? ") == prompt_hash("what IS 2 + 2?")
    assert prompt_hash("What is 2 + 2?") != prompt_hash("What is 2 + 3?")
    assert re.fullmatch(r"[0-9a-f]{64}", prompt_hash("x"))


# == Rows of a user's pool ==================================================================


def _write(tmp_path, rows):
    path = tmp_path / "pool.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


BASE = {
    "id": "t1",
    "capability": "general_knowledge",
    "template": "{who} visits {rec.city} with {bag} and {bag.0}; level {lvl}, item {pick}, size {n}.",
    "slots": {
        "who": {"type": "choice", "values": ["Ana", "Ben"]},
        "rec": {"type": "choice", "values": [{"city": "Oslo", "country": "Norway", "rank": 2}]},
        "lvl": {"type": "choice", "values": ["low", "mid", "high"]},
        "n": {"type": "int", "min": 1, "max": 3},
        "bag": {"type": "list", "values": ["a", "b", "c"], "count": "n", "sep": "+"},
        "pick": {"type": "index", "of": "bag"},
    },
    "difficulty": ["lvl"],
    "factors": {"obscurity": "rec.rank", "hops": 1},
    "answer": "{rec.country}",
    "format": "End with '#### <answer>'.",
}


def test_a_plain_data_row_reads_slots_fields_and_positions(tmp_path):
    (t,) = load_pool(_write(tmp_path, [BASE]))
    for seed in range(20):
        item = t.instantiate(seed, "hard")
        bag = re.search(r"with (\S+) and", item.prompt).group(1).split("+")
        n, pick = int(item.prompt.split("size ")[1][0]), int(item.prompt.split("item ")[1][0])
        assert len(bag) == n and len(set(bag)) == n and 0 <= pick < n
        assert f"and {bag[0]};" in item.prompt and "Oslo" in item.prompt and "level high" in item.prompt
        assert item.prompt.endswith("\n\nEnd with '#### <answer>'.")
        assert item.answer == "Norway" and item.grader == "exact"  # the default grader of a row with an answer
        assert item.factors == {"obscurity": 2.0, "hops": 1.0}
    assert t.instantiate(1, "easy").prompt.count("level low") == 1


def test_difficulty_moves_an_int_slot_to_its_third_of_the_range(tmp_path):
    row = {
        **BASE,
        "template": "{n}",
        "slots": {"n": {"type": "int", "min": 0, "max": 8}},
        "difficulty": ["n"],
        "factors": {"n": "n"},
        "answer": "{n}",
    }
    (t,) = load_pool(_write(tmp_path, [row]))
    drawn = {d: {int(t.instantiate(s, d).prompt.split("\n")[0]) for s in range(40)} for d in DIFFICULTIES}
    assert drawn == {"easy": {0, 1, 2}, "medium": {3, 4, 5}, "hard": {6, 7, 8}}
    assert {int(t.instantiate(s).prompt.split("\n")[0]) for s in range(60)} == set(range(9))


def test_a_compute_function_sees_the_float_the_prompt_shows(tmp_path, monkeypatch):
    monkeypatch.setitem(FUNCTIONS, "triple", lambda s, rng: {"answer": s["p"] * 3})
    row = {
        **BASE,
        "template": "Price {p}",
        "slots": {"p": {"type": "float", "min": 0, "max": 10, "format": "{:.1f}"}},
        "difficulty": [],
        "compute": "triple",
        "factors": {"p": "p"},
        "answer": "{answer}",
        "grader": "numeric",
    }
    (t,) = load_pool(_write(tmp_path, [row]))
    for seed in range(20):
        item = t.instantiate(seed)
        shown = item.prompt.split()[1]
        assert len(shown.split(".")[1]) == 1
        assert abs(float(item.answer) - float(shown) * 3) < 1e-9 and item.factors["p"] == float(shown)


def test_a_row_without_answer_is_ungraded(tmp_path):
    row = {k: v for k, v in BASE.items() if k != "answer"}
    (t,) = load_pool(_write(tmp_path, [row]))
    item = t.instantiate(0, "medium")
    assert t.answer is None and item.answer == "" and item.grader == ""


@pytest.mark.parametrize(
    ("change", "field", "expected"),
    [
        ({"slots": {"a": {"type": "range", "min": 1, "max": 2}}}, "slots.a.type", "one of"),
        ({"slots": {"a": {"type": "int", "min": 1}}}, "slots.a.max", "a value"),
        ({"slots": {"a": {"type": "int", "min": 1, "max": 2.5}}}, "slots.a.max", "a whole number or the name"),
        ({"slots": {"a": {"type": "int", "min": 1, "max": 2, "step": 1}}}, "slots.a.step", "one of the fields"),
        (
            {"slots": {"a": {"type": "int", "min": 1, "max": "b"}, "b": {"type": "int", "min": 1, "max": 2}}},
            "slots.a.max",
            "declared before",
        ),
        (
            {"slots": {"a": {"type": "float", "min": 1, "max": 2, "format": "{:q}"}}},
            "slots.a.format",
            "a format string",
        ),
        ({"slots": {"a": {"type": "choice", "values": []}}}, "slots.a.values", "at least one entry"),
        (
            {"slots": {"a": {"type": "index", "of": "who"}, "who": {"type": "choice", "values": [1]}}},
            "slots.a.of",
            "declared before",
        ),
        ({"template": "What is {c}?"}, "template", "names of slots"),
        ({"template": "A brace { alone"}, "template", "literal braces are doubled"),
        ({"answer": "{rec.country"}, "answer", "literal braces are doubled"),
        ({"grader": "fuzzy"}, "grader", "one of"),
        ({"difficulty": ["bag"]}, "difficulty", "names of int, float, choice or index slots"),
        ({"difficulty": ["nope"]}, "difficulty", "names of int, float, choice or index slots"),
        ({"compute": "no_such_function"}, "compute", "FUNCTIONS"),
        ({"factors": {}}, "factors", "at least one entry"),
        ({"factors": {"size": "zz"}}, "factors.size", "names of slots"),
        ({"factors": {"size": [1]}}, "factors.size", "a number or the name"),
        ({"surprise": 1}, "surprise", "one of the fields"),
        ({"id": ""}, "id", "a non-empty string"),
    ],
)
def test_a_bad_row_is_one_line_naming_file_line_field_and_expected_form(tmp_path, change, field, expected):
    path = _write(tmp_path, ["", {**BASE, "id": "ok"}, {**BASE, **change}])
    with pytest.raises(ConfigError) as e:
        load_pool(path)
    message = str(e.value)
    assert message.startswith(f"{path}:3: field {field!r}: expected ") and expected in message, message
    assert "\n" not in message


def test_a_grader_without_an_answer_is_refused(tmp_path):
    row = {k: v for k, v in BASE.items() if k != "answer"} | {"grader": "exact"}
    with pytest.raises(ConfigError, match=r"pool.jsonl:1: field 'grader': expected no grader when there is no answer"):
        load_pool(_write(tmp_path, [row]))


def test_what_only_drawing_shows_is_reported_at_load_time(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=r"pool.jsonl:1: not valid JSON"):
        load_pool(_write(tmp_path, ["{not json"]))
    with pytest.raises(ConfigError, match=r"pool.jsonl:1: expected a JSON object, got list"):
        load_pool(_write(tmp_path, ["[1, 2]"]))
    empty = {**BASE, "slots": {**BASE["slots"], "n": {"type": "int", "min": 3, "max": 1}}}
    with pytest.raises(ConfigError, match=r"pool.jsonl:1: template 't1' fails to instantiate .*empty range 3..1"):
        load_pool(_write(tmp_path, [empty]))
    monkeypatch.setitem(FUNCTIONS, "broken", lambda s, rng: {"answer": s["missing"]})
    with pytest.raises(ConfigError, match=r"fails to instantiate .*KeyError"):
        load_pool(_write(tmp_path, [{**BASE, "compute": "broken"}]))
    monkeypatch.setitem(FUNCTIONS, "clobber", lambda s, rng: {"who": "Zed"})
    with pytest.raises(ConfigError, match=r"returns \['who'\], which are slot names"):
        load_pool(_write(tmp_path, [{**BASE, "compute": "clobber"}]))
    with pytest.raises(ConfigError, match=r"pool.jsonl:2: field 'id': expected an id unique in the pool"):
        load_pool(_write(tmp_path, [BASE, BASE]))


def test_ids_are_unique_across_the_pools_of_a_directory(tmp_path):
    for name in ("a.jsonl", "b.jsonl"):
        (tmp_path / name).write_text(json.dumps(BASE) + "\n")
    with pytest.raises(ConfigError, match="also used in"):
        load_pools(tmp_path)
    with pytest.raises(ConfigError, match="no template pools"):
        load_pools(tmp_path / "missing")

"""BFCL grader on the bfcl-eval package's own data: every ground-truth call passes BFCL's
AST checker through our grader, and calls with a wrong value, a missing required
argument or a wrong function name fail. Offline: the data ships inside the package."""

from __future__ import annotations

import json

import pytest

from read_distill.bench import export_rows
from read_distill.config import ConfigError
from read_distill.graders import GRADERS
from read_distill.task_data import read_rows
from read_distill.tasks import load_card

#: Entries per category whose ground truth a call can satisfy; the rest contradict their
#: own function docs in bfcl-eval 2026.3.23 (a required parameter whose only allowed value
#: is "omitted", an unexpected parameter, a required one missing): 3 in live_simple's and
#: live_multiple's data, 2 more in live_multiple.
PASSING = {
    "simple_python": (400, 400), "multiple": (200, 200), "parallel": (200, 200), "parallel_multiple": (200, 200),
    "live_simple": (256, 258), "live_multiple": (1050, 1053), "live_parallel": (16, 16), "live_parallel_multiple": (24, 24),
}


def _first(options: list) -> object:
    """The first allowed value that is not BFCL's "may be omitted" mark ("")."""
    return next(o for o in options if o != "")


def _value(v: object) -> object:
    """A concrete argument from BFCL's possible values (dicts hold lists of possible values)."""
    if isinstance(v, dict):
        return {k: _first(o) for k, o in v.items() if o and "" not in o}
    if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
        return [_value(x) for x in v]
    return v


def _calls(ref: dict) -> list[tuple[str, dict]] | None:
    """The ground truth as concrete calls: optional arguments omitted, others at their first
    allowed value; None where a required argument has no allowed value."""
    required = {f["name"]: set(f["parameters"].get("required", [])) for f in ref["function"]}
    calls = []
    for call in ref["ground_truth"]:
        ((name, params),) = call.items()
        args = {}
        for key, options in params.items():
            if "" in options and key not in required.get(name, ()) or not options:
                continue
            if not [o for o in options if o != ""]:
                return None
            args[key] = _value(_first(options))
        calls.append((name, args))
    return calls


def _text(calls: list[tuple[str, dict]]) -> str:
    return "[" + ", ".join(f"{n}(" + ", ".join(f"{k}={v!r}" for k, v in a.items()) + ")" for n, a in calls) + "]"


def _wrong(v: object) -> object:
    """A value of the same type that no ground truth allows."""
    if isinstance(v, bool):
        return not v
    if isinstance(v, (int, float)):
        return v + 7919
    if isinstance(v, str):
        return v + " zqxj"
    if isinstance(v, list):
        return [*v, "zqxj"]
    return {**v, "zqxj": 1} if isinstance(v, dict) else None


@pytest.fixture(scope="module")
def refs() -> dict[str, list[dict]]:
    return {c: [json.loads(r["answer"]) for r in export_rows("bfcl", c)] for c in PASSING}


def test_ground_truth_calls_pass(refs):
    grade = GRADERS["bfcl"]
    for category, (passing, total) in PASSING.items():
        rows = refs[category]
        passed = sum(grade(json.dumps(ref), _text(calls)) for ref in rows if (calls := _calls(ref)) is not None)
        assert (passed, len(rows)) == (passing, total), category
        # The student's rationale before the marker is not part of the call.
        ref = rows[0]
        assert grade(json.dumps(ref), "I will call it. #### " + _text(_calls(ref))) == 1.0


def test_perturbed_calls_fail(refs):
    grade = GRADERS["bfcl"]
    tried = {"value": 0, "missing": 0, "name": 0}
    for category in PASSING:
        for ref in refs[category]:
            calls = _calls(ref)
            if calls is None or not grade(json.dumps(ref), _text(calls)):
                continue
            name, args = calls[0]
            renamed = [(name + "_x", args), *calls[1:]]
            assert grade(json.dumps(ref), _text(renamed)) == 0.0, (category, renamed)
            tried["name"] += 1
            doc = next(f for f in ref["function"] if f["name"] == name)
            required = [k for k in doc["parameters"].get("required", []) if k in args]
            if required:
                dropped = [(name, {k: v for k, v in args.items() if k != required[0]}), *calls[1:]]
                assert grade(json.dumps(ref), _text(dropped)) == 0.0, (category, dropped)
                tried["missing"] += 1
            key = next((k for k, v in args.items() if _wrong(v) is not None), None)
            if key is not None:
                changed = [(name, {**args, key: _wrong(args[key])}), *calls[1:]]
                assert grade(json.dumps(ref), _text(changed)) == 0.0, (category, changed)
                tried["value"] += 1
    assert min(tried.values()) > 2000, tried


def test_irrelevance_passes_without_a_call():
    ref = json.loads(export_rows("bfcl", "irrelevance")[0]["answer"])
    name = ref["function"][0]["name"]
    assert GRADERS["bfcl"](json.dumps(ref), "None of the functions can compute a triangle's area.") == 1.0
    assert GRADERS["bfcl"](json.dumps(ref), f"[{name}(weight=70.0, height=1.75)]") == 0.0


def test_exported_rows_load_as_task_data_and_bad_answers_are_refused(tmp_path):
    rows = export_rows("bfcl", "parallel")[:5]
    (tmp_path / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))
    (tmp_path / "card.yaml").write_text("name: calls\ndescription: d\nrequirement: {tool_use: 1}\nmetric: bfcl\ndata: {dev: dev.jsonl, test: test.jsonl}\n")
    card = load_card(str(tmp_path / "card.yaml"))
    assert [it.grader for it in read_rows(tmp_path / "dev.jsonl", card)] == ["bfcl"] * 5
    (tmp_path / "bad.jsonl").write_text(json.dumps({"prompt": "p", "answer": '{"category": "exec_simple"}', "grader": "bfcl"}) + "\n")
    with pytest.raises(ConfigError, match=r"bad.jsonl:1: answer: category: expected one of simple_python"):
        read_rows(tmp_path / "bad.jsonl", card)

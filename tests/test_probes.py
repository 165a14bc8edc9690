"""The probe suite's schedule: which items a probe scores, in which calls."""

from __future__ import annotations

from read_distill.ledger import Ledger
from read_distill.probes import probe, sequential_view
from read_distill.types import Item, Profile

N = 48


class Student:
    """Answers every ``sure`` item right and every other ``unsure`` one; records its calls."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        self.calls.append(prompts)
        return [f"#### {p}" if p.startswith("sure") or int(p.split()[1]) % 2 else "#### no" for p in prompts]


def _suite() -> dict[str, list[Item]]:
    return {
        c: [Item(prompt=f"{c} {i}", answer=f"{c} {i}", capability=c, template="t", grader="exact") for i in range(N)]
        for c in ("sure", "unsure", "other")
    }


def _probe(student: Student, ledger: Ledger, **kwargs) -> dict[str, float]:
    limits = {"sure": 8, "unsure": 8, "other": 16}
    return probe(student, _suite(), limits, lambda texts: sum(len(t.split()) for t in texts), ledger, 1, **kwargs).scores


def test_a_sequential_probe_stops_a_capability_at_its_ceiling_and_scores_the_rest_fully():
    full, staged = Student(), Student()
    ledger_full, ledger_staged = Ledger(None, 100), Ledger(None, 100)
    want = _probe(full, ledger_full, capabilities=("sure", "unsure"))
    got = _probe(staged, ledger_staged, capabilities=("sure", "unsure"), stop_width=5.0)
    assert want == got == {"sure": 100.0, "unsure": 50.0}
    scored = [p for call in staged.calls for p in call]
    assert sum(p.startswith("sure") for p in scored) == N // 3 and sum(p.startswith("unsure") for p in scored) == N
    assert ledger_staged.totals()["probe"] < ledger_full.totals()["probe"]


def test_capabilities_sharing_a_limit_are_generated_in_one_call_and_others_are_left_out():
    student = Student()
    scores = _probe(student, Ledger(None, 100), capabilities=("sure", "unsure"))
    assert list(scores) == ["sure", "unsure"]
    assert len(student.calls) == 1 and len(student.calls[0]) == 2 * N
    student = Student()
    assert list(_probe(student, Ledger(None, 100))) == ["sure", "unsure", "other"]
    assert [len(c) for c in student.calls] == [2 * N, N]


def test_the_default_probe_after_a_round_reads_the_first_third_of_each_capability_in_one_call():
    from read_distill.config import ProbeConfig

    student = Student()
    scores = _probe(student, Ledger(None, 100), capabilities=("sure", "unsure"), stop_width=ProbeConfig().stop_width)
    assert len(student.calls) == 1
    assert student.calls[0] == [f"{c} {i}" for c in ("sure", "unsure") for i in range(N // 3)]
    assert scores == {"sure": 100.0, "unsure": 50.0}


class Uneven(Student):
    """Right on the first 20 ``sure`` items and on every third ``unsure`` one: the first
    third of a capability's items says something else than all of them."""

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        self.calls.append(prompts)
        right = {"sure": lambda i: i < 20, "unsure": lambda i: i % 3 == 0, "other": lambda i: i % 2 == 0}
        return [f"#### {p}" if right[p.split()[0]](int(p.split()[1])) else "#### no" for p in prompts]


def test_a_sequential_view_of_a_full_probe_is_what_the_sequential_probe_measures():
    limits = {"sure": 8, "unsure": 8, "other": 16}
    count = lambda texts: sum(len(t.split()) for t in texts)  # noqa: E731
    full = probe(Uneven(), _suite(), limits, count, Ledger(None, 100), 0, seed=3)
    for stop_width in (0.0, 5.0, 100.0):
        staged = probe(Uneven(), _suite(), limits, count, Ledger(None, 100), 1, seed=3, capabilities=("sure", "unsure"), stop_width=stop_width)
        view = sequential_view(full, ("unsure", "sure"), stop_width, seed=3)
        assert view.scores == staged.scores and view.intervals == staged.intervals
    # The first third decides where it is tight (sure: 16 of 16 right) and differs from all items.
    assert sequential_view(full, ("sure",), 100.0, seed=3).scores["sure"] == 100.0 != full.scores["sure"]
    # Without item scores (a simulated world's profile) a capability keeps its measurement.
    bare = Profile(scores={"sure": 70.0, "other": 10.0}, intervals={"sure": (60.0, 80.0)})
    assert sequential_view(bare, ("sure",), 100.0) == Profile(scores={"sure": 70.0}, intervals={"sure": (60.0, 80.0)})

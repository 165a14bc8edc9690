"""The probe suite's schedule: which items a probe scores, in which calls."""

from __future__ import annotations

from read_distill.ledger import Ledger
from read_distill.probes import probe
from read_distill.types import Item

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

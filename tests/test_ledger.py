"""Ledger: billable rules per unit, refusal to overspend, totals derived from the file."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from read_distill.ledger import BudgetExceeded, Ledger, round_quota


def test_billable_rules_per_unit():
    paper = Ledger(None, 100, "train")
    assert paper.billable("train", 10, 5) == 5
    assert paper.billable("teacher_gen", 10, 5) == 0
    ref = Ledger(None, 100, "gen+train")
    assert ref.billable("train", 10, 5) == 15
    assert ref.billable("teacher_gen", 10, 5) == 5
    assert ref.billable("teacher_gen", 10, 5, cached=True) == 0
    for ledger in (paper, ref):
        assert ledger.billable("probe", 10, 5) == 0 and ledger.billable("eval", 10, 5) == 0


def test_refuses_overspend_and_keeps_file_consistent(tmp_path):
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger(path, 100)
    ledger.charge(0, "train", 80, 60)
    with pytest.raises(BudgetExceeded, match="remaining budget of 40"):
        ledger.charge(0, "train", 50, 41)
    ledger.charge(0, "probe", 1000, 0)
    ledger.charge(1, "train", 40, 40)
    assert ledger.remaining == 0
    ledger.close()
    again = Ledger(path, 100)
    assert again.spent == 100 and again.totals()["probe"] == 1000 and again.spent_in_round(1) == 40


def test_truncate_is_atomic_and_recomputes(tmp_path):
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger(path, 100)
    for r in range(4):
        ledger.charge(r, "train", 10, 10)
    ledger.truncate(lambda e: e.round < 2)
    assert ledger.spent == 20 and Ledger(path, 100).spent == 20


def test_round_quota_last_round_takes_the_rest():
    assert round_quota(100, 3) == 33
    assert round_quota(34, 1) == 34
    assert round_quota(0, 5) == 0


@settings(max_examples=200, deadline=None)
@given(
    budget=st.integers(1, 10_000),
    rounds=st.integers(1, 25),
    unit=st.sampled_from(["train", "gen+train"]),
    sizes=st.lists(st.tuples(st.integers(0, 300), st.integers(0, 300)), min_size=1, max_size=60),
)
def test_property_never_exceeds_budget(budget, rounds, unit, sizes):
    """Whatever the charges, a caller that cuts to the quota never exceeds B (and charge()
    refuses if it tries)."""
    ledger = Ledger(None, budget, unit)
    k = 0
    for t in range(rounds):
        quota = round_quota(ledger.remaining, rounds - t)
        spent = 0
        while spent < quota and k < 10 * len(sizes):
            p, c = sizes[k % len(sizes)]
            k += 1
            want = ledger.billable("train", p, c)
            take = min(want, quota - spent)
            ledger.charge(t, "train", max(p + c, take), take)
            spent += take
            if want == 0:
                break
        with pytest.raises(BudgetExceeded):
            ledger.charge(t, "train", ledger.remaining + 1, ledger.remaining + 1)
        assert ledger.spent <= budget
    assert ledger.spent <= budget

"""Rewards and requirement vectors with worked examples (docs/method.md §3, §6)."""

from __future__ import annotations

import pytest

from read_distill.config import ConfigError
from read_distill.rewards import essential, gain, reward, spillover
from read_distill.tasks import TaskCard, card_requirement, load_card, requirement_vector

CAPS = ("a", "b", "c", "d")


def test_worked_reward_example():
    r = (0.6, 0.3, 0.1, 0.0)
    before = (10.0, 50.0, 30.0, 40.0)
    after = (14.0, 48.0, 29.0, 10.0)
    # gain = 0.6*4 + 0.3*(-2) + 0.1*(-1) + 0 = 1.7
    assert gain(r, before, after) == pytest.approx(1.7)
    # top-3 = a, b, c; spill = 0.3*2 + 0.1*1 = 0.7 (d dropped 30 but the task does not need it)
    assert spillover(r, before, after, 3) == pytest.approx(0.7)
    R, g, s, cost = reward(r, before, after, cost_tokens=10_000, beta=0.5, lambda_per_token=1e-5, top_k=3)
    assert cost == pytest.approx(0.1)
    assert R == pytest.approx(1.7 - 0.35 - 0.1)


def test_essential_ignores_zero_weights_and_breaks_ties_by_order():
    assert essential((0.5, 0.0, 0.5, 0.0), 3) == [0, 2]
    assert essential((0.25, 0.25, 0.25, 0.25), 2) == [0, 1]


def test_manual_requirement_is_normalised_missing_are_zero():
    assert requirement_vector(CAPS, {"a": 3, "c": 1}) == (0.75, 0.0, 0.25, 0.0)


@pytest.mark.parametrize(
    "manual, needle",
    [({"a": 0, "b": 0}, "all zero"), ({"zz": 1}, "unknown capabilities"), ({"a": -1, "b": 2}, ">= 0")],
)
def test_bad_requirements_are_errors(manual, needle):
    with pytest.raises(ConfigError, match=needle):
        requirement_vector(CAPS, manual)


def test_fallback_is_smoothed_one_hot():
    r = requirement_vector(CAPS, None, declared="b", epsilon=0.2)
    assert r == pytest.approx((0.05, 0.85, 0.05, 0.05))
    assert sum(r) == pytest.approx(1.0)


def test_config_override_beats_card():
    card = TaskCard(name="t", description="d", requirement={"a": 1})
    assert card_requirement(card, CAPS, {"d": 2}) == (0, 0, 0, 1.0)
    assert card_requirement(card, CAPS) == (1.0, 0, 0, 0)


def test_card_errors_name_file_and_field(tmp_path):
    f = tmp_path / "card.yaml"
    f.write_text("name: x\ndescription: y\nrequirment: {a: 1}\n")
    with pytest.raises(ConfigError, match=r"card\.yaml: unknown key 'requirment'"):
        load_card(str(f))
    with pytest.raises(ConfigError, match="unknown task card"):
        load_card("no_such_card")

"""The tests compare uses: Holm's step-down, and paired against Welch over matched seeds."""

import math

import numpy as np
import pytest

from read_distill.experiments.statistics import holm, paired, vs_read_cells, welch


def test_holm_steps_down_and_stays_monotone():
    # Sorted 0.01, 0.03, 0.04 in a family of three: 3*0.01, 2*0.03, max(0.06, 1*0.04).
    assert holm([0.01, 0.04, 0.03, math.nan])[:3] == pytest.approx([0.03, 0.06, 0.06])
    assert math.isnan(holm([0.01, 0.04, 0.03, math.nan])[3])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_paired_sees_a_small_consistent_gain_that_welch_misses():
    # Seeds differ a lot from one another, and the method adds 1 point on each: the design
    # the comparison runs (every policy on the same seeds).
    rng = np.random.default_rng(0)
    base = rng.normal(50.0, 10.0, size=6)
    better = base + 1.0 + rng.normal(0.0, 0.2, size=6)
    p, w = paired(list(better), list(base)), welch(list(better), list(base))
    assert p["p"] < 0.001 < 0.5 < w["p"]
    assert p["ci95"][0] < p["diff"] < p["ci95"][1] and p["ci95"][0] > 0 > w["ci95"][0]
    assert p["diff"] == pytest.approx(w["diff"])


def test_undefined_tests_are_nan_not_errors():
    assert math.isnan(welch([1.0], [2.0, 3.0])["p"]) and math.isnan(paired([1.0, 2.0], [0.0, 1.0])["p"])
    with pytest.raises(ValueError, match="matched seeds"):
        paired([1.0, 2.0], [1.0])


def test_cells_say_dash_where_a_test_is_undefined():
    one_seed = {"paired": paired([70.0], [40.0]), "welch": welch([70.0], [40.0])}
    one_seed["paired"]["p_holm"] = one_seed["welch"]["p_holm"] = math.nan
    assert vs_read_cells(one_seed) == ["+30.00", "— (—)", "— (—)"]

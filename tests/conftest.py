"""Shared fixtures: tests run on small budgets and temporary run dirs."""

from __future__ import annotations

import pytest

from read_distill.sim.environments import paper_world


@pytest.fixture
def world():
    """The paper-dynamics simulated world (noisy probes)."""
    return paper_world()

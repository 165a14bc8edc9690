"""Shared fixtures: tests run on small budgets and temporary run dirs."""

from __future__ import annotations

import pytest

from read_distill.sim.environments import paper_world


@pytest.fixture
def world():
    """The paper-dynamics simulated world (noisy probes)."""
    return paper_world()


@pytest.fixture(autouse=True)
def _one_torch_thread(request):
    """`tiny` tests run torch on one thread: the machine's cores are shared, small matrices
    gain nothing from more, and one thread keeps float sums in a fixed order."""
    if request.node.get_closest_marker("tiny") is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

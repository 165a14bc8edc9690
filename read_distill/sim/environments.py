"""Built-in simulated environments, by name.

The ``paper_*`` family uses the paper's Figure-1 transfer matrices (20M and 150M tokens,
Llama-3.3-70B → Llama-3.1-8B) with the paper's student profile as S0 and the teacher's
as the ceiling; the benchmark suite (``SUITE``) varies the dynamics on purpose.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from read_distill.sim.dynamics import LinearUtility, TransferDynamics
from read_distill.sim.world import SimWorld
from read_distill.types import CAPABILITIES

PAPER_FIGURES = Path(__file__).parent / "paper_figures.json"

#: Requirement of the paper-family task: a tool call whose argument needs arithmetic.
PAPER_TASK = {"math": 0.5, "tool_use": 0.3, "reasoning": 0.2}


@cache
def paper_figures() -> dict[str, Any]:
    """The paper's published matrices, reordered to ``CAPABILITIES``."""
    raw = json.loads(PAPER_FIGURES.read_text())
    order = [raw["capabilities"].index(c) for c in CAPABILITIES]

    def matrix(key: str) -> list[list[float]]:
        m = np.asarray(raw[key])[np.ix_(order, order)]
        return m.tolist()

    return {
        "transfer_20M_tokens": matrix("transfer_20M_tokens"),
        "transfer_150M_tokens": matrix("transfer_150M_tokens"),
        "student_profile": [raw["student_profile"][c] for c in CAPABILITIES],
        "teacher_profile": [raw["teacher_profile"][c] for c in CAPABILITIES],
    }


def paper_world(requirement: dict[str, float] | None = None, probe_noise_std: float = 0.5, noise_std: float = 0.2, name: str = "paper") -> SimWorld:
    """The paper's Figure-1 dynamics with a linear task utility U = r·s."""
    fig = paper_figures()
    req = requirement or PAPER_TASK
    r = np.array([req.get(c, 0.0) for c in CAPABILITIES])
    r = r / r.sum()
    dynamics = TransferDynamics(
        fig["transfer_20M_tokens"],
        fig["transfer_150M_tokens"],
        20e6,
        150e6,
        ceiling=fig["teacher_profile"],
        saturation=0.0,
        noise_std=noise_std,
    )
    return SimWorld(CAPABILITIES, fig["student_profile"], dynamics, LinearUtility(r), r, probe_noise_std, name=name)


#: name -> (builder, default budget in tokens). The suite's extra environments register here too.
ENVIRONMENTS: dict[str, Any] = {
    "paper_20m": (lambda: paper_world(name="paper_20m"), 20_000_000),
    "paper_150m": (lambda: paper_world(name="paper_150m"), 150_000_000),
}


def make_world(config) -> SimWorld:
    """The environment named by ``config.world.sim_environment`` (runner entry point)."""
    name = config.world.sim_environment
    if name not in ENVIRONMENTS:
        from read_distill.config import ConfigError

        raise ConfigError(f"world.sim_environment: unknown environment {name!r}; expected one of {sorted(ENVIRONMENTS)}")
    world = ENVIRONMENTS[name][0]()
    return world.with_example_tokens(config.budget.total_tokens, config.run.rounds)

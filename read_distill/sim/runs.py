"""A run of a simulated world through the real round loop, and what it produced.

Both the policies (``run``) and the oracle's replay (``search.oracle``) come through
here, so every utility the benchmark compares comes from the same code path.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from read_distill.config import Config
from read_distill.runner import run as run_loop
from read_distill.sim.world import SimWorld


@dataclass
class SimResult:
    """What a simulated run produced."""

    initial_utility: float
    final_utility: float
    #: One allocation per round, in capability order.
    allocations: list[list[float]]
    #: The probed profile before round 0 and after every round, in capability order.
    profiles: list[list[float]]
    summary: dict[str, Any] = field(default_factory=dict)
    #: For the oracle: which search won ("fixed" or "lookahead").
    method: str = ""


def sim_config(world: SimWorld, policy: str, budget_tokens: int, rounds: int, seed: int, **options: Any) -> Config:
    """The Config of a simulated run (what ``run`` executes)."""
    return Config.model_validate(
        {
            "capabilities": list(world.capabilities),
            "run": {"name": world.name, "seed": seed, "rounds": rounds},
            "budget": {"total_tokens": int(budget_tokens)},
            "policy": {"name": policy, **options},
            "world": {"kind": "sim"},
        }
    )


def run(
    world: SimWorld,
    policy: str = "read",
    budget_tokens: int = 20_000_000,
    rounds: int = 20,
    seed: int = 0,
    run_dir: str | Path | None = None,
    **policy_options: Any,
) -> SimResult:
    """Run ``policy`` on ``world`` through the real round loop and return the result.

    The run directory is a temporary one unless ``run_dir`` is given.
    """
    config = sim_config(world, policy, budget_tokens, rounds, seed, **policy_options)
    sized = world.with_example_tokens(int(budget_tokens), rounds)
    if run_dir is None:
        with tempfile.TemporaryDirectory(prefix="read-sim-") as tmp:
            summary = run_loop(config, Path(tmp) / "run", world=sized, quiet=True)
    else:
        summary = run_loop(config, Path(run_dir), world=sized, quiet=True)
    caps = world.capabilities
    return SimResult(
        initial_utility=summary["initial_utility"],
        final_utility=summary["final_utility"],
        allocations=[[a[c] for c in caps] for a in summary["allocations"]],
        profiles=_carried([[p.get(c) for c in caps] for p in summary["profiles"]]),
        summary=summary,
    )


def _carried(profiles: list[list[float | None]]) -> list[list[float]]:
    """Per-round profiles with each capability a round did not probe at its last probed score."""
    out: list[list[float]] = []
    for p in profiles:
        out.append([x if x is not None else out[-1][i] for i, x in enumerate(p)])
    return out

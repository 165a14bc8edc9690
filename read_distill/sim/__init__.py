"""Simulated worlds with known dynamics, and their oracle.

Public, stable entry points (outside checks call them):

* ``SimWorld(capabilities, initial_profile, dynamics, utility, requirement, probe_noise_std=0.0)``
* ``TransferDynamics`` (and any ``dynamics(profile, spend_tokens, spent_tokens, rng)``)
* ``run(world, policy="read", budget_tokens=..., rounds=20, seed=0, **policy_options)``
* ``oracle(world, budget_tokens, rounds)``

Both ``run`` and ``oracle`` go through the real round loop (``runner.run``), in a
temporary run directory unless ``run_dir`` is given. The package only re-exports:
``world`` and ``dynamics`` define the world, ``runs`` runs it, ``search`` finds the oracle.
"""

from __future__ import annotations

from read_distill.sim.dynamics import LinearUtility, TransferDynamics
from read_distill.sim.runs import SimResult, run, sim_config
from read_distill.sim.search import oracle
from read_distill.sim.world import SimWorld

__all__ = ["SimWorld", "TransferDynamics", "LinearUtility", "SimResult", "run", "oracle", "sim_config"]

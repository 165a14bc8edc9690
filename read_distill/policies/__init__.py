"""Allocation policies, chosen by short name from ``POLICIES``.

Importing this package is cheap (no numpy, no policy module): the config validates
``policy.name`` against ``POLICIES`` before anything else is loaded.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Annotations only: config.py imports POLICIES from here to validate policy.name.
    from read_distill.config import PolicyConfig
    from read_distill.policies.base import Policy

#: name -> "module:constructor", the constructor called as (capabilities, requirement,
#: policy config). The learning policies are classes; the fixed schedules are one
#: StaticPolicy each, built by a function that gives it its pick. Imported on first use,
#: so a run pays only for its own policy.
POLICIES: dict[str, str] = {
    "read": "read_distill.policies.read:ReadPolicy",
    "greedy": "read_distill.policies.read:GreedyPolicy",
    "uniform": "read_distill.policies.static:uniform",
    "task_static": "read_distill.policies.static:task_static",
    "one_hot": "read_distill.policies.static:one_hot",
    "fixed": "read_distill.policies.static:fixed",
    "random": "read_distill.policies.static:random",
    "schedule": "read_distill.policies.static:schedule",
    "exp3": "read_distill.policies.exp3:Exp3Policy",
    "grid": "read_distill.policies.grid:GridPolicy",
}


def make_policy(config: PolicyConfig, capabilities: tuple[str, ...], requirement: tuple[float, ...]) -> Policy:
    """Build the policy ``config.name`` for a run over ``capabilities`` with requirement r."""
    # A validated config has a known name; copies made with model_copy are not validated.
    if config.name not in POLICIES:
        raise ValueError(f"unknown policy {config.name!r}; expected one of {', '.join(POLICIES)}")
    module, attr = POLICIES[config.name].split(":")
    constructor = getattr(importlib.import_module(module), attr)
    return constructor(tuple(capabilities), tuple(float(x) for x in requirement), config)

"""Allocation policies, chosen by short name from ``POLICIES``."""

from __future__ import annotations

import importlib

from read_distill.config import PolicyConfig
from read_distill.policies.base import Policy

#: name -> "module:class". Imported on first use so a run pays only for its own policy.
POLICIES: dict[str, str] = {
    "read": "read_distill.policies.read:ReadPolicy",
    "greedy": "read_distill.policies.read:GreedyPolicy",
    "uniform": "read_distill.policies.static:UniformPolicy",
    "task_static": "read_distill.policies.static:TaskStaticPolicy",
    "one_hot": "read_distill.policies.static:OneHotPolicy",
    "fixed": "read_distill.policies.static:FixedPolicy",
    "random": "read_distill.policies.static:RandomPolicy",
    "schedule": "read_distill.policies.static:SchedulePolicy",
    "exp3": "read_distill.policies.exp3:Exp3Policy",
    "grid": "read_distill.policies.grid:GridPolicy",
}


def make_policy(config: PolicyConfig, capabilities: tuple[str, ...], requirement: tuple[float, ...]) -> Policy:
    """Build the policy ``config.name`` for a run over ``capabilities`` with requirement r."""
    if config.name not in POLICIES:
        raise ValueError(f"unknown policy {config.name!r}; expected one of {sorted(POLICIES)}")
    module, attr = POLICIES[config.name].split(":")
    cls = getattr(importlib.import_module(module), attr)
    return cls(tuple(capabilities), tuple(float(x) for x in requirement), config)

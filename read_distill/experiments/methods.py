"""What ``compare`` can run: a method is a named bundle of config overrides.

Overrides use the command line's ``key=value`` syntax and apply on top of the
comparison's config, so every method runs at the same budget with the same teacher,
student and prompt source (docs/method.md §7). Add a method by adding an entry.
"""

from __future__ import annotations

from read_distill.config import Config, ConfigError, with_overrides
from read_distill.policies import POLICIES

#: The single-capability baselines: the whole budget on the task's top capability
#: (``one_hot``) with one signal and objective each: the paper's six (its Table 1) and
#: on-policy distillation.
SINGLE_CAPABILITY: dict[str, tuple[str, ...]] = {
    **{
        f"{signal}_{objective}": ("policy.name=one_hot", f"train.signal={signal}", f"train.objective={objective}")
        for signal in ("resp", "cot", "logit")
        for objective in ("sft", "kd")
    },
    # On-policy distillation (GKD with lambda = 1): the student samples, the teacher scores
    # every sampled token, the loss is reverse KL.
    "on_policy": ("policy.name=one_hot", "train.signal=on_policy", "train.objective=reverse_kl"),
}

METHODS: dict[str, tuple[str, ...]] = {
    # Every allocation policy as it is configured.
    **{name: (f"policy.name={name}",) for name in POLICIES},
    **SINGLE_CAPABILITY,
    # Ablations of read (docs/method.md §7). Without adaptation, read would keep its first
    # round's allocation, which is r: that is `task_static`, so it has no entry of its own.
    "read_no_identification": ("policy.name=read", "task.requirement=uniform"),
    # Without interaction awareness: no spillover term, in the logged reward nor in the one
    # read scores candidates by.
    "read_no_interaction": ("policy.name=read", "reward.beta=0", "policy.beta=0"),
    # read allocating on-policy distillation instead of teacher text.
    "read_on_policy": ("policy.name=read", "train.signal=on_policy", "train.objective=reverse_kl"),
}


#: ``only_<capability>``: the whole budget on that capability every round (the transfer
#: study's one-hot distillation; any capability of the run, whatever the task needs).
ONLY = "only_"


def method_overrides(method: str) -> tuple[str, ...]:
    """The config overrides of ``method``: an entry of ``METHODS`` or ``only_<capability>``."""
    if method in METHODS:
        return METHODS[method]
    if method.startswith(ONLY) and len(method) > len(ONLY):
        return ("policy.name=fixed", f"policy.weights={{{method[len(ONLY):]}: 1}}")
    raise ConfigError(f"method {method!r}: unknown; expected one of {', '.join(METHODS)}, or {ONLY}<capability>")


def method_config(config: Config, method: str, seed: int, budget: int | None = None) -> Config:
    """``config`` with ``method``'s overrides, ``seed`` and (if given) the budget."""
    extra = [f"run.seed={seed}"] + ([f"budget.total_tokens={budget}"] if budget is not None else [])
    return with_overrides(config, [*method_overrides(method), *extra], f"method {method}")

"""The probe suite: a fixed set of held-out items per capability → a Profile.

A capability's score is graded accuracy in [0, 100] where the item names a grader, and
for an empty grader name 100 × the geometric-mean per-token probability of the reference answer (the
log-prob fallback). Each score comes with a bootstrap 95 % interval over items; its
width enters the policy context so the bandit can discount noisy probes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from read_distill.backends.base import Student
from read_distill.graders import GRADERS
from read_distill.graders.mc import PICKED_BY_LOGPROB, pick
from read_distill.ledger import Ledger
from read_distill.types import Item, Profile

#: Bootstrap resamples per interval.
BOOTSTRAP = 1000


def bootstrap_interval(values: Sequence[float], rng: np.random.Generator, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values``."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return (0.0, 0.0)
    means = v[rng.integers(0, len(v), size=(BOOTSTRAP, len(v)))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def item_scores(
    student: Student,
    items: list[Item],
    max_new_tokens: int,
    count_tokens: Callable[[list[str]], int],
    ledger: Ledger,
    round: int,
    phase: str,
    count_prompt_tokens: Callable[[list[str]], int] | None = None,
) -> list[float]:
    """Per-item scores in [0, 100]; generation and scoring tokens charged to ``phase``.

    Prompts are counted by ``count_prompt_tokens`` (default ``count_tokens``): under a chat
    template the student reads each prompt with its template's framing, which it counts.

    An item with a grader name is graded by it (an unknown name is a KeyError, never a
    silent switch to log-prob scoring); an empty name selects the log-prob fallback.
    Multiple-choice items (``PICKED_BY_LOGPROB``) are graded on the student's pick among
    their choices, by ``student.score``, instead of on a generation.
    """
    picked = [i for i, it in enumerate(items) if it.grader in PICKED_BY_LOGPROB]
    graded = [i for i, it in enumerate(items) if it.grader and it.grader not in PICKED_BY_LOGPROB]
    scored = [i for i, it in enumerate(items) if not it.grader]
    out = [0.0] * len(items)
    count_prompts = count_prompt_tokens or count_tokens
    if picked:
        picks, prompts, choices = pick([items[i].prompt for i in picked], [items[i].answer for i in picked], student.score)
        for i, p in zip(picked, picks, strict=True):
            out[i] = 100.0 * GRADERS[items[i].grader](items[i].answer, p)
        ledger.charge(round, phase, count_prompts(prompts) + count_tokens(choices))
    if graded:
        prompts = [items[i].prompt for i in graded]
        completions = student.generate(prompts, max_new_tokens)
        for i, c in zip(graded, completions, strict=True):
            out[i] = 100.0 * GRADERS[items[i].grader](items[i].answer, c)
        ledger.charge(round, phase, count_prompts(prompts) + count_tokens(completions))
    if scored:
        prompts = [items[i].prompt for i in scored]
        refs = [items[i].answer for i in scored]
        for i, lp in zip(scored, student.score(prompts, refs), strict=True):
            out[i] = 100.0 * float(np.exp(lp))
        ledger.charge(round, phase, count_prompts(prompts) + count_tokens(refs))
    return out


#: Stages of a sequential probe: a capability is probed a third of its items at a time.
STAGES = 3


def _stage(n: int, k: int, stages: int) -> slice:
    """Stage ``k``'s items of a capability with ``n``: bounds round up, so the first stage
    holds an item whenever the suite does."""
    return slice(-(-k * n // stages), -(-(k + 1) * n // stages))


def _wide(values: list[float], stop_width: float) -> bool:
    """Whether the normal 95 % interval of the mean of ``values`` is wider than ``stop_width``."""
    return 2 * 1.96 * float(np.std(values)) / np.sqrt(len(values)) > stop_width


def _profile(values: dict[str, list[float]], seed: int) -> Profile:
    """Mean score, bootstrap interval and item scores per capability of ``values``."""
    # Intervals are drawn in suite order whatever the grouping, so a profile does not
    # depend on how its capabilities were batched.
    rng = np.random.default_rng([seed, 4099])
    return Profile(
        scores={c: float(np.mean(v)) for c, v in values.items()},
        intervals={c: bootstrap_interval(v, rng) for c, v in values.items()},
        items={c: tuple(v) for c, v in values.items()},
    )


def probe(
    student: Student,
    suite: dict[str, list[Item]],
    max_new_tokens: dict[str, int],
    count_tokens: Callable[[list[str]], int],
    ledger: Ledger,
    round: int,
    seed: int = 0,
    capabilities: Sequence[str] | None = None,
    stop_width: float = 0.0,
    count_prompt_tokens: Callable[[list[str]], int] | None = None,
) -> Profile:
    """Score ``student`` on the probe items of ``capabilities`` (default: the whole suite),
    charged as ``probe``.

    With ``stop_width > 0`` the probe is sequential: each capability is scored on a third
    of its items at a time, and stops once its 95 % interval is at most ``stop_width``
    points wide (at 100, the widest an interval can be, after the first third; at 5, a
    capability at its floor or ceiling needs few items to say so and one in between gets
    all of them). Capabilities that share a generation limit are scored in
    one call per stage, so the student's batches fill across capabilities.
    """
    names = list(suite) if capabilities is None else [c for c in suite if c in set(capabilities)]
    stages = STAGES if stop_width > 0 else 1
    values: dict[str, list[float]] = {c: [] for c in names}
    todo = list(names)
    for k in range(stages):
        by_limit: dict[int, list[str]] = {}
        for c in todo:
            by_limit.setdefault(max_new_tokens[c], []).append(c)
        for limit, group in by_limit.items():
            part = {c: suite[c][_stage(len(suite[c]), k, stages)] for c in group}
            flat = item_scores(
                student, [it for c in group for it in part[c]], limit, count_tokens, ledger, round, "probe", count_prompt_tokens
            )
            for c in group:
                values[c] += flat[: len(part[c])]
                flat = flat[len(part[c]) :]
        todo = [c for c in todo if _wide(values[c], stop_width)]
    return _profile(values, seed)


def sequential_view(full: Profile, capabilities: Sequence[str], stop_width: float, seed: int = 0) -> Profile:
    """What a sequential :func:`probe` of ``capabilities`` scores, read off ``full``, a probe
    of every item of the same student: the same items in the same stages, with no
    generation. A capability ``full`` holds no items of (a simulated world's) keeps its
    score and interval."""
    names = [c for c in full.scores if c in set(capabilities)]
    stages = STAGES if stop_width > 0 else 1
    values: dict[str, list[float]] = {}
    for c in (c for c in names if c in full.items):
        items = list(full.items[c])
        values[c] = items[_stage(len(items), 0, stages)]
        for k in range(1, stages):
            if not _wide(values[c], stop_width):
                break
            values[c] += items[_stage(len(items), k, stages)]
    view = _profile(values, seed)
    kept = [c for c in names if c not in values]
    return Profile(
        scores={**{c: full.scores[c] for c in kept}, **view.scores},
        intervals={**{c: full.intervals[c] for c in kept if c in full.intervals}, **view.intervals},
        items=view.items,
    )

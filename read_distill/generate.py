"""Allocation → prompts → teacher → Examples, filling one round's billable quota.

Capabilities are drawn so that the realised token shares track the allocation: each
next prompt goes to the capability furthest below its target share (a deterministic,
low-discrepancy version of "sample a capability from w"). Teacher calls are batched and
charged to the ledger as they happen; the caller trains on what comes back.
"""

from __future__ import annotations

import numpy as np

from read_distill.backends.base import World
from read_distill.config import ConfigError, GenerationConfig
from read_distill.ledger import Ledger
from read_distill.teachers import Teachers
from read_distill.templates import TemplateShareCap, curriculum, prompt_hash
from read_distill.types import DIFFICULTIES, Allocation, Example, Item

#: Redraws allowed for one prompt before the share cap or leakage filter gives up.
MAX_REDRAWS = 50


def example_cost(ledger: Ledger, prompt_tokens: int, completion_tokens: int, cached: bool) -> int:
    """Billable tokens an example costs in total: its generation plus training on it."""
    return ledger.billable("teacher_gen", prompt_tokens, completion_tokens, cached) + ledger.billable(
        "train", prompt_tokens, completion_tokens
    )


#: The reference limits for real models (docs/method.md §4); other capabilities get ``DEFAULT_MAX_NEW_TOKENS``.
REFERENCE_MAX_NEW_TOKENS: dict[str, int] = {"math": 512, "code": 512, "long_context": 1024}
DEFAULT_MAX_NEW_TOKENS = 256


def resolve_max_new_tokens(config: GenerationConfig, capabilities: tuple[str, ...], defaults: dict[str, int]) -> dict[str, int]:
    """Per-capability generation limits: the config's overrides, else the world's ``defaults``,
    else ``DEFAULT_MAX_NEW_TOKENS``. Overrides for capabilities the run lacks are errors."""
    unknown = sorted(set(config.max_new_tokens) - set(capabilities))
    if unknown:
        raise ConfigError(f"generation.max_new_tokens: unknown capabilities {unknown}; expected some of {list(capabilities)}")
    return {c: config.max_new_tokens.get(c, defaults.get(c, DEFAULT_MAX_NEW_TOKENS)) for c in capabilities}


class Generator:
    """Draws leakage-free, share-capped prompts for a run; one instance per run.

    The leakage filter fails closed: a prompt whose hash matches a probe or task prompt is
    redrawn, and when ``MAX_REDRAWS`` draws all collide the example is dropped, never
    trained on. Collisions and drops are counted for the round's record.
    """

    def __init__(self, world: World, config: GenerationConfig, seed: int) -> None:
        self.world = world
        self.config = config
        self.seed = seed
        self.evaluation_hashes = world.evaluation_hashes()
        self.cap = TemplateShareCap(config.template_window, config.template_cap_frac)
        self._leaks = {"collisions": 0, "dropped": 0}

    def drain_leak_counts(self) -> dict[str, int]:
        """Draws that matched an evaluation prompt, and examples dropped for it, since the last drain."""
        counts, self._leaks = self._leaks, {"collisions": 0, "dropped": 0}
        return counts

    def draw(self, capability: str, spent_frac: float, rng: np.random.Generator) -> tuple[Item, str] | None:
        """One prompt of ``capability`` at a curriculum-sampled difficulty; None when every
        draw matched an evaluation prompt. When the share cap refuses every clean draw, the
        last clean one is used (the cap is a preference; the filter is not)."""
        difficulty = DIFFICULTIES[int(rng.choice(3, p=curriculum(spent_frac)))]
        item = None
        for _ in range(MAX_REDRAWS):
            candidate = self.world.draw(capability, difficulty, int(rng.integers(2**62)))
            if prompt_hash(candidate.prompt) in self.evaluation_hashes:
                self._leaks["collisions"] += 1
                continue
            item = candidate
            if self.cap.allows(capability, item.template):
                break
        if item is None:
            self._leaks["dropped"] += 1
            return None
        self.cap.record(capability, item.template)
        return item, difficulty

    def generate_round(
        self,
        teachers: Teachers,
        allocation: Allocation,
        quota_tokens: int,
        ledger: Ledger,
        round: int,
        spent_frac: float,
        rng: np.random.Generator,
    ) -> list[Example]:
        """Examples whose total billable cost just reaches ``quota_tokens``, each prompt
        answered by its capability's teacher."""
        capabilities = self.world.capabilities
        w = np.asarray(allocation, dtype=float)
        cost_per_capability = np.zeros(len(capabilities))
        drawn_per_capability = np.zeros(len(capabilities))
        # Running estimate of an example's cost per capability, to size teacher batches and
        # plan shares. It starts equal for all capabilities (a guess that differs per
        # capability would skew the first batch's shares) and learns from what comes back.
        estimate = np.full(len(capabilities), float(np.mean(list(self.world.max_new_tokens.values()))) / 2 + 1.0)
        examples: list[Example] = []
        total = 0
        # The teacher is called once per generation limit in a batch: draw a batch per limit
        # the allocation spends on, so each call holds about ``batch_size`` prompts instead
        # of a fraction of them.
        limits = len({self.world.max_new_tokens[c] for c, share in zip(capabilities, w, strict=True) if share > 0})
        while total < quota_tokens:
            need = quota_tokens - total
            batch_size = int(min(self.config.batch_size * limits, max(1, need // max(1.0, float(estimate @ w)))))
            picks, planned = [], cost_per_capability.copy()
            for _ in range(batch_size):
                # The capability furthest below its target share of the planned spend.
                deficit = w * (planned.sum() + estimate @ w) - planned
                deficit[w <= 0] = -np.inf
                i = int(np.argmax(deficit))
                picks.append(i)
                planned[i] += estimate[i]
            kept = [(i, d) for i in picks if (d := self.draw(capabilities[i], spent_frac, rng)) is not None]
            if not kept:
                # Only a world whose prompts of these capabilities are nearly all evaluation
                # prompts gets here; going on would loop forever without training data.
                names = sorted({capabilities[i] for i in picks})
                raise ConfigError(
                    f"generation: every {', '.join(names)} prompt drawn ({MAX_REDRAWS} draws per prompt) matched a probe or "
                    "task prompt; the world has too few distinct training prompts for these capabilities"
                )
            picks, drawn = [i for i, _ in kept], [d for _, d in kept]
            # One call per teacher and generation limit.
            calls: dict[tuple[int, int], list[int]] = {}
            for k, i in enumerate(picks):
                calls.setdefault((id(teachers.of(capabilities[i])), self.world.max_new_tokens[capabilities[i]]), []).append(k)
            generations: dict[int, object] = {}
            for (_, length), ks in calls.items():
                sampling = {
                    "max_new_tokens": length,
                    "temperature": self.config.temperature,
                    "top_logprobs": self.config.top_logprobs,
                }
                teacher = teachers.of(capabilities[picks[ks[0]]])
                for k, g in zip(ks, teacher.generate([drawn[k][0].prompt for k in ks], sampling), strict=True):
                    generations[k] = g
            for k, i in enumerate(picks):
                if total >= quota_tokens:
                    break
                (item, difficulty), g = drawn[k], generations[k]
                name = teachers.of(capabilities[i]).name
                ledger.charge(round, "teacher_prompt", g.prompt_tokens, 0, g.cached, teacher=name)
                gen_billable = min(ledger.billable("teacher_gen", g.prompt_tokens, g.completion_tokens, g.cached), quota_tokens - total)
                ledger.charge(round, "teacher_gen", g.completion_tokens, gen_billable, g.cached, teacher=name)
                cost = example_cost(ledger, g.prompt_tokens, g.completion_tokens, g.cached)
                cost_per_capability[i] += cost
                drawn_per_capability[i] += 1
                seen = drawn_per_capability > 0
                estimate[seen] = cost_per_capability[seen] / drawn_per_capability[seen]
                estimate[~seen] = cost_per_capability.sum() / drawn_per_capability.sum()
                total += cost
                examples.append(
                    Example(
                        prompt=item.prompt,
                        completion=g.text,
                        capability=item.capability,
                        prompt_tokens=g.prompt_tokens,
                        completion_tokens=g.completion_tokens,
                        template=item.template,
                        difficulty=difficulty,
                        top_logprobs=g.top_logprobs,
                        teacher=name,
                    )
                )
        return examples

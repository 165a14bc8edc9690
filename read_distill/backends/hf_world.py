"""A ``World`` for real causal LMs: any teacher and student that ``AutoModelForCausalLM``
loads, prompts from the template library, probes from held-out template instantiations,
and the downstream task from a task card.

Seeds keep training prompts and probe prompts apart: training draws fold their seed below
``PROBE_SEED_BASE``, the probe suite uses seeds above it, and the generator's leakage
filter rejects any training prompt whose hash still matches a probe or task prompt.

A probe item is graded where its template computes a reference answer (and the config
asks for graded probes); otherwise it is scored by the student's log-prob of the
*teacher's* answer, which is generated once per world and kept.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from read_distill.backends.base import Student
from read_distill.config import Config, ConfigError
from read_distill.generate import REFERENCE_MAX_NEW_TOKENS, resolve_max_new_tokens
from read_distill.ledger import Ledger
from read_distill.probes import item_scores, probe
from read_distill.tasks import load_card
from read_distill.templates import TemplateSource, load_pools, prompt_hash
from read_distill.types import DIFFICULTIES, Item, Profile
from read_distill.world.micro import task_items

#: Probe seeds start here; training seeds are folded below it.
PROBE_SEED_BASE = 2**61
#: Probe seeds of consecutive ``probe.seed`` values are this far apart.
PROBE_SEED_STRIDE = 1_000_003
#: Candidate draws per probe item before a capability is declared too small for the suite.
PROBE_DRAWS_PER_ITEM = 20


class HFWorld:
    """Teacher and student from ``config.world``, prompts from template pools, one task card."""

    def __init__(self, config: Config) -> None:
        from transformers import AutoTokenizer

        from read_distill.backends.hf import HFTeacher

        wc = config.world
        for field in ("teacher", "student"):
            if not getattr(wc, field):
                raise ConfigError(
                    f"world.{field}: required for world.kind=hf; give a model directory (or a hub id), "
                    f"e.g. world.{field}=/models/llama-3.1-8b"
                )
        self.config = config
        self.capabilities = tuple(config.capabilities)
        self.source = TemplateSource(load_pools(wc.template_dir))
        missing = [c for c in self.capabilities if c not in self.source.by_capability]
        if missing:
            raise ConfigError(
                f"world.template_dir: no templates for capabilities {missing}; the pools cover {sorted(self.source.by_capability)}"
            )
        self.card = load_card(config.task.card)
        self.splits = {s: task_items(self.card, s) for s in ("dev", "test")}
        self.max_new_tokens = resolve_max_new_tokens(config.generation, self.capabilities, REFERENCE_MAX_NEW_TOKENS)
        self._teacher = HFTeacher.from_pretrained(
            wc.teacher, name=f"hf:{wc.teacher}", dtype=wc.dtype, device=wc.device,
            batch_size=config.generation.batch_size, seed=config.run.seed,
        )
        # Probe and evaluation costs are counted in the student's tokens: it does that work.
        self.tokenizer = AutoTokenizer.from_pretrained(wc.student)
        self.suite = self._probe_items()
        # Teacher answers for ungraded probe items, generated on the first probe.
        self._scored_suite: dict[str, list[Item]] | None = None

    def _probe_items(self) -> dict[str, list[Item]]:
        """``probe.items_per_capability`` distinct items per capability, cycling through the
        difficulties so the profile covers the whole range."""
        n, graded = self.config.probe.items_per_capability, self.config.world.probe_scoring == "graded"
        base = PROBE_SEED_BASE + self.config.probe.seed * PROBE_SEED_STRIDE
        suite = {}
        for capability in self.capabilities:
            items, seen = [], set()
            for k in range(n * PROBE_DRAWS_PER_ITEM):
                if len(items) == n:
                    break
                item = self.source.draw(capability, DIFFICULTIES[len(items) % 3], base + k, graded_only=graded)
                h = prompt_hash(item.prompt)
                if h not in seen:
                    seen.add(h)
                    items.append(item if graded else _ungraded(item))
            if len(items) < n:
                raise ConfigError(
                    f"probe.items_per_capability: {capability} templates gave only {len(items)} distinct probe prompts, {n} asked"
                )
            suite[capability] = items
        return suite

    def count_tokens(self, texts: list[str]) -> int:
        """True token count of ``texts`` under the student's tokenizer."""
        return sum(len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]) if texts else 0

    def teacher(self):
        return self._teacher

    def student(self, seed: int) -> Student:
        from read_distill.backends.hf import HFStudent

        train = self.config.train
        kd_teacher = self._teacher if train.signal == "logit" or train.objective == "kd" else None
        return HFStudent.from_pretrained(
            self.config.world.student, config=train, teacher=kd_teacher, seed=seed,
            dtype=self.config.world.dtype, device=self.config.world.device, quiet=True,
        )

    def evaluation_hashes(self) -> set[str]:
        items = [it for items in self.suite.values() for it in items] + self.splits["dev"] + self.splits["test"]
        return {prompt_hash(it.prompt) for it in items}

    def draw(self, capability: str, difficulty: str, seed: int) -> Item:
        return self.source.draw(capability, difficulty, seed % PROBE_SEED_BASE)

    def _with_teacher_answers(self, ledger: Ledger, round: int) -> dict[str, list[Item]]:
        """The suite with the teacher's completion as the reference of every ungraded item
        (generated once; its tokens charged as probe overhead)."""
        if self._scored_suite is None:
            todo = [(c, k) for c in self.capabilities for k, it in enumerate(self.suite[c]) if not it.answer]
            suite = {c: list(items) for c, items in self.suite.items()}
            for c in {c for c, _ in todo}:
                ks = [k for cc, k in todo if cc == c]
                prompts = [suite[c][k].prompt for k in ks]
                gens = self._teacher.generate(prompts, {"max_new_tokens": self.max_new_tokens[c], "temperature": 0.0})
                ledger.charge(round, "probe", sum(g.prompt_tokens + g.completion_tokens for g in gens))
                for k, g in zip(ks, gens, strict=True):
                    suite[c][k] = _ungraded(suite[c][k], g.text)
                # The log-prob fallback needs a non-empty reference; a teacher that answers
                # nothing gives no signal for that item.
                suite[c] = [it for it in suite[c] if it.answer]
                if not suite[c]:
                    raise ConfigError(f"probe: the teacher answered none of the {c} probe prompts; raise max_new_tokens for {c}")
            self._scored_suite = suite
        return self._scored_suite

    def probe(self, student: Student, ledger: Ledger, round: int) -> Profile:
        suite = self._with_teacher_answers(ledger, round)
        return probe(student, suite, self.max_new_tokens, self.count_tokens, ledger, round, self.config.probe.seed)

    def evaluate(self, student: Student, split: str, ledger: Ledger, round: int) -> float:
        items = self.splits[split]
        scores = item_scores(student, items, max(self.max_new_tokens.values()), self.count_tokens, ledger, round, "eval")
        return sum(scores) / len(scores)


def _ungraded(item: Item, reference: str = "") -> Item:
    """``item`` scored by log-prob of ``reference`` (the teacher's answer, filled in on the
    first probe): an empty grader name is not in GRADERS, which selects the fallback."""
    return replace(item, answer=reference, grader="")


def make_world(config: Config) -> HFWorld:
    """Runner entry point (``world.kind: hf``)."""
    if config.world.template_dir is not None and not Path(config.world.template_dir).is_dir():
        raise ConfigError(f"world.template_dir: {config.world.template_dir} is not a directory")
    return HFWorld(config)

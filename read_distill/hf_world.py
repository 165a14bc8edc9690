"""Worlds of real causal LMs: one ``ModelWorld`` for the embedded micro-world and for any
teacher and student that ``AutoModelForCausalLM`` loads.

What differs between the two is data, given at construction: where training prompts come
from (the micro-world's generators, or the template library), the probe suite, the task's
dev/test rows, and the replay mixture (the micro-world's student pretraining mixture;
none for arbitrary models). Models, probing, evaluation and token counting are one code
path, the backends a run uses.

Seeds keep training prompts and probe prompts apart: for ``world.kind: hf`` training draws
fold their seed below ``PROBE_SEED_BASE`` and the probe suite uses seeds above it (the
micro-world's generators keep their own train/dev/test seed ranges); the generator's
leakage filter rejects any training prompt whose hash still matches a probe or task prompt.

A probe item is graded where it has a reference answer and a grader; otherwise it is
scored by the student's log-prob of the *teacher's* answer, generated once per world.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from read_distill.backends.base import Student
from read_distill.config import Config, ConfigError, ProbeSuite
from read_distill.ledger import Ledger
from read_distill.probes import item_scores, probe
from read_distill.task_data import read_rows, require_data_file
from read_distill.tasks import TaskCard, load_card
from read_distill.teachers import Teachers, load_teachers
from read_distill.templates import prompt_hash
from read_distill.types import DIFFICULTIES, Example, Item, Profile

#: Probe seeds start here; training seeds are folded below it.
PROBE_SEED_BASE = 2**61
#: Probe seeds of consecutive ``probe.seed`` values are this far apart.
PROBE_SEED_STRIDE = 1_000_003
#: Candidate draws per probe item before a capability is declared too small for the suite.
PROBE_DRAWS_PER_ITEM = 20

#: ``draw(capability, difficulty, seed) -> Item``: a training prompt.
Draw = Callable[[str, str, int], Item]
#: ``replay(seed, start, n) -> examples``: the student's own pretraining mixture.
Replay = Callable[[int, int, int], list[Example]]


class ModelWorld:
    """A teacher and a student on disk, a prompt source, a probe suite and one task card.

    ``teacher_name`` keys the teacher-output cache, so it must change when the weights do.
    """

    def __init__(
        self,
        config: Config,
        *,
        card: TaskCard,
        teacher_dir: str | Path | None,
        teacher_name: str,
        student_dir: str | Path,
        draw: Draw,
        suite: dict[str, list[Item]],
        splits: dict[str, list[Item]],
        max_new_tokens: dict[str, int],
        replay: Replay | None = None,
        dtype: str = "auto",
        device: str = "auto",
    ) -> None:
        from read_distill.backends.hf import load_tokenizer

        self.config = config
        self.capabilities = tuple(config.capabilities)
        self.card = card
        self.draw = draw
        self.suite = suite
        self.splits = splits
        self.max_new_tokens = max_new_tokens
        self.replay = replay
        self._student_dir, self._dtype, self._device = student_dir, dtype, device
        self._teachers = load_teachers(config, teacher_dir, teacher_name, dtype, device)
        # Probe and evaluation costs are counted in the student's tokens: it does that work.
        self.tokenizer = load_tokenizer(student_dir, config.world.chat_template)
        self._answered_suite: dict[str, list[Item]] | None = None

    def count_tokens(self, texts: list[str]) -> int:
        """True token count of ``texts`` under the student's tokenizer (no special tokens)."""
        from read_distill.train import count_tokens

        return count_tokens(self.tokenizer, texts)

    def count_prompt_tokens(self, prompts: list[str]) -> int:
        """Tokens the student reads for ``prompts`` (its chat template's framing included)."""
        from read_distill.train import count_prompt_tokens

        return count_prompt_tokens(self.tokenizer, prompts)

    def teachers(self) -> Teachers:
        """The run's teachers, loaded once."""
        return self._teachers

    def student(self, seed: int) -> Student:
        """A fresh copy of S0; it gets the teacher's model when the objective needs its
        distributions and the run has one teacher, in-process (a served one gives recorded
        top-k only; several teachers give no one distribution)."""
        from read_distill.backends.hf import HFStudent, HFTeacher

        train = self.config.train
        needs = train.signal == "logit" or train.objective in ("kd", "reverse_kl")
        default = self._teachers.default
        kd_teacher = default if needs and not self._teachers.overrides and isinstance(default, HFTeacher) else None
        return HFStudent.from_pretrained(
            self._student_dir, config=train, teacher=kd_teacher, seed=seed, dtype=self._dtype, device=self._device, quiet=True,
            batch_size=self.config.generation.batch_size, chat_template=self.config.world.chat_template,
        )

    def evaluation_hashes(self) -> set[str]:
        """Hashes of every probe and task prompt (the leakage filter's reject set)."""
        items = [it for items in self.suite.values() for it in items] + self.splits["dev"] + self.splits["test"]
        return {prompt_hash(it.prompt) for it in items}

    def probe(
        self, student: Student, ledger: Ledger, round: int, capabilities: tuple[str, ...] | None = None, sequential: bool = False
    ) -> Profile:
        """The student's profile on the probe suite of ``capabilities`` (default all; charged as
        probe overhead); ``sequential`` stops a capability early per ``probe.stop_width`` (by default after
        the first third of its items)."""
        suite = self._with_teacher_answers(ledger, round)
        stop_width = self.config.probe.stop_width if sequential else 0.0
        return probe(
            student, suite, self.max_new_tokens, self.count_tokens, ledger, round, self.config.probe.seed, capabilities, stop_width,
            self.count_prompt_tokens,
        )

    def evaluate(self, student: Student, split: str, ledger: Ledger, round: int) -> float:
        """The task's utility on ``split``, with the longest capability limit for answers
        (charged as ``dev`` or ``eval``, the test split)."""
        phase = "dev" if split == "dev" else "eval"
        scores = item_scores(
            student, self.splits[split], max(self.max_new_tokens.values()), self.count_tokens, ledger, round, phase, self.count_prompt_tokens
        )
        return sum(scores) / len(scores)

    def answer_form(self, requirement: tuple[float, ...]) -> tuple[float, ...]:
        """1 for the one needed capability whose probe items share a grader with the task's
        items: the task answers in that capability's form (a tool call, JSON), so a probe of
        it on its own items understates what the task still needs of it. Where no needed
        capability, or several (a plain ``exact`` match says nothing), do: empty."""
        task = {it.grader for it in self.splits["dev"] + self.splits["test"]} - {""}
        needed = [c for c, r in zip(self.capabilities, requirement, strict=True) if r > 0]
        match = [c for c in needed if task & {it.grader for it in self.suite.get(c, [])}]
        if len(match) != 1:
            return ()
        return tuple(1.0 if c == match[0] else 0.0 for c in self.capabilities)

    def _with_teacher_answers(self, ledger: Ledger, round: int) -> dict[str, list[Item]]:
        """The suite with the teacher's completion as the reference of every ungraded item
        (generated once; its tokens charged as probe overhead)."""
        if self._answered_suite is None:
            suite = {c: list(items) for c, items in self.suite.items()}
            for c, items in suite.items():
                todo = [k for k, it in enumerate(items) if not it.answer]
                if not todo:
                    continue
                gens = self._teachers.of(c).generate(
                    [items[k].prompt for k in todo], {"max_new_tokens": self.max_new_tokens[c], "temperature": 0.0}
                )
                ledger.charge(round, "probe", sum(g.prompt_tokens + g.completion_tokens for g in gens))
                for k, g in zip(todo, gens, strict=True):
                    items[k] = ungraded(items[k], g.text)
                # The log-prob fallback needs a non-empty reference; a teacher that answers
                # nothing gives no signal for that item.
                suite[c] = [it for it in items if it.answer]
                if not suite[c]:
                    raise ConfigError(f"probe: the teacher answered none of the {c} probe prompts; raise max_new_tokens for {c}")
            self._answered_suite = suite
        return self._answered_suite


def ungraded(item: Item, reference: str = "") -> Item:
    """``item`` scored by log-prob of ``reference`` (the teacher's answer, filled in on the
    first probe): an empty grader name selects that fallback."""
    return replace(item, answer=reference, grader="")


def benchmark_suite(capability: str, suite: ProbeSuite) -> list[Item]:
    """The rows of ``suite`` (every row checked as task data is), or ``size`` of them drawn
    with ``seed``, in file order."""
    card = TaskCard(name=capability, description=f"probe suite {suite.path}")
    rows = read_rows(require_data_file(Path(suite.path), f"probe.suites.{capability}.path"), card)
    if suite.size is None:
        return rows
    if suite.size > len(rows):
        raise ConfigError(f"probe.suites.{capability}.size: {suite.size} asked, {suite.path} has {len(rows)} rows; expected at most {len(rows)}")
    keep = np.random.default_rng(suite.seed).choice(len(rows), size=suite.size, replace=False)
    return [rows[i] for i in sorted(keep)]


def template_suite(config: Config, source: Any) -> dict[str, list[Item]]:
    """``probe.items_per_capability`` distinct template items per capability, cycling through
    the difficulties so the profile covers the whole range; a capability with a benchmark
    suite (``probe.suites``) is probed on its rows instead."""
    n, graded = config.probe.items_per_capability, config.world.probe_scoring == "graded"
    base = PROBE_SEED_BASE + config.probe.seed * PROBE_SEED_STRIDE
    suite = {c: benchmark_suite(c, s) for c, s in config.probe.suites.items()}
    for capability in (c for c in config.capabilities if c not in suite):
        items, seen = [], set()
        for k in range(n * PROBE_DRAWS_PER_ITEM):
            if len(items) == n:
                break
            item = source.draw(capability, DIFFICULTIES[len(items) % 3], base + k, graded_only=graded)
            h = prompt_hash(item.prompt)
            if h not in seen:
                seen.add(h)
                items.append(item if graded else ungraded(item))
        if len(items) < n:
            raise ConfigError(
                f"probe.items_per_capability: {capability} templates gave only {len(items)} distinct probe prompts, {n} asked"
            )
        suite[capability] = items
    return suite


def check_models(config: Config) -> None:
    """The default teacher (a local model or a server) and ``world.student`` are given, and
    every local path is a model directory.

    A value that is not a path (absolute, ``./``, ``../``, ``~``) nor an existing file is a
    hub id, which only loading can check.
    """
    wc = config.world
    default = wc.teacher_specs()["default"]
    if default.path is None and default.url is None:
        raise ConfigError(
            "world.teacher: required for world.kind=hf; give a model directory (or a hub id), e.g. "
            "world.teacher=/models/llama-3.1-70b, or a server: world.teacher_url and world.teacher_model"
        )
    if not wc.student:
        raise ConfigError("world.student: required for world.kind=hf; give a model directory (or a hub id), e.g. world.student=/models/llama-3.1-8b")
    check_model_dir("world.student", wc.student)
    if config.train.signal == "logit" or config.train.objective == "kd":
        check_shared_vocabulary(config, wc.student)


def check_model_dir(field: str, ref: str) -> None:
    """A local path (absolute, ``./``, ``../``, ``~``, or existing) must be a model directory;
    anything else is a hub id, which only loading can check."""
    if (ref.startswith(("/", "./", "../", "~")) or Path(ref).exists()) and not (Path(ref) / "config.json").is_file():
        raise ConfigError(f"{field}: {ref} is not a model directory (no config.json); expected a directory save_pretrained wrote, or a hub id")


def check_shared_vocabulary(config: Config, student: str | Path | None) -> None:
    """Logit KD compares the teacher's and the student's distributions token by token, so
    every teacher must use the vocabulary of the ``student`` directory; text SFT does not
    need it. Checked from the tokenizer files of local model directories (a hub id or a
    served teacher only loading can check)."""
    wc = config.world
    teachers = {wc.teacher_field(k, "path"): spec.path for k, spec in wc.teacher_specs().items() if spec.path}
    local = {f: t for f, t in teachers.items() if (Path(t) / "tokenizer_config.json").is_file()}
    if not local or not (student and (Path(student) / "tokenizer_config.json").is_file()):
        return
    from transformers import AutoTokenizer

    s_tok = AutoTokenizer.from_pretrained(student)
    for field, teacher in local.items():
        t_tok = AutoTokenizer.from_pretrained(teacher)
        if t_tok.get_vocab() != s_tok.get_vocab():
            raise ConfigError(
                f"train.signal={config.train.signal}, train.objective={config.train.objective}: the teacher's tokenizer "
                f"({field}={teacher}, {len(t_tok)} tokens) and the student's ({student}, {len(s_tok)} tokens) differ, and logit "
                "KD needs one vocabulary; text SFT works across tokenizers: train.signal=cot (or resp) with train.objective=sft"
            )


def template_source(config: Config) -> Any:
    """The template library of ``world.template_dir`` (default: the shipped pools), which
    must cover every capability of the run."""
    from read_distill.templates import TemplateSource, load_pools

    directory = config.world.template_dir
    if directory is not None and not Path(directory).is_dir():
        raise ConfigError(f"world.template_dir: {directory} is not a directory")
    source = TemplateSource(load_pools(directory))
    missing = [c for c in config.capabilities if c not in source.by_capability]
    if missing:
        raise ConfigError(
            f"world.template_dir: no templates for capabilities {missing}; the pools cover {sorted(source.by_capability)}"
        )
    return source


def make_world(config: Config) -> ModelWorld:
    """Runner entry point of ``world.kind: hf``: models from ``world.teacher``/``world.student``,
    prompts and probes from the template library, the task from the card."""
    from read_distill.generate import REFERENCE_MAX_NEW_TOKENS, resolve_max_new_tokens
    from read_distill.world.micro import task_items

    wc = config.world
    check_models(config)
    source = template_source(config)
    card = load_card(config.task.card)
    return ModelWorld(
        config,
        card=card,
        teacher_dir=wc.teacher,
        teacher_name=f"hf:{wc.teacher}",
        student_dir=wc.student,
        draw=lambda capability, difficulty, seed: source.draw(capability, difficulty, seed % PROBE_SEED_BASE),
        suite=template_suite(config, source),
        splits={s: task_items(card, s) for s in ("dev", "test")},
        max_new_tokens=resolve_max_new_tokens(config.generation, tuple(config.capabilities), REFERENCE_MAX_NEW_TOKENS),
        dtype=wc.dtype,
        device=wc.device,
    )

"""Everything a run would reject, checked before its run directory or any model exists.

``read-distill validate`` is this check; ``run`` and ``compare`` make it first, so a bad
world setting, path, task card, requirement or task data row ends in one ConfigError
line (exit 2) with nothing on disk changed, not in a traceback after minutes of loading.
Field types and names inside the config itself are checked by ``load_config``.
"""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from read_distill.config import Config, ConfigError
from read_distill.tasks import TaskCard, card_floors, card_requirement, load_card
from read_distill.tracking import check_trackers
from read_distill.types import Item


@dataclass(frozen=True)
class Sizes:
    """What a run of a config measures with: probe items per capability (with where they
    come from) and the task's dev and test rows."""

    probes: dict[str, tuple[int, str]] = field(default_factory=dict)
    task: str = ""
    splits: dict[str, int] = field(default_factory=dict)


def half_width(n: int, p: float = 0.5) -> float:
    """Half-width in points of the 95 % normal interval of a score ``p`` measured on ``n``
    items (1.96 * sqrt(p (1 - p) / n) * 100): what a probe of ``n`` items can resolve."""
    return 196.0 * math.sqrt(p * (1 - p) / n)


def size_lines(sizes: Sizes) -> list[str]:
    """The probe and task sizes as ``validate`` prints them, each with the 95 % interval
    half-width that size gives a score of 50."""
    if not sizes.probes:
        return []
    width = max(len(c) for c in sizes.probes)
    lines = ["probe items per capability (± the 95 % interval they give a score of 50: 1.96*sqrt(.25/n)*100 points):"]
    lines += [f"  {c:<{width}} {n:>5} {f'±{half_width(n):.1f}':>6}  {source}" for c, (n, source) in sizes.probes.items()]
    if sizes.splits:
        lines.append(f"task {sizes.task}: " + ", ".join(f"{s} {n} rows ±{half_width(n):.1f}" for s, n in sizes.splits.items()))
    return lines


def check_inputs(config: Config) -> Sizes:
    """Raise ConfigError for the first thing a run of ``config`` would reject; else the
    probe and task sizes it measures with (none for simulated worlds).

    Reads the task card and its data files and, for simulated worlds, builds the
    environment (milliseconds); loads no model and writes nothing.
    """
    kind = config.world.kind
    check_trackers(config.run.report_to)
    if config.train.lora is not None and kind == "sim":
        raise ConfigError("train.lora: world.kind=sim has no model to adapt; remove train.lora or use world.kind=micro or hf")
    if config.train.lora is not None and importlib.util.find_spec("peft") is None:
        raise ConfigError("train.lora: LoRA students need peft; pip install 'read-distill[lora]'")
    _check_teacher_engines(config)
    # Only the micro-world has a replay mixture (its student's own pretraining data).
    if config.train.replay_frac > 0 and kind != "micro":
        raise ConfigError(f"train.replay_frac: world.kind={kind} has no replay mixture; set train.replay_frac=0")
    if kind == "sim":
        _check_sim(config)
        return Sizes()
    if kind == "micro":
        from read_distill.world.micro import check_world_config

        check_world_config(config)
        n = config.probe.items_per_capability
        probes = {c: (n, "generated (held-out seeds)") for c in config.capabilities}
        card, splits = _check_task(config)
    else:
        from read_distill.hf_world import check_models, template_source, template_suite

        check_models(config)
        suite = template_suite(config, template_source(config))
        probes = {c: (len(suite[c]), _probe_source(config, c)) for c in config.capabilities}
        card, splits = _check_task(config)
        _check_held_out(config, suite, card.name, splits)
    return Sizes(probes, card.name, {s: len(items) for s, items in splits.items()})


def _probe_source(config: Config, capability: str) -> str:
    """Where an hf world's probe items of ``capability`` come from, for ``validate``."""
    suite = config.probe.suites.get(capability)
    if suite is None:
        return "templates"
    rows = sum(1 for line in Path(suite.path).read_text(encoding="utf-8").split("\n") if line.strip())
    if suite.size is None or suite.size == rows:
        return f"{suite.path} (all {rows} rows)"
    return f"{suite.path} ({suite.size} of {rows} rows, seed {suite.seed})"


def _check_held_out(config: Config, suite: dict[str, list[Item]], task: str, splits: dict[str, list[Item]]) -> None:
    """No probe item is a task row: the policy optimises what the probes read, so a task
    row among them would steer the allocation by the task's own dev and test rows."""
    from read_distill.templates import prompt_hash

    task_hashes = {prompt_hash(it.prompt) for items in splits.values() for it in items}
    for capability, items in suite.items():
        shared = sum(prompt_hash(it.prompt) in task_hashes for it in items)
        if shared:
            given = config.probe.suites.get(capability)
            where = f"probe.suites.{capability}.path ({given.path})" if given else f"probe: the {capability} templates"
            raise ConfigError(
                f"{where}: {shared} of its {len(items)} probe rows are also dev/test rows of task card {task!r}; "
                "expected probe rows disjoint from the task's rows"
            )


def _check_teacher_engines(config: Config) -> None:
    """Each teacher's local path is a model directory, its engine is installed and its API
    key (if it names one) is set."""
    from read_distill.hf_world import check_model_dir

    wc = config.world
    for key, spec in wc.teacher_specs().items():
        if spec.path is not None:
            check_model_dir(wc.teacher_field(key, "path"), spec.path)
        if spec.url is not None and importlib.util.find_spec("openai") is None:
            raise ConfigError(f"{wc.teacher_field(key, 'url')}: a served teacher needs the openai client; pip install 'read-distill[serve]'")
        if spec.url is not None and spec.api_key_env and not os.environ.get(spec.api_key_env):
            raise ConfigError(f"{wc.teacher_field(key, 'api_key_env')}: the environment variable {spec.api_key_env} is not set; export the API key there")
        if spec.engine == "vllm" and importlib.util.find_spec("vllm") is None:
            raise ConfigError(f"{wc.teacher_field(key, 'engine')}: vllm is not installed; pip install 'read-distill[vllm]' (Linux with a CUDA GPU)")


def _check_sim(config: Config) -> None:
    """The environment exists, has the config's capabilities, and the requirement override fits it."""
    from read_distill.sim.environments import make_world

    world = make_world(config)
    if tuple(config.capabilities) != tuple(world.capabilities):
        raise ConfigError(f"capabilities: the world has {list(world.capabilities)}, the config {list(config.capabilities)}")
    card_requirement(world.card, world.capabilities, config.task.requirement)
    card_floors(world.card, world.capabilities, config.floors.scores)


def _check_task(config: Config) -> tuple[TaskCard, dict[str, list[Item]]]:
    """The task card, its requirement over the run's capabilities, and every dev and test
    row; the card and its rows."""
    from read_distill.world.micro import task_items

    card = load_card(config.task.card)
    card_requirement(card, tuple(config.capabilities), config.task.requirement)
    card_floors(card, tuple(config.capabilities), config.floors.scores)
    return card, {split: task_items(card, split) for split in ("dev", "test")}

"""Everything a run would reject, checked before its run directory or any model exists.

``read-distill validate`` is this check; ``run`` and ``compare`` make it first, so a bad
world setting, path, task card, requirement or task data row ends in one ConfigError
line (exit 2) with nothing on disk changed, not in a traceback after minutes of loading.
Field types and names inside the config itself are checked by ``load_config``.
"""

from __future__ import annotations

import importlib.util
import os

from read_distill.config import Config, ConfigError
from read_distill.tasks import card_floors, card_requirement, load_card
from read_distill.tracking import check_trackers


def check_inputs(config: Config) -> None:
    """Raise ConfigError for the first thing a run of ``config`` would reject.

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
        return
    if kind == "micro":
        from read_distill.world.micro import check_world_config

        check_world_config(config)
    else:
        from read_distill.hf_world import check_models, template_source, template_suite

        check_models(config)
        template_suite(config, template_source(config))
    _check_task(config)


def _check_teacher_engines(config: Config) -> None:
    """Each teacher's engine is installed and its API key (if it names one) is set."""
    wc = config.world
    for key, spec in wc.teacher_specs().items():
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


def _check_task(config: Config) -> None:
    """The task card, its requirement over the run's capabilities, and every dev and test row."""
    from read_distill.world.micro import task_items

    card = load_card(config.task.card)
    card_requirement(card, tuple(config.capabilities), config.task.requirement)
    card_floors(card, tuple(config.capabilities), config.floors.scores)
    for split in ("dev", "test"):
        task_items(card, split)

"""The leakage filter fails closed: a prompt that matches a probe or task prompt is never
trained on, and the round's record counts the collisions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from read_distill.config import Config, ConfigError
from read_distill.generate import MAX_REDRAWS, Generator
from read_distill.ledger import Ledger
from read_distill.runner import run
from read_distill.sim import sim_config
from read_distill.sim.world import SimWorld
from read_distill.templates import prompt_hash
from read_distill.types import Item

BUDGET, ROUNDS = 400_000, 3


class _LeakyWorld(SimWorld):
    """A simulated world whose prompts come from a space of four per capability, one of
    which (``<capability>/0``) is an evaluation prompt; ``hopeless`` has only that one."""

    hopeless: str | None = None

    def evaluation_hashes(self) -> set[str]:
        return {prompt_hash(f"{c}/0") for c in self.capabilities}

    def draw(self, capability: str, difficulty: str, seed: int) -> Item:
        k = 0 if capability == self.hopeless else seed % 4
        return Item(prompt=f"{capability}/{k}", answer="", capability=capability, template=f"{capability}-{k}")


def _leaky(world, hopeless: str | None = None) -> _LeakyWorld:
    leaky = object.__new__(_LeakyWorld)
    leaky.__dict__.update(world.with_example_tokens(BUDGET, ROUNDS).__dict__)
    leaky.hopeless = hopeless
    return leaky


def test_a_prompt_that_always_collides_is_dropped_not_returned(world):
    gen = Generator(_leaky(world, "math"), Config().generation, seed=0)
    assert gen.draw("math", 0.0, np.random.default_rng(0)) is None
    assert gen.drain_leak_counts() == {"collisions": MAX_REDRAWS, "dropped": 1}
    assert gen.drain_leak_counts() == {"collisions": 0, "dropped": 0}


def test_generated_examples_never_hold_an_evaluation_prompt(world):
    leaky = _leaky(world, "math")
    gen = Generator(leaky, Config().generation, seed=0)
    w = tuple(1.0 if c in ("code", "math") else 0.0 for c in leaky.capabilities)
    examples = gen.generate_round(leaky.teachers(), w, 40_000, Ledger(None, 10**9), 1, 0.0, np.random.default_rng(0))
    assert examples and not {prompt_hash(e.prompt) for e in examples} & leaky.evaluation_hashes()
    counts = gen.drain_leak_counts()
    assert counts["collisions"] > 0 and counts["dropped"] > 0


def test_a_capability_without_clean_prompts_is_an_error_not_a_loop(world):
    leaky = _leaky(world, "math")
    gen = Generator(leaky, Config().generation, seed=0)
    only_math = tuple(1.0 if c == "math" else 0.0 for c in leaky.capabilities)
    with pytest.raises(ConfigError, match="every math prompt drawn"):
        gen.generate_round(leaky.teachers(), only_math, 10_000, Ledger(None, 10**9), 1, 0.0, np.random.default_rng(0))


def test_the_round_record_counts_collisions_and_resume_keeps_them(world, tmp_path):
    config = sim_config(world, "uniform", BUDGET, ROUNDS, 0)
    run(config, tmp_path / "whole", world=_leaky(world), quiet=True)
    records = [json.loads((tmp_path / f"whole/rounds/{t:04d}/allocation.json").read_text()) for t in range(1, ROUNDS + 1)]
    assert all(r["leakage"]["collisions"] > 0 for r in records)
    for t in range(1, ROUNDS + 1):
        prompts = [json.loads(line)["prompt"] for line in (tmp_path / f"whole/rounds/{t:04d}/examples.jsonl").read_text().splitlines()]
        assert not [p for p in prompts if p.endswith("/0")]
    run(config, tmp_path / "stopped", world=_leaky(world), quiet=True, stop_after_round=1)
    run(config, tmp_path / "stopped", world=_leaky(world), quiet=True, resume=True)
    resumed = [json.loads((tmp_path / f"stopped/rounds/{t:04d}/allocation.json").read_text()) for t in range(1, ROUNDS + 1)]
    assert [r["leakage"] for r in resumed] == [r["leakage"] for r in records]

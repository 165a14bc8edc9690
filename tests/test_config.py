"""Config: defaults, YAML overrides, dotted overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from read_distill.config import ConfigError, dump_config, load_config


def test_defaults_match_spec():
    c = load_config()
    assert c.run.rounds == 20
    assert c.reward.beta == 0.5 and c.reward.lambda_per_token == 1e-5 and c.reward.top_k == 3
    assert c.policy.kappa == 1.0 and c.policy.kappa_decay == 0.7 and c.policy.ensemble_size == 5
    assert c.policy.grid == (0.25, 0.5, 0.75) and c.policy.max_actions == 50
    assert len(c.capabilities) == 8


def test_yaml_then_dotted_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("budget:\n  total_tokens: 1000\npolicy:\n  name: uniform\n")
    c = load_config(f, ["budget.total_tokens=2e6", "reward.beta=0"])
    assert c.budget.total_tokens == 2_000_000 and isinstance(c.budget.total_tokens, int)
    assert c.policy.name == "uniform" and c.reward.beta == 0.0


def test_float_strings_convert_to_declared_type(tmp_path):
    c = load_config(None, ["reward.lambda_per_token=1e-4"])
    assert c.reward.lambda_per_token == pytest.approx(1e-4)


@pytest.mark.parametrize(
    "override, needle",
    [
        ("budget.total_tokn=3", "unknown key 'budget.total_tokn'"),
        ("run.rounds=abc", "run.rounds"),
        ("budget.unit=words", "budget.unit"),
        ("budget.total_tokens=1.5", "budget.total_tokens"),
        ("nosuch=1", "unknown key 'nosuch'"),
    ],
)
def test_bad_keys_are_named(override, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        load_config(None, [override])


def test_typo_in_policy_name_names_the_field_and_the_policies():
    with pytest.raises(ConfigError) as e:
        load_config(None, ["policy.name=unifrom"])
    message = str(e.value)
    assert len(message.splitlines()) == 1
    assert "policy.name: unknown policy; expected one of read, greedy, uniform, task_static" in message
    assert "(got 'unifrom')" in message


def test_bad_file_errors_name_the_file(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("run: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(f)
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")


def test_config_is_frozen_and_dump_round_trips(tmp_path):
    c = load_config(None, ["policy.name=exp3"])
    with pytest.raises(ValidationError, match="frozen"):
        c.run.rounds = 3  # type: ignore[misc]
    f = tmp_path / "resolved.yaml"
    f.write_text(dump_config(c))
    assert load_config(f) == c


@pytest.mark.parametrize(
    "override, needle",
    [
        ("reward.beta=.inf", "reward.beta: Input should be a finite number"),
        ("task.requirement={math: .nan}", "task.requirement.math: Input should be a finite number"),
        ("run.seed=-1", "run.seed: Input should be greater than or equal to 0"),
        ("run.seed=4294967296", "run.seed: Input should be less than or equal to 4294967295"),
        ("policy.grid=[]", "policy.grid: expected at least one pair weight in (0, 1)"),
        ("policy.grid=[1.5]", "policy.grid.0: Input should be less than 1"),
        ("generation.max_new_tokens={math: 0}", "generation.max_new_tokens.math: Input should be greater than or equal to 1"),
        ("generation.max_new_tokens={mth: 8}", "generation.max_new_tokens: unknown capabilities ['mth']"),
        ("policy.weights={mth: 1}", "policy.weights: unknown capabilities ['mth']"),
        ("policy.weights={math: 0}", "policy.weights: expected capability -> weight with some positive weight"),
        ("policy.capability=mth", "policy.capability: unknown capability 'mth'"),
        ("policy.name=fixed", "policy.weights: required by policy fixed"),
        ("policy.name=schedule", "policy.schedule: 0 allocations for 20 rounds"),
        ("run.name=[", "override 'run.name=[': not valid YAML: line 1, column 2"),
        ("task.requirement={math: 1, math: 2}", "duplicate key 'math'"),
        ("task.requirement=unform", "task.requirement: expected capability -> weight, uniform, auto, or {learned: MODEL_DIR}"),
        ("task.requirement={learned: 3}", "task.requirement: learned: expected the directory of a model"),
        ("train.signal=on_policy", "train.objective: sft with train.signal=on_policy would fit the student to its own samples"),
        (("train.signal=on_policy", "train.objective=kd", "world.kind=sim"), "train.signal: on_policy needs a student that samples"),
    ],
)
def test_values_a_run_would_trip_on_are_one_line_errors(override, needle):
    with pytest.raises(ConfigError) as e:
        load_config(None, [override] if isinstance(override, str) else list(override))
    assert needle in str(e.value) and len(str(e.value).splitlines()) == 1


def test_a_key_given_twice_is_an_error_not_last_wins(tmp_path):
    with pytest.raises(ConfigError, match="run.seed is given twice"):
        load_config(None, ["run.seed=1", "run.seed=2"])
    f = tmp_path / "dup.yaml"
    f.write_text("run: {seed: 1}\nrun: {seed: 2}\n")
    with pytest.raises(ConfigError, match=r"dup\.yaml: not valid YAML: line 2, column 1: duplicate key 'run'"):
        load_config(f)


def test_unreadable_config_files_are_one_line_errors(tmp_path):
    f = tmp_path / "latin1.yaml"
    f.write_bytes(b"run:\n  name: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin1\.yaml:2: not valid UTF-8 \(byte 0xe9\)"):
        load_config(f)
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(tmp_path)
    many = tmp_path / "many.yaml"
    many.write_text("run: {rounds: 0, dev_every: 0}\n")
    with pytest.raises(ConfigError) as e:
        load_config(many)
    assert len(str(e.value).splitlines()) == 1 and "run.rounds" in str(e.value) and "run.dev_every" in str(e.value)


@pytest.mark.parametrize("path", sorted(str(p) for p in Path("configs").rglob("*.yaml") if not {"accelerate", "tasks"} & set(p.parts)))
def test_shipped_configs_pass_validate(path):
    """Every config the repository ships passes what `read-distill validate` checks (the
    paper configs' served teacher is a placeholder URL: nothing is contacted)."""
    from read_distill.preflight import check_inputs

    pytest.importorskip("openai")
    check_inputs(load_config(path))

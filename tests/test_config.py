"""Config: defaults, YAML overrides, dotted overrides, clear errors."""

from __future__ import annotations

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

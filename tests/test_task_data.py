"""Task cards and their JSONL data: every bad row is a one-line error naming file, line and field."""

from __future__ import annotations

import pytest

from read_distill.config import ConfigError
from read_distill.task_data import read_rows
from read_distill.tasks import load_card

CARD = """name: t
description: d
requirement: {math: 1}
metric: exact
data: {dev: dev.jsonl, test: test.jsonl}
"""
GOOD = '{"prompt": "1+1 A:", "answer": "2", "grader": "numeric"}\n{"prompt": "2+2 A:", "answer": "4"}\n'


def _card(tmp_path, dev: bytes, card: str = CARD):
    (tmp_path / "card.yaml").write_text(card)
    (tmp_path / "dev.jsonl").write_bytes(dev)
    (tmp_path / "test.jsonl").write_text(GOOD)
    return load_card(str(tmp_path / "card.yaml"))


def test_rows_read_with_the_card_metric_as_default_grader(tmp_path):
    card = _card(tmp_path, GOOD.encode())
    items = read_rows(tmp_path / "dev.jsonl", card)
    assert [(it.prompt, it.grader) for it in items] == [("1+1 A:", "numeric"), ("2+2 A:", "exact")]


@pytest.mark.parametrize(
    "dev, needle",
    [
        (b'{"prompt": "p", "answer": "a", "grader": "exakt"}\n', "dev.jsonl:1: grader: unknown grader 'exakt'; expected one of bfcl, choice, code, exact"),
        (GOOD.encode() + b'{"prompt": "p", "answer": \n', "dev.jsonl:3: not valid JSON (Expecting value at column 27)"),
        (b'{"prompt": "caf\xe9", "answer": "a"}\n', "dev.jsonl:1: not valid UTF-8 (byte 0xe9)"),
        (b'{"prompt": "p"}\n', "dev.jsonl:1: answer: missing"),
        (b'{"prompt": "p", "answer": 4}\n', "dev.jsonl:1: answer: expected a non-empty string, got 4"),
        (b'{"prompt": " ", "answer": "a"}\n', "dev.jsonl:1: prompt: expected a non-empty string"),
        (b'{"prompt": "p", "answer": "a", "grader": null}\n', "dev.jsonl:1: grader: expected a string, got null"),
        (b'{"prompt": "p", "answer": "a", "id": 3}\n', "dev.jsonl:1: unknown key 'id'; expected only prompt, answer, grader"),
        (b'{"prompt": "p", "answer": "a", "answer": "b"}\n', "dev.jsonl:1: key 'answer' is given twice"),
        (b'["p", "a"]\n', "dev.jsonl:1: got a JSON array"),
        (b'{"prompt": "p", "answer": "a"}\n\n{"prompt": "p", "answer": "b"}\n', "dev.jsonl:3: prompt: the same as on line 1"),
        (b"\n \n", "dev.jsonl: no rows"),
    ],
)
def test_bad_rows_name_file_line_and_field(tmp_path, dev, needle):
    card = _card(tmp_path, dev)
    with pytest.raises(ConfigError) as e:
        read_rows(tmp_path / "dev.jsonl", card)
    assert needle in str(e.value) and len(str(e.value).splitlines()) == 1


def test_an_empty_grader_means_log_prob_scoring_and_is_kept(tmp_path):
    card = _card(tmp_path, b'{"prompt": "p", "answer": "a", "grader": ""}\n')
    assert read_rows(tmp_path / "dev.jsonl", card)[0].grader == ""


@pytest.mark.parametrize(
    "card, needle",
    [
        (CARD.replace("metric: exact", "metric: exakt"), "card.yaml: metric: unknown grader 'exakt'"),
        (CARD.replace("{dev: dev.jsonl, test: test.jsonl}", "{dev: dev.jsonl}"), "card.yaml: data: expected either a generator or both dev and test"),
        (CARD.replace("{dev: dev.jsonl, test: test.jsonl}", "{generator: nope}"), "card.yaml: data.generator: unknown generator; expected one of cap_code"),
        (CARD.replace("data: {dev: dev.jsonl, test: test.jsonl}\n", ""), "card.yaml: data: missing"),
        (CARD.replace("{math: 1}", "{math: .nan}"), "card.yaml: requirement.math: Input should be a finite number"),
        (CARD.replace("{math: 1}", "{math: -1}"), "card.yaml: requirement.math: Input should be greater than or equal to 0"),
        (CARD + "name: u\n", "card.yaml: not valid YAML: line 6, column 1: duplicate key 'name'"),
    ],
)
def test_card_errors_name_the_card_file_and_field(tmp_path, card, needle):
    with pytest.raises(ConfigError) as e:
        _card(tmp_path, GOOD.encode(), card)
    assert needle in str(e.value) and len(str(e.value).splitlines()) == 1

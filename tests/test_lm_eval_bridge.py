"""The lm-evaluation-harness bridge (`read-distill eval`, the eval extra) on the shipped
micro-world student, with two tasks defined here over local JSONL (no hub)."""

from __future__ import annotations

import importlib.util
import json
import os
import re

# Before lm_eval (and so datasets and huggingface_hub) is imported: they read these once.
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402

pytest.importorskip("lm_eval")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from lm_eval.api.instance import Instance  # noqa: E402

from read_distill import train  # noqa: E402
from read_distill.backends.hf import HFStudent, generate_tokens  # noqa: E402
from read_distill.cli import main  # noqa: E402
from read_distill.config import ConfigError  # noqa: E402
from read_distill.lm_eval_bridge import StudentLM, evaluate, task_manager  # noqa: E402
from read_distill.world.build import ensure_world  # noqa: E402

pytestmark = pytest.mark.tiny

# Questions of the micro-world's knowledge base and arithmetic; the student knows some.
# lm-eval joins a choice to the question with its target delimiter, " ".
MC_ROWS = [
    {"question": "Q: Which pet has friend of Tamo?\nA: friend of Tamo is Pela. pet of Pela is", "choices": ["dog", "cat", "goat"], "label": 0},
    {"question": "Q: What is 2 + 3?\nA: +4=8. ####", "choices": ["5", "7", "9"], "label": 0},
    {"question": "Q: The pet of friend of Suna is what?\nA: friend of Suna is", "choices": ["Jalo", "Mars", "Tamo"], "label": 0},
    {"question": "Q: Which pet has friend of Tamo?\nA: friend of Tamo is", "choices": ["Pela", "Suna"], "label": 1},
]
GEN_ROWS = [
    {"prompt": "Q: Which pet has friend of Tamo?\nA:", "answer": "dog"},
    {"prompt": "Q: The pet of friend of Suna is what?\nA:", "answer": "goat"},
    {"prompt": "Q: What is 2 + 3?\nA:", "answer": "5"},
]
MC_TASK = """task: micro_mc
dataset_path: json
dataset_kwargs: {{data_files: {{test: {data}}}}}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: label
metric_list:
  - {{metric: acc, aggregation: mean, higher_is_better: true}}
"""
GEN_TASK = r"""task: micro_gen
dataset_path: json
dataset_kwargs: {{data_files: {{test: {data}}}}}
test_split: test
output_type: generate_until
doc_to_text: "{{{{prompt}}}}"
doc_to_target: "{{{{answer}}}}"
generation_kwargs: {{until: ["\n"], max_gen_toks: 48}}
filter_list:
  - name: answer
    filter:
      - {{function: regex, regex_pattern: "#### (\\S+)"}}
      - {{function: take_first}}
metric_list:
  - {{metric: exact_match, aggregation: mean, higher_is_better: true}}
"""


@pytest.fixture(scope="module")
def student() -> HFStudent:
    return HFStudent.from_pretrained(ensure_world("default") / "student", dtype="float32", device="cpu", quiet=True)


@pytest.fixture(scope="module")
def tasks_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm-eval-tasks")
    for name, rows, template in (("micro_mc", MC_ROWS, MC_TASK), ("micro_gen", GEN_ROWS, GEN_TASK)):
        data = root / f"{name}.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
        (root / f"{name}.yaml").write_text(template.format(data=json.dumps(str(data))))
    return root


def _summed(student: HFStudent, ids: list[int], start: int) -> float:
    """Sum over t >= ``start`` of log p(ids[t] | ids[:t]), from one unpadded forward pass."""
    with torch.no_grad():
        logits = student.model(input_ids=torch.tensor([ids])).logits[0]
    logprobs = F.log_softmax(logits.double(), dim=-1)
    return sum(logprobs[t - 1, ids[t]].item() for t in range(start, len(ids)))


def _independent_logprob(student: HFStudent, context: str, continuation: str) -> float:
    prompt = train.encode_prompt(student.tokenizer, context)
    return _summed(student, prompt + train.encode_completion(student.tokenizer, continuation, eos=False), len(prompt))


def _requests(kind: str, args: list[tuple]) -> list[Instance]:
    return [Instance(request_type=kind, doc={}, arguments=a, idx=i) for i, a in enumerate(args)]


def test_loglikelihood_is_the_summed_token_logprob_and_greedy_is_exact(student):
    lm = StudentLM(student)
    pairs = [(r["question"], " " + c) for r in MC_ROWS for c in r["choices"]] + [("Q: What is 2 + 3?\nA:", " +4=8. #### 5 and more words")]
    got = lm.loglikelihood(_requests("loglikelihood", pairs))
    # One batch of mixed lengths (right padding) against one unpadded pass per pair.
    for (context, continuation), (logprob, _) in zip(pairs, got, strict=True):
        assert logprob == pytest.approx(_independent_logprob(student, context, continuation), abs=1e-4)

    prompt = "Q: Which pet has friend of Tamo?\nA:"
    ids = generate_tokens(student.model, student.tokenizer, [prompt], max_new_tokens=8)[0].token_ids
    greedy_text = student.tokenizer.decode(ids)
    assert train.encode_completion(student.tokenizer, greedy_text, eos=False) == ids, "the greedy text re-encodes to its tokens"
    other = student.tokenizer.decode(ids[:-1] + [(ids[-1] + 1) % len(student.tokenizer)])
    (_, greedy), (_, not_greedy), (empty, empty_greedy) = lm.loglikelihood(
        _requests("loglikelihood", [(prompt, greedy_text), (prompt, other), (prompt, "")])
    )
    assert greedy and not not_greedy
    assert (empty, empty_greedy) == (0.0, True)


def test_loglikelihood_rolling_scores_every_token_once_across_windows(student):
    lm = StudentLM(student)
    text = " ".join(f"friend of Tamo is Pela. pet of Pela is dog {i}." for i in range(80))
    ids = train.encode_completion(student.tokenizer, text, eos=False)
    length, prefix = lm.max_length, lm.prefix
    assert len(ids) > 2 * length and len(ids) % length, "the text needs several windows, the last one partial"
    (rolling,) = lm.loglikelihood_rolling(_requests("loglikelihood_rolling", [(text,)]))
    # Each token predicted once, after the prefix, with up to `length` tokens of input.
    seq, step, expected = prefix + ids, length - len(prefix), 0.0
    for p in range(0, len(ids), step):
        end = min(p + step, len(ids)) + len(prefix)
        first = max(0, end - length)
        expected += _summed(student, seq[first:end], p + len(prefix) - first)
    assert rolling == pytest.approx(expected, abs=1e-3)
    short = "friend of Tamo is Pela."
    (alone,) = lm.loglikelihood_rolling(_requests("loglikelihood_rolling", [(short,)]))
    assert alone == pytest.approx(lm.loglikelihood(_requests("loglikelihood", [("", short)]))[0][0], abs=1e-5)


def test_generate_until_stops_at_the_stop_string_and_max_gen_toks(student):
    lm = StudentLM(student)
    prompt = "Q: Which pet has friend of Tamo?\nA:"
    full = generate_tokens(student.model, student.tokenizer, [prompt], max_new_tokens=40)[0]
    assert "." in full.text and "####" in full.text
    cut, three, untouched = lm.generate_until(
        _requests(
            "generate_until",
            [(prompt, {"until": ["."], "max_gen_toks": 40}), (prompt, {"until": ["\n\n"], "max_gen_toks": 3}), (prompt, {"until": "<none>", "max_gen_toks": 40})],
        )
    )
    assert cut == full.text[: full.text.index(".")]
    assert three == student.tokenizer.decode(full.token_ids[:3], skip_special_tokens=True)
    assert untouched == full.text


def test_tasks_score_through_the_bridge(student, tasks_dir):
    results = evaluate(student, ["micro_mc", "micro_gen"], manager=task_manager(tasks_dir, include_defaults=False))["results"]
    acc, exact = results["micro_mc"]["acc,none"], results["micro_gen"]["exact_match,answer"]
    assert 0 <= acc <= 1 and 0 <= exact <= 1
    # The same metrics computed here: the most likely choice, and the greedy answer after ####.
    picks = [
        max(range(len(r["choices"])), key=lambda c, r=r: _independent_logprob(student, r["question"], " " + r["choices"][c]))
        for r in MC_ROWS
    ]
    assert acc == pytest.approx(sum(p == r["label"] for p, r in zip(picks, MC_ROWS, strict=True)) / len(MC_ROWS))
    outputs = [o.split("\n")[0] for o in student.generate([r["prompt"] for r in GEN_ROWS], 48)]
    answers = [m.group(1) if (m := re.search(r"#### (\S+)", o)) else o for o in outputs]
    assert exact == pytest.approx(sum(a == r["answer"] for a, r in zip(answers, GEN_ROWS, strict=True)) / len(GEN_ROWS))
    assert 0 < acc < 1 and 0 < exact < 1, "the rows tell a right model from a wrong one"


def test_a_task_whose_data_is_missing_is_bad_input(student, tmp_path):
    (tmp_path / "lost.yaml").write_text(MC_TASK.replace("micro_mc", "lost").format(data=json.dumps(str(tmp_path / "absent.jsonl"))))
    with pytest.raises(ConfigError, match=r"--tasks: a task's data could not be loaded.*absent\.jsonl"):
        evaluate(student, ["lost"], manager=task_manager(tmp_path, include_defaults=False))


def test_cli_prints_the_table_writes_json_and_refuses_bad_input(tasks_dir, tmp_path, capsys, monkeypatch):
    student_dir = ensure_world("default") / "student"
    out = tmp_path / "results.json"
    assert main(["eval", str(student_dir), "--tasks", "micro_mc", "--include-path", str(tasks_dir), "--limit", "2", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"\|micro_mc\s*\|.*\|acc\s*\|", printed)
    assert json.loads(out.read_text())["results"]["micro_mc"]["acc,none"] in (0.0, 0.5, 1.0)

    def refused(argv, argument):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and argument in err, err
        return err

    assert "micro_mc" in refused(["eval", str(student_dir), "--tasks", "micro_mcq", "--include-path", str(tasks_dir)], "--tasks")
    refused(["eval", str(tmp_path / "absent"), "--tasks", "micro_mc"], str(tmp_path / "absent"))
    refused(["eval", str(student_dir), "--tasks", "micro_mc", "--include-path", str(tmp_path / "absent")], "--include-path")
    refused(["eval", str(student_dir), "--tasks", "micro_mc", "--device", "gpu0"], "--device")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "lm_eval" else real(name, *a))
    assert "read-distill[eval]" in refused(["eval", str(student_dir), "--tasks", "micro_mc"], "lm_eval")

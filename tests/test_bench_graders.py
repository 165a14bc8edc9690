"""Benchmark graders other than BFCL: IFEval through if-verifiable's checkers (hand-made
compliant and non-compliant responses), GSM8K-style numbers, and multiple choice by the
student's log-prob (a tiny model built in-process). Offline."""

from __future__ import annotations

import json

import pytest

from read_distill.bench import export_rows, grader_lines
from read_distill.config import ConfigError
from read_distill.graders import GRADERS, answer_problem
from read_distill.graders.gsm8k import final_number
from read_distill.task_data import read_rows
from read_distill.tasks import load_card

LOWER = "the quick brown fox jumps over the lazy dog and then it runs back home across the green field"
#: (instruction, kwargs, a response that follows it, one that does not)
IFEVAL_CASES = [
    ("punctuation:no_comma", {}, "I like tea. I also like coffee.", "I like tea, and coffee."),
    ("change_case:english_lowercase", {}, LOWER, LOWER.replace("quick", "Quick")),
    ("change_case:english_capital", {}, LOWER.upper(), LOWER.upper().replace("FOX", "fox")),
    ("keywords:existence", {"keywords": ["banana", "kiwi"]}, "A banana and a kiwi.", "A banana and a pear."),
    ("keywords:forbidden_words", {"forbidden_words": ["apple"]}, "Pears are fine.", "An apple a day."),
    ("keywords:frequency", {"keyword": "cat", "frequency": 3, "relation": "at least"}, "cat cat cat", "cat cat"),
    ("length_constraints:number_words", {"num_words": 5, "relation": "less than"}, "Only four words here.", "This answer has far too many words in it."),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "First part.\n***\nSecond part.", "Just one part."),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "* one\n* two", "* one\n* two\n* three"),
    ("detectable_format:title", {}, "<<Ode to Tea>>\nTea is good.", "Ode to Tea\nTea is good."),
    ("detectable_format:json_format", {}, '{"answer": 42}', "The answer is 42."),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2}, "*one* and *two*", "*one* only"),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Hello.\nP.S. Bye.", "Hello. Bye."),
    ("detectable_content:number_placeholders", {"num_placeholders": 2}, "Dear [name], at [address].", "Dear [name]."),
    ("startend:end_checker", {"end_phrase": "Any other questions?"}, "Done. Any other questions?", "Any other questions? Done."),
    ("startend:quotation", {}, '"All of it quoted."', "Not quoted."),
    ("combination:repeat_prompt", {"prompt_to_repeat": "Name a fruit."}, "Name a fruit. Apple.", "Apple."),
    ("combination:two_responses", {}, "Tea is good.\n******\nCoffee is good.", "Tea is good."),
    ("language:response_language", {"language": "de"}, "Heute ist ein sehr schöner Tag und wir gehen zusammen in den großen Park.", "Today is a very nice day and we are all going to the big park together."),
]


def _ifeval(instructions: list[tuple[str, dict]]) -> str:
    return json.dumps({"instruction_id_list": [i for i, _ in instructions], "kwargs": [k for _, k in instructions]})


@pytest.mark.parametrize("instruction, kwargs, good, bad", IFEVAL_CASES, ids=[c[0] for c in IFEVAL_CASES])
def test_ifeval_checks_agree_with_hand_made_cases(instruction, kwargs, good, bad):
    answer = _ifeval([(instruction, kwargs)])
    assert answer_problem("ifeval", answer) is None
    assert GRADERS["ifeval"](answer, good) == 1.0
    assert GRADERS["ifeval"](answer, bad) == 0.0


def test_ifeval_is_strict_over_all_instructions_of_a_row():
    answer = _ifeval([("punctuation:no_comma", {}), ("keywords:existence", {"keywords": ["tea"]})])
    assert GRADERS["ifeval"](answer, "I drink tea.") == 1.0
    assert GRADERS["ifeval"](answer, "I drink coffee.") == 0.0  # one of two: the prompt fails
    assert GRADERS["ifeval"](answer, "I drink tea, hot.") == 0.0
    # Strict, not loose: IFEval's loose score would drop the capitalised first line.
    lower = _ifeval([("change_case:english_lowercase", {})])
    assert GRADERS["ifeval"](lower, "Sure! Here it is:\n" + LOWER) == 0.0
    assert GRADERS["ifeval"](lower, "") == 0.0


@pytest.mark.parametrize(
    "answer, needle",
    [
        ("not json", "not a JSON object"),
        (json.dumps({"instruction_id_list": ["punctuation:no_commas"], "kwargs": [{}]}), "unknown instruction 'punctuation:no_commas'"),
        (json.dumps({"instruction_id_list": ["punctuation:no_comma"], "kwargs": []}), "kwargs: expected"),
        (json.dumps({"instruction_id_list": ["keywords:existence"], "kwargs": [{"keyword": ["x"]}]}), "keywords:existence: kwargs"),
    ],
)
def test_ifeval_bad_answers_are_named(answer, needle):
    assert needle in answer_problem("ifeval", answer)


def test_ifeval_sentence_count_needs_nltk_data_or_works():
    """IFEval counts sentences with NLTK's punkt data, which NLTK downloads separately: a
    row that needs it is refused at load when it is missing, never scored 0 mid-run."""
    answer = _ifeval([("length_constraints:number_sentences", {"num_sentences": 3, "relation": "less than"})])
    problem = answer_problem("ifeval", answer)
    if problem is not None:
        assert "punkt_tab" in problem
    else:
        assert GRADERS["ifeval"](answer, "One. Two.") == 1.0


def test_ifeval_export_from_ifevals_own_rows(tmp_path):
    source = tmp_path / "ifeval.jsonl"
    kwargs = [{"num_highlights": None, "keywords": ["tea"], "relation": None}]  # the dataset's nulls
    source.write_text(json.dumps({"key": 1, "prompt": "Write about tea.", "instruction_id_list": ["keywords:existence"], "kwargs": kwargs}) + "\n")
    (row,) = export_rows("ifeval", source=source)
    assert row["grader"] == "ifeval" and GRADERS["ifeval"](row["answer"], "Tea is nice.") == 1.0
    source.write_text(json.dumps({"prompt": "Write.", "instruction_id_list": ["no:such"], "kwargs": [{}]}) + "\n")
    with pytest.raises(ConfigError, match=r"ifeval.jsonl:1: unknown instruction 'no:such'"):
        export_rows("ifeval", source=source)


@pytest.mark.parametrize(
    "text, number",
    [
        ("She has 3 apples, buys 4 more: 3 + 4 = 7.\n#### 7", 7.0),
        ("#### 1,234", 1234.0),
        ("It costs $18.50 in total. #### $18.50", 18.5),
        ("The answer is 12, not 13. #### -5 because", -5.0),
        ("First 10, then 20, so 30.", 30.0),  # no marker: the last number
        ("No number at all.", None),
        ("#### unknown", None),
    ],
)
def test_gsm8k_final_number(text, number):
    assert final_number(text) == number


def test_gsm8k_grades_the_final_number():
    grade = GRADERS["gsm8k"]
    solution = "Natalia sold 48/2 = 24 clips in May.\nShe sold 48+24 = 72 clips altogether.\n#### 72"
    assert grade(solution, "48 + 24 = 72. #### 72") == 1.0
    assert grade("72", "So the total is 72.0 clips.") == 1.0
    assert grade("72", "She sold 72 in April and 24 in May, 96") == 0.0  # the last number counts
    assert grade("72", "#### 71") == 0.0
    assert grade("1000", "#### 1,000") == 1.0
    assert answer_problem("gsm8k", "seventy-two") is not None


def test_gsm8k_export(tmp_path):
    source = tmp_path / "gsm8k.jsonl"
    rows = [{"question": "2 + 2?", "answer": "2 + 2 = 4\n#### 4"}, {"question": "Half of 3?", "answer": "#### 1.5"}]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert [(r["prompt"], r["answer"]) for r in export_rows("gsm8k", source=source)] == [("2 + 2?", "4"), ("Half of 3?", "1.5")]
    source.write_text(json.dumps({"question": "q"}) + "\n")
    with pytest.raises(ConfigError, match=r"gsm8k.jsonl:1: answer: missing"):
        export_rows("gsm8k", source=source)


def test_graders_are_listed_from_the_registry_and_unknown_names_refused(tmp_path):
    assert [line.split()[0] for line in grader_lines()] == sorted(GRADERS)
    (tmp_path / "card.yaml").write_text("name: t\ndescription: d\nrequirement: {math: 1}\nmetric: gsm8k\ndata: {dev: dev.jsonl, test: dev.jsonl}\n")
    (tmp_path / "dev.jsonl").write_text(json.dumps({"prompt": "p", "answer": "4", "grader": "gsm8K"}) + "\n")
    with pytest.raises(ConfigError, match=r"dev.jsonl:1: grader: unknown grader 'gsm8K'; expected one of bfcl, "):
        read_rows(tmp_path / "dev.jsonl", load_card(str(tmp_path / "card.yaml")))


def test_mc_export_and_answer_form(tmp_path):
    source = tmp_path / "mmlu.jsonl"
    source.write_text(json.dumps({"question": "2 + 2 =", "choices": ["3", "4", "5"], "answer": "B"}) + "\n")
    (row,) = export_rows("mc", source=source)
    assert row["prompt"] == "Question: 2 + 2 =\nAnswer:" and json.loads(row["answer"]) == {"choices": [" 3", " 4", " 5"], "label": 1}
    assert GRADERS["mc_logprob"](row["answer"], " 4") == 1.0 and GRADERS["mc_logprob"](row["answer"], " 3") == 0.0
    assert "label" in answer_problem("mc_logprob", json.dumps({"choices": ["a", "b"], "label": 2}))
    assert "choices" in answer_problem("mc_logprob", json.dumps({"choices": ["a", "a"], "label": 0}))


@pytest.mark.tiny
def test_mc_picks_the_choice_with_the_highest_mean_token_logprob(models):
    """The student's pick is the choice with the highest log-prob per token, computed here
    independently with one forward pass per (prompt, choice)."""
    import numpy as np
    import torch

    from read_distill.backends.hf import HFStudent
    from read_distill.ledger import Ledger
    from read_distill.probes import item_scores
    from read_distill.train import count_tokens, encode_completion, encode_prompt
    from read_distill.types import Item

    student = HFStudent.from_pretrained(models["student"], dtype="float32", device="cpu", quiet=True)
    tok = student.tokenizer
    questions = [("Question: What colour is the sky?\nAnswer:", [" blue", " green and yellow", " red"]), ("Question: 3 + 4 =\nAnswer:", [" 7", " 12", " 34", " 1"])]

    def mean_logprob(prompt: str, choice: str) -> float:
        p, c = encode_prompt(tok, prompt), encode_completion(tok, choice, eos=False)
        with torch.no_grad():
            logits = student.model(input_ids=torch.tensor([p + c])).logits[0].float().log_softmax(-1)
        return float(np.mean([logits[len(p) - 1 + j, t].item() for j, t in enumerate(c)]))

    best = [int(np.argmax([mean_logprob(q, c) for c in choices])) for q, choices in questions]
    ledger = Ledger(None, 10**9)
    for shift, expected in ((0, 100.0), (1, 0.0)):
        items = [
            Item(prompt=q, answer=json.dumps({"choices": c, "label": (b + shift) % len(c)}), grader="mc_logprob", capability="t")
            for (q, c), b in zip(questions, best, strict=True)
        ]
        scores = item_scores(student, items, 4, lambda texts: count_tokens(tok, texts), ledger, 0, "eval")
        assert scores == [expected, expected]
    # Every choice scored is charged with its prompt, once per choice (no generation).
    scored = sum(count_tokens(tok, [q] * len(c) + c) for q, c in questions)
    assert sum(e.tokens for e in ledger.entries) == 2 * scored


def test_readme_lists_the_registered_graders():
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    block = readme.split("<!-- graders: read-distill bench graders -->\n```\n", 1)[1].split("```\n<!-- /graders -->", 1)[0]
    assert block.splitlines() == grader_lines()


def test_bench_export_command(tmp_path, capsys):
    from read_distill.cli import main

    out = tmp_path / "rows.jsonl"
    assert main(["bench", "export", "bfcl", "--category", "multiple", "--out", str(out), "--limit", "3"]) == 0
    assert [json.loads(line)["grader"] for line in out.read_text().splitlines()] == ["bfcl"] * 3
    assert main(["bench", "export", "bfcl", "--category", "exec_simple", "--out", str(out)]) == 2
    assert "--category: expected one of simple_python" in capsys.readouterr().err

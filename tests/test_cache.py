"""The teacher-output cache: repeated prompts never reach the wrapped teacher, across reopens."""

from __future__ import annotations

from typing import Any

from read_distill.backends.cache import CachedTeacher, cache_key
from read_distill.types import Generation


class CountingTeacher:
    """A fake teacher that records every prompt it is asked for."""

    name = "counting"

    def __init__(self) -> None:
        self.calls = 0
        self.prompts: list[str] = []

    def generate(self, prompts: list[str], sampling: dict[str, Any]) -> list[Generation]:
        self.calls += 1
        self.prompts += prompts
        top = [{7: -0.1, 3: -2.5}] if sampling.get("top_logprobs") else None
        return [
            Generation(text=p.upper(), prompt_tokens=len(p), completion_tokens=1, top_logprobs=top) for p in prompts
        ]


SAMPLING = {"max_new_tokens": 8, "temperature": 0.0, "top_logprobs": 0}


def test_second_call_hits_and_never_calls_teacher(tmp_path):
    teacher = CountingTeacher()
    cached = CachedTeacher(teacher, tmp_path / "cache.sqlite")
    first = cached.generate(["a", "b"], SAMPLING)
    assert [g.cached for g in first] == [False, False]
    assert teacher.calls == 1
    second = cached.generate(["b", "a"], SAMPLING)
    assert teacher.calls == 1
    assert [g.cached for g in second] == [True, True]
    assert [g.text for g in second] == ["B", "A"]
    assert (second[0].prompt_tokens, second[0].completion_tokens) == (1, 1)
    assert (cached.hits, cached.misses) == (2, 2)


def test_mixed_batch_asks_only_for_misses_and_repeats_are_hits(tmp_path):
    teacher = CountingTeacher()
    cached = CachedTeacher(teacher, tmp_path / "cache.sqlite")
    cached.generate(["a"], SAMPLING)
    out = cached.generate(["a", "c", "c", "d"], SAMPLING)
    assert teacher.prompts == ["a", "c", "d"]
    assert [g.cached for g in out] == [True, False, True, False]
    assert [g.text for g in out] == ["A", "C", "C", "D"]


def test_survives_reopen(tmp_path):
    path = tmp_path / "sub" / "cache.sqlite"
    cached = CachedTeacher(CountingTeacher(), path)
    cached.generate(["x", "y"], {**SAMPLING, "top_logprobs": 2})
    cached.close()
    teacher = CountingTeacher()
    reopened = CachedTeacher(teacher, path)
    out = reopened.generate(["y"], {**SAMPLING, "top_logprobs": 2})
    assert teacher.calls == 0
    assert out[0].cached and out[0].text == "Y"
    assert out[0].top_logprobs == [{7: -0.1, 3: -2.5}]
    assert len(reopened) == 2


def test_key_depends_on_teacher_sampling_and_prompt(tmp_path):
    teacher = CountingTeacher()
    cached = CachedTeacher(teacher, tmp_path / "cache.sqlite")
    cached.generate(["a"], SAMPLING)
    cached.generate(["a"], {**SAMPLING, "temperature": 0.7})
    assert teacher.calls == 2
    # 8 and 8.0 are the same request.
    cached.generate(["a"], {**SAMPLING, "max_new_tokens": 8.0})
    assert teacher.calls == 2
    assert cache_key("t1", SAMPLING, "a") != cache_key("t2", SAMPLING, "a")
    assert cache_key("t1", SAMPLING, "a") != cache_key("t1", SAMPLING, "a ")

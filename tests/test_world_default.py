"""The shipped default micro-world: artefacts load, the manifest meets the acceptance bars,
and a quick re-measurement on held-out items agrees with the manifest."""

from __future__ import annotations

import math

import pytest

from read_distill.types import CAPABILITIES

pytestmark = pytest.mark.tiny


@pytest.fixture(scope="module")
def shipped():
    from read_distill.world.build import MANIFEST, load_manifest, shipped_world_dir

    d = shipped_world_dir("default")
    if not (d / MANIFEST).exists():
        pytest.skip("the default world is not built/shipped in this checkout")
    return d, load_manifest(d)


def test_checksums_match(shipped):
    from read_distill.world.build import _sha256_dir

    d, m = shipped
    for role in ("tokenizer", "teacher", "student"):
        assert _sha256_dir(d / role) == m["checksums"][role], role


def test_size_limit(shipped):
    d, _ = shipped
    total = sum(p.stat().st_size for p in d.rglob("*") if p.is_file())
    assert total <= 40 * 2**20


def test_teacher_mean_bar(shipped):
    _, m = shipped
    acc = m["teacher"]["accuracy"]
    assert set(acc) == set(CAPABILITIES)
    assert sum(acc.values()) / len(acc) >= 85, acc


def test_teacher_every_capability_bar(shipped):
    _, m = shipped
    acc = m["teacher"]["accuracy"]
    assert min(acc.values()) >= 60, acc


def test_student_bars(shipped):
    _, m = shipped
    t, s = m["teacher"]["accuracy"], m["student"]["accuracy"]
    assert all(5 <= v <= 60 for v in s.values()), s
    assert sum(t[c] - s[c] for c in CAPABILITIES) / len(CAPABILITIES) >= 25


def test_task_student_bars(shipped):
    _, m = shipped
    for name, v in m["tasks"].items():
        assert v["student"] <= 40, (name, v)


def test_task_teacher_bars(shipped):
    _, m = shipped
    for name, v in m["tasks"].items():
        assert v["teacher"] >= 70, (name, v)


def test_remeasure_sample_agrees(shipped):
    """Re-measure 16 held-out items per capability (the first rows of the manifest's split)
    through the run's backends: the manifest's figures are what a run sees."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from read_distill.backends.hf import HFStudent
    from read_distill.world import MAX_NEW_TOKENS
    from read_distill.world.build import accuracy

    d, m = shipped
    n = 16
    for role in ("teacher", "student"):
        tok = AutoTokenizer.from_pretrained(str(d / role))
        student = HFStudent(AutoModelForCausalLM.from_pretrained(str(d / role), dtype="float32"), tok, quiet=True)
        for c in CAPABILITIES:
            got = accuracy(student, lambda texts: 0, c, n, 0, MAX_NEW_TOKENS[c])
            p = m[role]["accuracy"][c] / 100
            tol = 100 * (3 * math.sqrt(max(p * (1 - p), 0.05) / n)) + 5
            assert abs(got - 100 * p) <= tol, (role, c, got, 100 * p)

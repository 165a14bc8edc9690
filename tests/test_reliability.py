"""Kill anywhere, resume exactly: crashes injected in each phase of a real tiny run, a real
SIGKILL, a full disk and a read-only run directory, each resumed and compared with an
uninterrupted run (``benchmarks/reliability.py`` does the same at random moments)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.numpy import load_file

from read_distill import runner
from read_distill.backends.cache import CachedTeacher
from read_distill.backends.hf import HFStudent
from read_distill.cli import main
from read_distill.config import load_config
from read_distill.ledger import Ledger
from read_distill.runner import MEASURED

pytestmark = pytest.mark.tiny

#: The benchmark's run: 5 rounds with replay and dev checkpoints; round 5 (which takes what
#: is left) needs two generate/train passes.
OVERRIDES = [
    "run.rounds=5",
    "run.dev_every=2",
    "world.kind=micro",
    "world.micro_size=tiny",
    "task.card=tool_math",
    "budget.total_tokens=1000",
    "policy.name=read",
    "probe.items_per_capability=2",
    "train.replay_frac=0.25",
    "generation.batch_size=8",
    "generation.max_new_tokens={general_knowledge: 12, steerability: 12, reasoning: 12, math: 12, code: 12, tool_use: 12, long_context: 12, multilingual: 12}",
]


class Killed(BaseException):
    """An injected crash: nothing in the run catches it, as nothing catches a kill."""


@pytest.fixture(scope="module")
def config():
    return load_config(None, OVERRIDES)


@pytest.fixture(scope="module")
def reference(config, tmp_path_factory):
    d = tmp_path_factory.mktemp("reference") / "run"
    runner.run(config, d, quiet=True)
    return d


def _files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file() and p.name != "run.lock"}


def assert_same_run(d: Path, ref: Path) -> None:
    """``d`` ended as the uninterrupted run ``ref``: the same files (no temporary left over),
    every round's files and ledger row, the summary and state but for wall times, and the
    student's weights bit for bit."""
    files, ref_files = _files(d), _files(ref)
    assert sorted(files) == sorted(ref_files)
    for name in ref_files:
        if name.startswith("rounds/") or name in ("ledger.jsonl", "student/policy.json", "config.yaml"):
            assert files[name] == ref_files[name], name
    for name in ("summary.json", "state.json"):
        got, want = json.loads(files[name]), json.loads(ref_files[name])
        # state.json keeps the measurements as wall_s and peak_mb, summary.json as MEASURED.
        for key in (*MEASURED, "peak_mb"):
            got.pop(key, None), want.pop(key, None)
        assert got == want, name
    weights, ref_weights = load_file(d / "student/model.safetensors"), load_file(ref / "student/model.safetensors")
    assert weights.keys() == ref_weights.keys()
    assert all((weights[k] == ref_weights[k]).all() for k in weights)


def crash_at(monkeypatch, owner, name: str, n: int, after: bool = False, when=lambda *a, **k: True) -> dict[str, int]:
    """Make ``owner.name`` raise Killed at its ``n``-th call for which ``when`` holds (after
    doing its work if ``after``); returns the call count."""
    real = getattr(owner, name)
    calls = {"n": 0}

    def wrapper(*args, **kwargs):
        if not when(*args, **kwargs):
            return real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == n and not after:
            raise Killed(name)
        out = real(*args, **kwargs)
        if calls["n"] == n:
            raise Killed(name)
        return out

    monkeypatch.setattr(owner, name, wrapper)
    return calls


def _probe_crashing_world(monkeypatch, n: int) -> None:
    make_world = runner.make_world

    def world_with_crash(config):
        world = make_world(config)
        crash_at(monkeypatch, world, "probe", n)
        return world

    monkeypatch.setattr(runner, "make_world", world_with_crash)


@pytest.mark.parametrize(
    "phase",
    [
        "generation",  # mid-round: one teacher batch cached, no examples saved yet
        "training",  # round 2's training charged, the round not committed
        "probe",  # round 5, after both its passes were saved and trained
        "checkpoint",  # round 3's student saved beside the last one, not renamed in
        "passes.json",  # round 5's second pass: its examples written, passes.json not
        "report",  # summary.json written, report.html not
    ],
)
def test_crash_in_each_phase_resumes_as_uninterrupted(config, reference, tmp_path, monkeypatch, phase):
    with monkeypatch.context() as m:
        if phase == "generation":
            crash_at(m, CachedTeacher, "generate", 4, after=True)
        elif phase == "training":
            crash_at(m, HFStudent, "fit", 2, after=True)
        elif phase == "probe":
            _probe_crashing_world(m, 6)
        elif phase == "checkpoint":
            crash_at(m, HFStudent, "save", 4, after=True)
        elif phase == "passes.json":
            crash_at(m, runner, "write_json", 2, when=lambda path, obj: path == tmp_path / "r/rounds/0005/passes.json")
        else:
            import read_distill.report

            crash_at(m, read_distill.report, "write_report", 1)
        with pytest.raises(Killed):
            runner.run(config, tmp_path / "r", quiet=True)
    runner.run(config, tmp_path / "r", quiet=True, resume=True)
    assert_same_run(tmp_path / "r", reference)


def test_crash_while_replacing_a_checkpoint_twice_keeps_the_committed_one(config, reference, tmp_path, monkeypatch):
    """A crash between the renames of a checkpoint commit, then another in the redone
    commit: the last committed round's checkpoint must survive both."""
    d = tmp_path / "r"
    into_student = lambda self, target: Path(target).name == "student"  # noqa: E731
    for n in (4, 1):  # round 3's commit (rounds 0..2 renamed first), then the redone one
        with monkeypatch.context() as m:
            crash_at(m, Path, "rename", n, when=into_student)
            with pytest.raises(Killed):
                runner.run(config, d, quiet=True, resume=(d / "state.json").exists())
        assert not (d / "student").exists() and json.loads((d / "state.json").read_text())["round"] == 2
    runner.run(config, d, quiet=True, resume=True)
    assert_same_run(d, reference)


def test_sigkill_of_a_real_process_resumes_as_uninterrupted(config, reference, tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("{}\n")
    d = tmp_path / "r"
    command = [sys.executable, "-m", "read_distill", "run", str(cfg), *OVERRIDES, "--run-dir", str(d), "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "READ_DISTILL_THREADS": "1"}
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
    # Killed once round 2's examples are saved: mid-round, between generation and commit.
    deadline = time.monotonic() + 120
    while not (d / "rounds/0002/passes.json").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, proc.stderr.read().decode()
    done = subprocess.run([*command, "--resume"], env=env, capture_output=True, text=True)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert_same_run(d, reference)


def test_temporary_files_of_a_killed_write_are_removed_on_resume(config, reference, tmp_path):
    d = tmp_path / "r"
    runner.run(config, d, quiet=True, stop_after_round=2)
    (d / ".state.json.k2j3h4.tmp").write_text('{"round"')
    (d / "rounds/0002/.examples.jsonl.a8s7d6.tmp").write_text("")
    runner.run(config, d, quiet=True, resume=True)
    assert_same_run(d, reference)


def test_resuming_a_finished_run_changes_nothing(config, reference, tmp_path):
    d = tmp_path / "r"
    shutil.copytree(reference, d)
    before = _files(d)
    runner.run(config, d, quiet=True, resume=True)
    assert _files(d) == before


def test_a_torn_last_ledger_line_is_dropped(tmp_path):
    path = tmp_path / "ledger.jsonl"
    path.write_text('{"round": 1, "phase": "train", "tokens": 5, "billable": 5, "cached": false}\n{"round": 2, "pha')
    ledger = Ledger(path, 100)
    assert ledger.spent == 5 and len(ledger.entries) == 1
    ledger.charge(2, "train", 3, 3)
    ledger.close()
    assert [json.loads(line)["tokens"] for line in path.read_text().splitlines()] == [5, 3]


@pytest.mark.parametrize(("code", "fsync"), [(errno.ENOSPC, 9), (errno.EROFS, 25)])
def test_disk_full_or_read_only_stops_with_one_line_and_resumes(config, reference, tmp_path, monkeypatch, capsys, code, fsync):
    """From the ``fsync``-th on, every fsync fails as on a full (or read-only) disk: the
    atomic writes and the ledger's sync. The CLI says so in one line, exit 2, nothing
    half-written is left, and the run resumes exactly once the disk is writable again."""
    cfg = tmp_path / "run.yaml"
    cfg.write_text("{}\n")
    d = tmp_path / "r"
    argv = ["run", str(cfg), *OVERRIDES, "--run-dir", str(d), "--quiet"]
    real = os.fsync
    calls = {"n": 0}

    def failing(fd):
        calls["n"] += 1
        if calls["n"] >= fsync:
            raise OSError(code, os.strerror(code))
        real(fd)

    with monkeypatch.context() as m:
        m.setattr(os, "fsync", failing)
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and os.strerror(code) in err and f"--resume --run-dir {d}" in err, err
    assert not list(d.rglob(".*.tmp"))
    assert main([*argv, "--resume"]) == 0
    assert_same_run(d, reference)


def test_read_only_run_dir_stops_with_one_line_and_resumes(config, reference, tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root writes through a read-only mode; the EROFS case above covers the message and the resume")
    cfg = tmp_path / "run.yaml"
    cfg.write_text("{}\n")
    d = tmp_path / "r"
    argv = ["run", str(cfg), *OVERRIDES, "--run-dir", str(d), "--quiet"]
    runner.run(load_config(None, OVERRIDES), d, quiet=True, stop_after_round=2)
    dirs = [d, *(p for p in d.rglob("*") if p.is_dir())]
    for p in dirs:
        p.chmod(0o555)
    try:
        assert main([*argv, "--resume"]) == 2
    finally:
        for p in dirs:
            p.chmod(0o755)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--resume --run-dir {d}" in err, err
    assert main([*argv, "--resume"]) == 0
    assert_same_run(d, reference)


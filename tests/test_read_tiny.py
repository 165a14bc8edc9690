"""The ReAD loop on real (tiny) models: the embedded tiny world, built in seconds."""

from __future__ import annotations

import json

import pytest
import yaml

from read_distill.config import load_config
from read_distill.runner import MEASURED, run

pytestmark = pytest.mark.tiny

CARD = """name: tiny_tool_math
description: tool call with an arithmetic argument (tiny test card)
requirement: {tool_use: 0.5, math: 0.5}
metric: tool_call
data: {generator: tool_math, dev_size: 3, test_size: 4, seed: 0}
"""


@pytest.fixture(scope="module")
def card(tmp_path_factory):
    path = tmp_path_factory.mktemp("card") / "tiny_tool_math.yaml"
    path.write_text(CARD)
    return path


def _config(card, *overrides):
    return load_config(None, _overrides(card, *overrides))


def _overrides(card, *overrides):
    return [
            "world.kind=micro",
            "world.micro_size=tiny",
            f"task.card={card}",
            "run.rounds=3",
            "run.dev_every=2",
            "budget.total_tokens=600",
            "probe.items_per_capability=2",
            "generation.batch_size=8",
            "generation.max_new_tokens={general_knowledge: 12, steerability: 12, reasoning: 12, math: 12, code: 12, tool_use: 12, long_context: 12, multilingual: 12}",
            *overrides,
        ]


def _comparable(summary):
    return {k: v for k, v in summary.items() if k not in MEASURED}


def test_three_rounds_generate_train_probe_reward(card, tmp_path):
    summary = run(_config(card, "train.replay_frac=0.25"), tmp_path / "r", quiet=True)
    assert summary["ledger"]["billable"] <= 600
    kinds = {json.loads(line)["capability"] for line in (tmp_path / "r/rounds/0001/examples.jsonl").read_text().splitlines()}
    assert "replay" in kinds and len(kinds) > 1, "replay data is mixed with the teacher's examples"
    assert summary["ledger"]["train"] > 0 and summary["ledger"]["teacher_gen"] > 0
    assert summary["ledger"]["probe"] > 0 and summary["ledger"]["eval"] > 0
    for t in (1, 2, 3):
        reward = json.loads((tmp_path / f"r/rounds/{t:04d}/reward.json").read_text())
        assert reward["spent_tokens"] > 0 and reward["trained_tokens"] > 0
    assert (tmp_path / "r/student/model.safetensors").exists()
    assert (tmp_path / "r/report.html").exists()


def test_same_seed_same_run_and_resume_equals_uninterrupted(card, tmp_path):
    config = _config(card, "policy.name=random")
    whole = run(config, tmp_path / "whole", quiet=True)
    again = run(config, tmp_path / "again", quiet=True)
    assert _comparable(again) == _comparable(whole)
    stopped = tmp_path / "stopped"
    run(config, stopped, quiet=True, stop_after_round=1)
    resumed = run(config, stopped, quiet=True, resume=True)
    assert _comparable(resumed) == _comparable(whole)
    ledger = lambda d: [json.loads(x) for x in (d / "ledger.jsonl").read_text().splitlines()]  # noqa: E731
    assert [(e["round"], e["phase"], e["billable"]) for e in ledger(stopped)] == [
        (e["round"], e["phase"], e["billable"]) for e in ledger(tmp_path / "whole")
    ]


def test_compare_gives_each_method_its_objective_and_resumes(card, tmp_path):
    from read_distill.experiments.compare import compare
    from read_distill.experiments.methods import method_config

    config = _config(card)
    methods = ["read", "cot_sft", "logit_kd"]
    whole = compare(config, methods, [0], tmp_path / "whole", quiet=True)
    runs = tmp_path / "whole" / "600"
    saved = {m: yaml.safe_load((runs / m / "seed0" / "config.yaml").read_text()) for m in methods}
    assert (saved["logit_kd"]["train"]["signal"], saved["logit_kd"]["train"]["objective"]) == ("logit", "kd")
    assert saved["cot_sft"]["policy"]["name"] == "one_hot" and saved["read"]["train"]["objective"] == "sft"
    # Same seed, same data: only the objective differs, and so do the students it trained.
    weights = {m: (runs / m / "seed0" / "student" / "model.safetensors").read_bytes() for m in ("cot_sft", "logit_kd")}
    assert weights["cot_sft"] != weights["logit_kd"]
    stopped = tmp_path / "cut" / "600" / "logit_kd" / "seed0"
    run(method_config(config, "logit_kd", 0), stopped, quiet=True, stop_after_round=1)
    cut = compare(config, methods, [0], tmp_path / "cut", quiet=True)
    assert json.dumps(cut["tables"]) == json.dumps(whole["tables"])
    assert (tmp_path / "whole" / "comparison.html").exists()


def test_on_policy_distillation_trains_on_the_students_samples_and_resumes(card, tmp_path):
    import torch

    from read_distill.backends.hf import HFStudent, HFTeacher
    from read_distill.config import with_overrides
    from read_distill.train import encode_completion, encode_prompt, kl_reverse
    from read_distill.world.build import ensure_world

    config = with_overrides(_config(card, "train.signal=on_policy", "train.objective=reverse_kl", "train.lr=3e-3"), ["budget.total_tokens=1500"], "test")
    whole = run(config, tmp_path / "whole", quiet=True)
    stopped = tmp_path / "stopped"
    run(config, stopped, quiet=True, stop_after_round=1)
    assert _comparable(run(config, stopped, quiet=True, resume=True)) == _comparable(whole)
    world = ensure_world("tiny", 0)
    base = HFStudent.from_pretrained(world / "student", config=config.train, seed=0, quiet=True)
    teacher = HFTeacher.from_pretrained(world / "teacher")
    # The round's text is the student's own samples, not what the teacher would write.
    rows = [json.loads(x) for x in (tmp_path / "whole/rounds/0001/examples.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["capability"] != "replay"]
    written = teacher.generate([r["prompt"] for r in rows], {"max_new_tokens": 12})
    assert rows and sum(g.text == r["completion"] for g, r in zip(written, rows, strict=True)) < len(rows) / 2
    # And training on them moved the student towards the teacher: reverse KL on fresh samples falls.
    trained = HFStudent.from_pretrained(tmp_path / "whole/student", config=config.train, seed=0, quiet=True)
    prompts = [json.loads(x)["prompt"] for x in (tmp_path / "whole/rounds/0003/examples.jsonl").read_text().splitlines()][:16]

    def reverse_kl(student):
        total = n = 0.0
        for p, g in zip(prompts, student.sample(prompts, 12, 7), strict=True):
            ids = torch.tensor([encode_prompt(student.tokenizer, p) + encode_completion(student.tokenizer, g.text)])
            k = ids.shape[1] - len(encode_prompt(student.tokenizer, p))
            with torch.no_grad():
                s, t = (m(input_ids=ids).logits[0, -k - 1 : -1] for m in (student.model, teacher.model))
            total, n = total + kl_reverse(s, t, 1.0).sum().item(), n + k
        return total / n

    assert reverse_kl(trained) < reverse_kl(base)


def _launch(processes, run_dir, overrides, stop=None, resume=False, env=None):
    """``tests/launch_run.py`` under torchrun with ``processes`` CPU processes (gloo);
    ``env`` adds environment variables (accelerate's FSDP settings)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).with_name("launch_run.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}", str(script),
           str(run_dir), "-" if stop is None else str(stop), "resume" if resume else "fresh", *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-6000:]
    return json.loads((run_dir / "summary.json").read_text()) if stop is None else None


def test_two_processes_run_the_loop_as_one_and_resume(card, tmp_path):
    from safetensors.torch import load_file

    overrides = _overrides(card, "policy.name=read", "train.batch_size=4")
    one = run(load_config(None, overrides), tmp_path / "one", quiet=True)
    two = _launch(2, tmp_path / "two", overrides)
    # The controller chose, charged and wrote as one process does: same allocations, the
    # same global ledger, the same profiles; the data-parallel student ends where the
    # single-process one does, up to the order of float sums.
    assert two["allocations"] == one["allocations"] and two["ledger"] == one["ledger"]
    assert two["profiles"] == one["profiles"] and two["final_utility"] == one["final_utility"]
    ledger = lambda d: [(e["round"], e["phase"], e["tokens"], e["billable"]) for e in map(json.loads, (d / "ledger.jsonl").read_text().splitlines())]  # noqa: E731
    assert ledger(tmp_path / "two") == ledger(tmp_path / "one")
    # Each rank's own peak memory per phase, rank 0's first.
    per_rank = two["peak_memory_mb_per_rank"]
    assert len(per_rank) == 2 and per_rank[0] == two["peak_memory_mb"] and all(r["train"] > 0 for r in per_rank)
    assert "peak_memory_mb_per_rank" not in one
    w1, w2 = (load_file(tmp_path / d / "student" / "model.safetensors") for d in ("one", "two"))
    assert max((w1[k] - w2[k]).abs().max().item() for k in w1) < 1e-4
    # Killed after round 1 and resumed under two processes: the same run.
    _launch(2, tmp_path / "cut", overrides, stop=1)
    resumed = _launch(2, tmp_path / "cut", overrides, resume=True)
    assert _comparable(resumed) == _comparable(two)


#: What ``accelerate launch --config_file configs/accelerate/fsdp.yaml`` exports to each
#: process, and the switch in tests/launch_run.py that lets accelerate (GPUs only) shard on the CPU.
FSDP_ENV = {
    "ACCELERATE_USE_FSDP": "true",
    "FSDP_VERSION": "2",
    "FSDP_AUTO_WRAP_POLICY": "TRANSFORMER_BASED_WRAP",
    "FSDP_RESHARD_AFTER_FORWARD": "true",
    "READ_DISTILL_TEST_FSDP_ON_CPU": "1",
}


def _fsdp_on_cpu():
    """Why torch cannot run FSDP2 on the CPU here, or None where it can."""
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_gloo_available():
        return "torch was built without torch.distributed/gloo"
    try:
        from torch.distributed.fsdp import fully_shard  # noqa: F401
    except ImportError:
        return "this torch has no FSDP2 (torch.distributed.fsdp.fully_shard)"
    return None


@pytest.mark.skipif(_fsdp_on_cpu() is not None, reason=f"FSDP on the CPU: {_fsdp_on_cpu()}")
def test_two_processes_with_a_sharded_student_run_the_loop_as_one_and_resume(card, tmp_path):
    import torch
    from safetensors.torch import load_file

    # One example per forward and 3 per batch: the ranks' shares (2 and 1) take different
    # numbers of forwards, which a sharded student must still run in lockstep.
    overrides = _overrides(card, "policy.name=read", "train.batch_size=3", "train.micro_batch_tokens=64")
    one = run(load_config(None, overrides), tmp_path / "one", quiet=True)
    two = _launch(2, tmp_path / "two", overrides, env=FSDP_ENV)
    # Sharded weights and AdamW, gathered for every probe, evaluation and checkpoint: the
    # controller chose, charged and wrote as one process does.
    assert two["allocations"] == one["allocations"] and two["ledger"] == one["ledger"]
    assert two["profiles"] == one["profiles"] and two["final_utility"] == one["final_utility"]
    ledger = lambda d: [(e["round"], e["phase"], e["tokens"], e["billable"]) for e in map(json.loads, (d / "ledger.jsonl").read_text().splitlines())]  # noqa: E731
    assert ledger(tmp_path / "two") == ledger(tmp_path / "one")
    # The checkpoint is the one a single process writes: same files, same keys, whole tensors.
    student = {d: tmp_path / d / "student" for d in ("one", "two")}
    assert sorted(p.name for p in student["two"].iterdir()) == sorted(p.name for p in student["one"].iterdir())
    w1, w2 = (load_file(student[d] / "model.safetensors") for d in ("one", "two"))
    assert w1.keys() == w2.keys() and max((w1[k] - w2[k]).abs().max().item() for k in w1) < 1e-4
    s1, s2 = (torch.load(student[d] / "train_state.pt", weights_only=True) for d in ("one", "two"))
    assert s1["optimizer_steps"] == s2["optimizer_steps"]
    o1, o2 = s1["optimizer"]["state"], s2["optimizer"]["state"]
    assert o1.keys() == o2.keys() and all(o1[i][k].shape == o2[i][k].shape for i in o1 for k in o1[i])
    # Killed after round 1 and resumed under FSDP (the moments cut back into shards): the same run.
    _launch(2, tmp_path / "cut", overrides, stop=1, env=FSDP_ENV)
    resumed = _launch(2, tmp_path / "cut", overrides, resume=True, env=FSDP_ENV)
    assert _comparable(resumed) == _comparable(two)
    assert (tmp_path / "cut/student/model.safetensors").read_bytes() == (tmp_path / "two/student/model.safetensors").read_bytes()

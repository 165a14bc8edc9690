"""The tiny micro-world: built in seconds, loads with transformers, deterministic from its seed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.tiny


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    from read_distill.world.build import build_world

    out = tmp_path_factory.mktemp("tiny-world")
    manifest = build_world(out, "tiny", seed=0, progress=False)
    return out, manifest


def test_manifest_fields(tiny_world):
    from read_distill.types import CAPABILITIES
    from read_distill.world import COMPOSITE_TASKS
    from read_distill.world.build import load_manifest

    out, manifest = tiny_world
    assert load_manifest(out) == json.loads(json.dumps(manifest))
    for role in ("teacher", "student"):
        assert set(manifest[role]["accuracy"]) == set(CAPABILITIES)
        assert all(0 <= v <= 100 for v in manifest[role]["accuracy"].values())
        assert manifest[role]["tokens_seen"] > 0 and manifest[role]["params"] > 0
    assert set(manifest["tasks"]) == set(COMPOSITE_TASKS)
    assert manifest["teacher"]["params"] > manifest["student"]["params"]
    assert set(manifest["checksums"]) == {"tokenizer", "teacher", "student"}


def test_loads_with_auto_classes(tiny_world):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, _ = tiny_world
    tok = AutoTokenizer.from_pretrained(str(out / "tokenizer"))
    assert tok.pad_token_id is not None and tok.bos_token_id is not None and tok.eos_token_id is not None
    text = "Q: Start at 15. Add 27. Result?\nA: 15+27=42. #### 42"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    digits = [t for t in tok.convert_ids_to_tokens(ids) if any(ch.isdigit() for ch in t)]
    assert all(len(t.lstrip("Ġ")) == 1 for t in digits), "digits are split one per token"
    for role in ("teacher", "student"):
        model = AutoModelForCausalLM.from_pretrained(str(out / role))
        assert model.config.model_type == "llama"
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits
        assert logits.shape == (1, len(ids), model.config.vocab_size)


def test_tokenizer_round_trips_save_pretrained(tiny_world, tmp_path):
    from transformers import PreTrainedTokenizerFast

    out, _ = tiny_world
    tok = PreTrainedTokenizerFast.from_pretrained(str(out / "tokenizer"))
    tok.save_pretrained(str(tmp_path))
    tok2 = PreTrainedTokenizerFast.from_pretrained(str(tmp_path))
    s = "Tools: feed(pet, count)\nRequest: feed the owl 12 times.\nA: use feed. #### feed(pet='owl', count=12)"
    assert tok(s)["input_ids"] == tok2(s)["input_ids"]
    assert len(tok) == len(tok2)


def test_deterministic_from_seed(tiny_world, tmp_path):
    from read_distill.world.build import build_world

    _, manifest = tiny_world
    again = build_world(tmp_path / "again", "tiny", seed=0, progress=False)
    assert again["checksums"] == manifest["checksums"]
    assert again["teacher"]["accuracy"] == manifest["teacher"]["accuracy"]
    other = build_world(tmp_path / "other", "tiny", seed=1, progress=False)
    assert other["checksums"]["teacher"] != manifest["checksums"]["teacher"]


def test_eval_command_reproduces_the_manifest(tiny_world, capsys):
    """`world eval` measures through the run's backends; the manifest's figures are its figures."""
    from read_distill.world.build import main

    out, manifest = tiny_world
    for role in ("teacher", "student"):
        assert main(["eval", "--dir", str(out), "--model", role, "--json"]) == 0
        printed = json.loads(capsys.readouterr().out)
        assert printed["accuracy"] == manifest[role]["accuracy"]
        assert printed["tasks"] == manifest[role]["tasks"]
    assert main(["eval", "--dir", str(out), "--model", str(out / "missing")]) == 2
    assert "holds no model" in capsys.readouterr().err


def test_info_command(tiny_world, capsys):
    from read_distill.world.build import main

    out, manifest = tiny_world
    assert main(["info", "--dir", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["teacher"]["accuracy"] == manifest["teacher"]["accuracy"]
    assert main(["info", "--dir", str(out / "missing")]) == 2


def test_transfer_study_runs(tiny_world, tmp_path):
    """The transfer-study pipeline end to end on the tiny world (numbers are meaningless here)."""
    from read_distill.types import CAPABILITIES
    from read_distill.world.transfer import CONTROL, merge, run_study, summarise

    out, _ = tiny_world
    studies = [  # with progress lines, which once failed on the control row
        run_study(out, [60, 120, 180], [s], ["math", CONTROL], lr=1e-3, replay_frac=0.25, n_items=2,
                  cache=tmp_path / "pools", progress=True, pool_size=8)
        for s in (0, 1)
    ]
    study = merge(studies)
    assert study["seeds"] == [0, 1]
    for b in ("60", "120", "180"):
        for distilled in ("math", CONTROL):
            row = study["matrix"][b][distilled]
            assert set(row) == set(CAPABILITIES)
            assert all(lo <= mu <= hi for mu, lo, hi in row.values())
    text = summarise(study)
    assert "Return curves" in text
    # math's 7 off-diagonals, each against the control's change of the same capability
    m = study["matrix"]["180"]
    rel = [m["math"][j][0] - m[CONTROL][j][0] for j in CAPABILITIES if j != "math"]
    assert f"Against the replay-only control: {sum(v < 0 for v in rel)} of 7 negative" in text
    assert any((tmp_path / "pools").iterdir()), "teacher completions are cached"


def test_cached_world_with_a_stale_recipe_is_rebuilt(tmp_path, monkeypatch):
    from read_distill.world.build import MANIFEST, ensure_world, load_manifest, recipe_fingerprint

    monkeypatch.setenv("READ_DISTILL_CACHE", str(tmp_path))
    d = ensure_world("tiny", seed=3)
    assert load_manifest(d)["recipe"] == recipe_fingerprint("tiny")
    stale = load_manifest(d) | {"recipe": "from-older-generators"}
    (d / MANIFEST).write_text(json.dumps(stale))
    assert ensure_world("tiny", seed=3) == d
    assert load_manifest(d)["recipe"] == recipe_fingerprint("tiny")
    assert not d.with_name(d.name + ".building").exists()


def test_lookup_probe_formats_are_what_docs_say():
    """docs/lookup_probe.py (the evidence for long_context's format): every format builds
    tables with distinct keys from its key pool and values from its value pool, and every
    asked record is answered from the table."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "docs" / "lookup_probe.py"
    spec = importlib.util.spec_from_file_location("lookup_probe", path)
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    for fmt, (keys, values, (lo, hi)) in probe.FORMATS.items():
        for i in range(20):
            prompt, completion = probe.pair(fmt, i)
            records = prompt.split("\n")[0].split(": ", 1)[1].rstrip(".").split(". ")
            table = dict(r.split() for r in records)
            assert len(table) == len(records) and lo <= len(table) <= hi
            assert set(table) <= set(keys) and set(table.values()) <= set(values)
            for answered in completion.strip().rstrip(".").split(". "):
                key, value = answered.split()
                assert table[key] == value, (fmt, prompt, completion)


@pytest.mark.parametrize("adds_bos", [True, False])
def test_build_path_and_run_path_feed_identical_ids(adds_bos):
    """The world build trains (fit_stream) and a run generates (generate_batched) on the same
    prompt ids, and whether they start with <bos> is the tokenizer's decision alone."""
    import copy

    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    from read_distill.backends.hf import generate_batched
    from read_distill.config import TrainConfig
    from read_distill.train import fit_stream
    from read_distill.world.model import ModelSize, new_model, train_tokenizer, world_texts

    tok = train_tokenizer(world_texts(4), 300)
    if not adds_bos:
        backend = copy.deepcopy(tok.backend_tokenizer)
        backend.post_processor = processors.TemplateProcessing(single="$A", pair="$A $B", special_tokens=[])
        tok = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>")
    model = new_model(ModelSize(16, 1, 2, 32), len(tok), seed=0)
    seen: list[list[int]] = []
    model.model.register_forward_pre_hook(
        lambda _m, _a, kwargs: seen.append(kwargs["input_ids"][0].tolist()), with_kwargs=True
    )
    prompt, completion = "Q: What is 2 plus 3?\nA:", " 5"
    fit_stream(model, tok, lambda i: (prompt, completion), 2, TrainConfig(batch_size=1, mixed_precision="no"), quiet=True)
    trained = seen[0]
    seen.clear()
    generate_batched(model, tok, [prompt], max_new_tokens=1)
    fed = seen[0]
    prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    assert fed == ([tok.bos_token_id] if adds_bos else []) + prompt_ids
    assert trained[: len(fed)] == fed

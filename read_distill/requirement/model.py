"""g_φ: task card text -> requirement vector (docs/method.md §3).

g(card) = softmax(MLP((embed(card) − μ) / σ)), with ``embed`` the frozen sentence encoder
(mean pooling), μ and σ the mean and RMS spread of the training cards' embeddings, and the
MLP two linear layers with a tanh between. Trained on the intervention set (``collect``)
with

    L = mean over rows of ((ΔU − a_τ·g(card)·Δs) / s)²  +  λ_ent · mean over cards of H(g(card))

— the paper's Σ (ΔU − g·Δs)² + λ_ent·H(g) with the squared error divided by the number of
rows and by s², the RMS of the training rows' ΔU, so that λ_ent does not depend on the
task's score scale, and with a gain a_τ > 0 per training card (``TrainSettings.gain``,
"card"; "none" fixes a_τ = 1, the paper's loss). The gain separates how much a task's
utility moves from which capabilities move it: with a_τ = 1 a task whose utility moves
less than its probes can only shrink g·Δs by putting weight on a capability the
interventions never moved. Only g is kept; a_τ is reported. Whole cards are held out
(``holdout``): none of their rows trains.

Saved as ``model.safetensors`` (the MLP, μ and σ) and ``model.json`` (capabilities, the
encoder and its weights' checksum, sizes, training cards, settings, losses and a per-card
report). Only the card's text goes into the encoder (:func:`card_text`), never its
requirement.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from read_distill.config import ConfigError
from read_distill.tasks import TaskCard

FORMAT = "read-distill requirement model"
VERSION = 1
MODEL_FILE, META_FILE = "model.safetensors", "model.json"


def card_text(card: TaskCard) -> str:
    """What the encoder reads of a card: its name, description, input and output format."""
    parts = [card.name.replace("_", " ") + ".", card.description.strip()]
    if card.input_format.strip():
        parts.append(f"Input: {card.input_format.strip()}")
    if card.output_format.strip():
        parts.append(f"Output: {card.output_format.strip()}")
    return " ".join(parts)


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class TrainSettings:
    """How g_φ is fitted (full-batch AdamW on the training rows)."""

    hidden: int = 64
    lambda_ent: float = 0.01
    #: "card": each training card has a gain a_τ > 0 of its own (ΔU ≈ a_τ·g·Δs), so that
    #: g is a direction and a capability the interventions never moved is no sink for a
    #: task whose utility moves less than its probes; "none": the paper's loss (a_τ = 1).
    gain: str = "card"
    #: Points of RMS below which a card's ΔU, or a capability's Δs, counts as unmoved.
    min_signal: float = 1.0
    weight_decay: float = 1e-2
    lr: float = 1e-2
    epochs: int = 1500
    seed: int = 0

    def check(self) -> None:
        for name, ok in (("hidden", self.hidden >= 1), ("lambda_ent", self.lambda_ent >= 0), ("weight_decay", self.weight_decay >= 0),
                         ("lr", self.lr > 0), ("epochs", self.epochs >= 1), ("seed", self.seed >= 0),
                         ("gain", self.gain in ("card", "none")), ("min_signal", self.min_signal >= 0)):
            if not ok or (isinstance(getattr(self, name), float) and not math.isfinite(getattr(self, name))):
                raise ConfigError(f"--{name.replace('_', '-')}: {getattr(self, name)!r} is out of range")


def masked_softmax(logits: Any, active: Any) -> Any:
    """softmax over the active capabilities; 0 on the others."""
    import torch

    return torch.softmax(logits.masked_fill(active <= 0, float("-inf")), dim=-1)


def _mlp(dim: int, hidden: int, n: int) -> Any:
    import torch

    return torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, n))


def loss_terms(
    g_rows: Any, delta_s: Any, delta_u: Any, g_cards: Any, scale: float, lambda_ent: float, gain_rows: Any = None
) -> tuple[Any, Any, Any]:
    """(total, fit, entropy) of the loss above: ``g_rows`` is g of each row's card (n × C),
    ``delta_s`` the rows' Δs (n × C), ``delta_u`` their ΔU (n), ``g_cards`` g of each
    training card once (its entropy term); ``gain_rows`` (n), where given, is each row's
    card gain a_τ (the fit is then ΔU − a_τ·g·Δs)."""
    import torch

    predicted = (g_rows * delta_s).sum(-1)
    if gain_rows is not None:
        predicted = gain_rows * predicted
    fit = (((delta_u - predicted) / scale) ** 2).mean()
    entropy = -(g_cards * torch.log(g_cards.clamp_min(1e-12))).sum(-1).mean()
    return fit + lambda_ent * entropy, fit, entropy


class RequirementModel:
    """A trained g_φ: the MLP over normalised embeddings, its capabilities and encoder."""

    def __init__(self, capabilities: tuple[str, ...], encoder: dict[str, Any], mlp: Any, center: np.ndarray, spread: float,
                 meta: dict[str, Any] | None = None, active: np.ndarray | None = None) -> None:
        self.capabilities, self.encoder, self.mlp = tuple(capabilities), encoder, mlp.eval()
        self.center, self.spread = np.asarray(center, dtype=np.float32), float(spread)
        #: 1 for the capabilities g may weigh, 0 for those the interventions never moved.
        self.active = np.ones(len(capabilities), dtype=np.float32) if active is None else np.asarray(active, dtype=np.float32)
        self.meta = meta or {}

    def from_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        """g for each row of ``embeddings`` (cards × dim), in ``capabilities`` order."""
        import torch

        x = torch.from_numpy((np.asarray(embeddings, dtype=np.float32) - self.center) / self.spread)
        with torch.no_grad():
            return masked_softmax(self.mlp(x), torch.from_numpy(self.active)).double().numpy()

    def infer(self, cards: list[TaskCard]) -> np.ndarray:
        """g of each card, through the encoder the model was trained with."""
        from read_distill.requirement.encoder import load_encoder

        encoder = load_encoder(self.encoder["spec"])
        if encoder.sha256 != self.encoder["weights_sha256"]:
            raise ConfigError(
                f"requirement model: its encoder {self.encoder['spec']} now has other weights (sha256 {encoder.sha256[:12]}… "
                f"instead of {self.encoder['weights_sha256'][:12]}…); retrain the model or install the encoder it was trained with"
            )
        return self.from_embeddings(encoder.encode([card_text(c) for c in cards]))

    def save(self, out: Path, meta: dict[str, Any]) -> None:
        """``out/model.safetensors`` and ``out/model.json`` (``meta`` added to the JSON)."""
        import torch
        from safetensors.torch import save_file

        from read_distill.store import write_json

        out.mkdir(parents=True, exist_ok=True)
        tensors = {f"mlp.{k}": v.detach().contiguous() for k, v in self.mlp.state_dict().items()}
        tensors["center"] = torch.from_numpy(self.center.copy())
        tensors["active"] = torch.from_numpy(self.active.copy())
        tensors["spread"] = torch.tensor([self.spread], dtype=torch.float32)
        tmp = out / f".{MODEL_FILE}.tmp"
        save_file(tensors, str(tmp))
        tmp.chmod(0o644)
        tmp.replace(out / MODEL_FILE)
        first = self.mlp[0]
        body = {
            "format": FORMAT, "version": VERSION, "capabilities": list(self.capabilities), "encoder": self.encoder,
            "mlp": {"input": first.in_features, "hidden": first.out_features, "output": len(self.capabilities), "activation": "tanh"},
            **meta,
        }
        write_json(out / META_FILE, body)


def load_model(directory: Path | str, field: str = "requirement model") -> RequirementModel:
    """The model ``requirement train`` wrote to ``directory``; ConfigError in one line
    (naming ``field``) where it is not one."""
    from safetensors.torch import load_file

    directory = Path(directory)
    meta_path, weights = directory / META_FILE, directory / MODEL_FILE
    if not meta_path.is_file() or not weights.is_file():
        raise ConfigError(f"{field}: {directory} is not a requirement model (no {META_FILE} and {MODEL_FILE}); train one with `read-distill requirement train`")
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"format is {meta.get('format')!r}")
        shape = meta["mlp"]
        tensors = load_file(str(weights))
        mlp = _mlp(int(shape["input"]), int(shape["hidden"]), len(meta["capabilities"]))
        mlp.load_state_dict({k[len("mlp."):]: v for k, v in tensors.items() if k.startswith("mlp.")})
        center, spread = tensors["center"].numpy(), float(tensors["spread"][0])
        active = tensors["active"].numpy() if "active" in tensors else None
    except (ValueError, KeyError, TypeError, RuntimeError, OSError) as e:
        raise ConfigError(f"{field}: {directory} is not a readable requirement model ({' '.join(str(e).split())[:160]})") from None
    return RequirementModel(tuple(meta["capabilities"]), meta["encoder"], mlp, center, spread, meta, active)


#: Weights of g below this are 0 in a run's requirement (the rest renormalised): a softmax
#: never gives an exact 0, and a capability with r_c > 0 counts as needed (probed after
#: every round, kept at a quarter of its share by ``read``).
MIN_WEIGHT = 0.05


def prune(g: Any, min_weight: float = MIN_WEIGHT) -> np.ndarray:
    """``g`` without the weights below ``min_weight``, renormalised (the largest weight
    stays where every weight is below it)."""
    g = np.asarray(g, dtype=float)
    kept = np.where(g >= min_weight, g, 0.0)
    if kept.sum() <= 0:
        kept = np.where(g == g.max(), g, 0.0)
    return kept / kept.sum()


_MODELS: dict[tuple[str, float], RequirementModel] = {}
_INFERRED: dict[tuple[str, float, str], tuple[float, ...]] = {}


def infer_requirement(directory: Path, card: TaskCard, capabilities: tuple[str, ...], source: str) -> tuple[float, ...]:
    """r of ``card`` by the model in ``directory``, in the order of ``capabilities`` (the
    run's; the model must know the same ones): g_φ of the card's text, weights below
    ``MIN_WEIGHT`` set to 0 and the rest renormalised. Loaded once per process and card text."""
    directory = Path(directory).resolve()
    stamp = (directory / MODEL_FILE).stat().st_mtime if (directory / MODEL_FILE).exists() else 0.0
    key = (str(directory), stamp, card_text(card))
    if key not in _INFERRED:
        mkey = (str(directory), stamp)
        if mkey not in _MODELS:
            _MODELS[mkey] = load_model(directory, f"{source}: requirement")
        model = _MODELS[mkey]
        if set(model.capabilities) != set(capabilities):
            raise ConfigError(f"{source}: the requirement model in {directory} knows capabilities {list(model.capabilities)}, the run has {list(capabilities)}")
        g = prune(model.infer([card])[0])
        by_name = dict(zip(model.capabilities, g, strict=True))
        _INFERRED[key] = tuple(float(by_name[c]) for c in capabilities)
    return _INFERRED[key]


# -- training -----------------------------------------------------------------------------------
def fit_model(
    embeddings: np.ndarray, card_index: np.ndarray, delta_s: np.ndarray, delta_u: np.ndarray, capabilities: tuple[str, ...],
    encoder: dict[str, Any], settings: TrainSettings, train_cards: list[int] | None = None, active: np.ndarray | None = None,
) -> tuple[RequirementModel, dict[str, Any]]:
    """Fit g_φ on rows (``card_index`` into ``embeddings``, their ``delta_s`` and
    ``delta_u``); ``train_cards`` (default: every card with a row) get the entropy term;
    g weighs only the ``active`` capabilities (default all). Deterministic for a seed.
    Returns the model and its loss history."""
    import torch

    settings.check()
    if len(delta_u) == 0:
        raise ConfigError("requirement train: no training rows (every card is held out, or the collection is empty)")
    cards = sorted(set(int(i) for i in card_index)) if train_cards is None else sorted(train_cards)
    center = embeddings[cards].mean(0)
    centered = embeddings[cards] - center
    spread = float(np.sqrt((centered**2).sum(-1).mean())) or 1.0
    x = torch.from_numpy(((embeddings - center) / spread).astype(np.float32))
    ds = torch.from_numpy(np.asarray(delta_s, dtype=np.float32))
    du = torch.from_numpy(np.asarray(delta_u, dtype=np.float32))
    idx = torch.from_numpy(np.asarray(card_index, dtype=np.int64))
    train_idx = torch.tensor(cards, dtype=torch.int64)
    scale = float(np.sqrt(np.mean(np.square(delta_u)))) or 1.0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        mlp = _mlp(embeddings.shape[1], settings.hidden, len(capabilities))
    # a_τ = softplus(v_τ), 1 at the start; no weight decay on it.
    raw_gain = torch.full((len(embeddings),), float(np.log(np.e - 1)), requires_grad=settings.gain == "card")
    groups = [{"params": list(mlp.parameters()), "weight_decay": settings.weight_decay}]
    if settings.gain == "card":
        groups.append({"params": [raw_gain], "weight_decay": 0.0})
    opt = torch.optim.AdamW(groups, lr=settings.lr)
    on = torch.ones(len(capabilities)) if active is None else torch.from_numpy(np.asarray(active, dtype=np.float32))
    history = []
    for epoch in range(settings.epochs):
        g = masked_softmax(mlp(x), on)
        gain = torch.nn.functional.softplus(raw_gain)[idx] if settings.gain == "card" else None
        total, fit, ent = loss_terms(g[idx], ds, du, g[train_idx], scale, settings.lambda_ent, gain)
        opt.zero_grad()
        total.backward()
        opt.step()
        total, fit, ent = total.detach(), fit.detach(), ent.detach()
        if epoch % max(1, settings.epochs // 10) == 0 or epoch == settings.epochs - 1:
            history.append({"epoch": epoch + 1, "loss": total.item(), "fit": fit.item(), "entropy": ent.item()})
    model = RequirementModel(capabilities, encoder, mlp, center, spread, active=on.numpy())
    gains = torch.nn.functional.softplus(raw_gain).detach().numpy()
    return model, {"scale": scale, "history": history, "gains": {int(i): float(gains[i]) for i in cards}}


def simplex_fit(delta_s: np.ndarray, delta_u: np.ndarray, gain: bool = True) -> np.ndarray:
    """The best one requirement for these rows alone (what the interventions of one card can
    say about it at best): with ``gain``, w ≥ 0 minimising Σ (ΔU − w·Δs)², normalised
    (g = w / Σw, a_τ = Σw; uniform where w = 0); without, argmin over the simplex of
    Σ (ΔU − g·Δs)²."""
    from scipy.optimize import minimize, nnls

    A, b = np.asarray(delta_s, float), np.asarray(delta_u, float)
    n = A.shape[1]
    if gain:
        w = nnls(A, b)[0]
        return w / w.sum() if w.sum() > 0 else np.full(n, 1.0 / n)
    res = minimize(
        lambda g: float(np.sum((b - A @ g) ** 2)), np.full(n, 1.0 / n), jac=lambda g: -2 * A.T @ (b - A @ g), method="SLSQP",
        bounds=[(0.0, 1.0)] * n, constraints=[{"type": "eq", "fun": lambda g: g.sum() - 1.0, "jac": lambda g: np.ones(n)}],
        options={"maxiter": 500, "ftol": 1e-12},
    )
    g = np.clip(res.x, 0, None)
    return g / g.sum()


def cosine(a: Any, b: Any) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else 0.0


def declared(card: TaskCard, capabilities: tuple[str, ...]) -> tuple[float, ...] | None:
    """The card's manual requirement, normalised (the truth on the micro-world's cards),
    or None where the card has none (a fallback or a learned one)."""
    from read_distill.tasks import requirement_vector

    if not isinstance(card.requirement, dict) or "learned" in card.requirement or not card.requirement:
        return None
    return requirement_vector(capabilities, card.requirement, source=f"task card {card.name!r}")


def train(
    sources: list[Path], out: Path | None, holdout: list[str], encoder_spec: str, settings: TrainSettings,
    cards: dict[str, TaskCard] | None = None,
) -> dict[str, Any]:
    """``read-distill requirement train``: fit g_φ on the rows of ``sources`` (collection
    directories or JSONL files) except the ``holdout`` cards', save it to ``out``, and
    report per card the learned vector, its fit on the card's rows, the best simplex fit of
    those rows alone, and the cosine of each to the card's declared requirement. ``cards``
    replaces the cards the rows name (by name; tests, text variants); ``out`` None saves
    nothing."""
    from read_distill.requirement.collect import load_rows
    from read_distill.requirement.encoder import load_encoder
    from read_distill.tasks import load_card

    settings.check()
    rows, collections = load_rows(sources)
    if not rows:
        raise ConfigError(f"requirement train: no intervention rows in {', '.join(map(str, sources))}")
    capabilities = tuple(collections[0]["capabilities"])
    for c in collections[1:]:
        if tuple(c["capabilities"]) != capabilities:
            raise ConfigError(f"requirement train: collections over different capabilities: {list(capabilities)} and {c['capabilities']}")
    names: list[str] = []
    given, cards = cards or {}, {}
    for r in rows:
        if r["card"] not in cards:
            cards[r["card"]] = given.get(r["card"]) or load_card(r["card_ref"])
            names.append(r["card"])
    unknown = sorted(set(holdout) - set(cards))
    if unknown:
        raise ConfigError(f"--holdout: no rows for {unknown}; the collections have {names}")
    train_names = [n for n in names if n not in holdout]
    if not train_names:
        raise ConfigError("--holdout: every card is held out; keep at least one for training")
    encoder = load_encoder(encoder_spec)
    texts = [card_text(cards[n]) for n in names]
    embeddings = encoder.encode(texts)
    pos = {n: i for i, n in enumerate(names)}
    ds_all = np.array([[r["delta_s"][c] for c in capabilities] for r in rows], dtype=float)
    du_all = np.array([r["delta_u"] for r in rows], dtype=float)
    ci_all = np.array([pos[r["card"]] for r in rows])
    # What the interventions cannot say is left out: a card whose utility none of them moved
    # (ΔU RMS below MIN_SIGNAL points: any g fits it) trains nothing, and a capability that
    # none of them moved (Δs RMS below MIN_SIGNAL) gets no weight (any weight fits).
    rms = lambda v: float(np.sqrt(np.mean(np.square(v)))) if len(v) else 0.0  # noqa: E731
    silent = [n for n in train_names if rms(du_all[ci_all == pos[n]]) < settings.min_signal]
    train_names = [n for n in train_names if n not in silent]
    if not train_names:
        raise ConfigError(f"requirement train: no training card's utility moved (ΔU RMS < {settings.min_signal} points); nothing to learn from")
    is_train = np.array([r["card"] in train_names for r in rows])
    active = np.array([rms(ds_all[is_train][:, j]) >= settings.min_signal for j in range(len(capabilities))], dtype=np.float32)
    if not active.any():
        raise ConfigError(f"requirement train: no capability moved in the training rows (Δs RMS < {settings.min_signal} points)")
    tick = time.time()
    model, fitted = fit_model(
        embeddings, ci_all[is_train], ds_all[is_train], du_all[is_train], capabilities, encoder.describe(), settings,
        [pos[n] for n in train_names], active,
    )
    g_all = model.from_embeddings(embeddings)
    report = {}
    for n in names:
        mine = ci_all == pos[n]
        g = g_all[pos[n]]
        truth = declared(cards[n], capabilities)
        best = simplex_fit(ds_all[mine], du_all[mine], gain=settings.gain == "card")
        predicted = ds_all[mine] @ g
        # The card's gain: the one fitted in training, or (held out) the least-squares one.
        a = fitted["gains"].get(pos[n]) if settings.gain == "card" else 1.0
        if a is None:
            a = max(0.0, float(predicted @ du_all[mine]) / float(predicted @ predicted)) if predicted @ predicted > 0 else 0.0
        mse = float(np.mean((du_all[mine] - a * predicted) ** 2))
        report[n] = {
            "split": "heldout" if n in holdout else "no_signal" if n in silent else "train", "rows": int(mine.sum()),
            "learned": dict(zip(capabilities, map(float, g), strict=True)),
            "gain": a, "fit_mse": mse,
            "best_simplex": dict(zip(capabilities, map(float, best), strict=True)),
            **({"declared": dict(zip(capabilities, truth, strict=True)), "cosine_learned": cosine(g, truth),
                "cosine_best_simplex": cosine(best, truth), "cosine_uniform": cosine(np.ones(len(capabilities)), truth)}
               if truth is not None else {}),
        }
    meta = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "training": {
            "cards": train_names, "heldout": list(holdout), "no_signal": silent, "rows": int(is_train.sum()), "settings": asdict(settings),
            "unmoved_capabilities": [c for c, a in zip(capabilities, active, strict=True) if not a],
            "scale": fitted["scale"], "seconds": round(time.time() - tick, 2),
            "collections": [{"path": c["path"], "config_sha256": c["config_sha256"], "rows_sha256": c["rows_sha256"],
                             "overhead_tokens": c["overhead_tokens"]} for c in collections],
        },
        "losses": fitted["history"],
        "card_texts": {n: texts[pos[n]] for n in names},
        "report": report,
    }
    if out is not None:
        model.save(Path(out), meta)
    return {"out": str(out), "capabilities": list(capabilities), **meta}


def report_lines(result: dict[str, Any]) -> list[str]:
    """The per-card table of a training result, as console lines."""
    caps = result["capabilities"]
    short = lambda v: " ".join(f"{c[:4]}={v[c]:.2f}" for c in caps if v[c] >= 0.05)  # noqa: E731
    lines = [f"{'card':<22} {'split':<8} {'cos(learned,true)':>17} {'cos(best,true)':>14}  learned"]
    for n, e in result["report"].items():
        cl = f"{e['cosine_learned']:.3f}" if "cosine_learned" in e else "—"
        cb = f"{e['cosine_best_simplex']:.3f}" if "cosine_best_simplex" in e else "—"
        lines.append(f"{n:<22} {e['split']:<8} {cl:>17} {cb:>14}  {short(e['learned'])}")
    last = result["losses"][-1]
    lines.append(f"loss {last['loss']:.4f} (fit {last['fit']:.4f}, entropy {last['entropy']:.3f}); "
                 f"{result['training']['rows']} training rows on {len(result['training']['cards'])} cards")
    return lines

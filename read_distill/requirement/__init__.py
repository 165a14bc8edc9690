"""The learned requirement identifier g_φ (docs/method.md §3): from a task card's text to
a requirement vector r on the simplex over capabilities.

* ``collect`` (``read-distill requirement collect``): the intervention set. Short
  low-budget distillations of S0, each with one sparse fixed allocation (the engine of the
  runner's pilots, ``runner.distil_fixed``), each measured once on the probes (Δs) and on
  every task card's dev split (ΔU = U(S_m) − U(S0)); one JSONL row per card and
  intervention, resumable.
* ``model`` (``read-distill requirement train``): a frozen sentence encoder of the card's
  text, mean-pooled, a 2-layer MLP and a softmax, trained on
  Σ (ΔU − g(card)·Δs)² + λ_ent·H(g) with whole cards held out; saved as safetensors + JSON.
* ``encoder``: the frozen sentence encoder (all-MiniLM-L6-v2 from the ``identify``
  extra's package, loaded offline with transformers).

A task card says ``requirement: auto`` (the model at :func:`default_model_dir`) or
``requirement: {learned: MODEL_DIR}``; the config's ``task.requirement`` takes the same
forms. Importing this package is cheap (no torch).
"""

from __future__ import annotations

import os
from pathlib import Path

#: The environment variable that moves the model ``requirement: auto`` uses.
MODEL_ENV = "READ_DISTILL_REQUIREMENT_MODEL"
#: The shipped model: trained on the micro-world's interventions (docs/method.md §3).
SHIPPED_MODEL = Path(__file__).resolve().parent.parent / "world" / "artefacts" / "requirement"


def default_model_dir() -> Path:
    """Where ``requirement: auto`` finds its model: ``$READ_DISTILL_REQUIREMENT_MODEL``,
    else the shipped micro-world model."""
    env = os.environ.get(MODEL_ENV)
    return Path(env) if env else SHIPPED_MODEL

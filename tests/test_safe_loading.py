"""Loading never runs code from a file: every torch.load is weights_only=True, and no
model or tokenizer is loaded with trust_remote_code (no config option turns it on)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "read_distill"


def _calls(name: str) -> list[tuple[Path, ast.Call]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == name:
                out.append((path, node))
    return out


def _keyword(call: ast.Call, name: str) -> object:
    return next((ast.literal_eval(k.value) for k in call.keywords if k.arg == name), None)


def test_every_torch_load_is_weights_only():
    loads = [(p, c) for p, c in _calls("load") if isinstance(c.func.value, ast.Name) and c.func.value.id == "torch"]
    assert loads, "the student's train_state.pt is read with torch.load"
    assert all(_keyword(c, "weights_only") is True for _, c in loads), [f"{p}:{c.lineno}" for p, c in loads]


def test_nothing_trusts_remote_code():
    calls = _calls("from_pretrained")
    assert calls and not [f"{p}:{c.lineno}" for p, c in calls if _keyword(c, "trust_remote_code") not in (None, False)]
    assert all(c.keywords is not None and not any(k.arg is None for k in c.keywords) for _, c in calls), "no **kwargs that could carry it"

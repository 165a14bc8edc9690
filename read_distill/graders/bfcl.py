"""BFCL function calling, graded by the Berkeley Function Calling Leaderboard's own code.

Data and checker come from the ``bfcl-eval`` package (its ``data/`` files ship inside the
wheel, so nothing is downloaded). A row's ``answer`` is JSON::

    {"category": "simple_python", "function": [<function docs>], "ground_truth": [<possible answers>]}

``irrelevance`` categories have no ``ground_truth``: the model must call nothing. The
completion (the text after the last ``####`` if it has one, else all of it) is decoded by
BFCL's prompting decoder (``[f(a=1), g(b="x")]``) and judged by BFCL's AST checker, as BFCL's
evaluation runner does for the Python categories that need no live API. Java and
JavaScript categories are not offered.
"""

from __future__ import annotations

import copy
import json
import sys
import types
from functools import cache
from typing import Any

from read_distill.graders.sources import load_reference, missing_package

#: Python categories whose entries BFCL's AST checker judges with no live API.
CATEGORIES = (
    "simple_python", "multiple", "parallel", "parallel_multiple",
    "live_simple", "live_multiple", "live_parallel", "live_parallel_multiple",
    "irrelevance", "live_irrelevance",
)
#: How to install the package: its declared dependencies pin numpy 1.26.4 and pull every
#: vendor SDK BFCL can query; the data, decoder and checker need none of them.
INSTALL = 'pip install -e ".[bench]" && pip install --no-deps bfcl-eval==2026.3.23'
_FORM = 'expected JSON {"category": ..., "function": [...], "ground_truth": [...]}'
#: The model name the checker is told; see ``_checker``.
_MODEL = "read-distill"


class _NoRenaming(dict):
    """BFCL's model registry as the AST checker reads it: no model renames dots in names."""

    def __missing__(self, key: str) -> Any:
        return types.SimpleNamespace(underscore_to_dot=False)


@cache
def _checker() -> types.ModuleType:
    """BFCL's AST checker module.

    It imports BFCL's model registry only to ask whether a model's API renamed ``.`` to
    ``_`` in function names, and that registry imports every vendor SDK (anthropic,
    cohere, google-genai, ...). A stand-in registry that answers "no" for every model is
    in place while the checker is imported: the student writes names as documented.
    """
    name = "bfcl_eval.constants.model_config"
    if name in sys.modules:
        from bfcl_eval.eval_checker.ast_eval import ast_checker

        return ast_checker
    stand_in = types.ModuleType(name)
    stand_in.MODEL_CONFIG_MAPPING = _NoRenaming()  # type: ignore[attr-defined]
    sys.modules[name] = stand_in
    try:
        from bfcl_eval.eval_checker.ast_eval import ast_checker
    finally:
        del sys.modules[name]
    return ast_checker


def is_irrelevance(category: str) -> bool:
    """True where the right answer is to call no function."""
    return "irrelevance" in category


def decode_calls(completion: str) -> list[dict] | None:
    """The calls in ``completion`` as BFCL decodes them (``[{name: {arg: value}}]``), or
    None where BFCL's decoder cannot read a list of calls there."""
    from bfcl_eval.model_handler.utils import default_decode_ast_prompting
    from bfcl_eval.utils import is_function_calling_format_output

    from read_distill.graders import ANSWER_MARKER  # here: the registry imports this module

    text = completion.rsplit(ANSWER_MARKER, 1)[1] if ANSWER_MARKER in completion else completion
    try:
        calls = default_decode_ast_prompting(text)
    except Exception:  # noqa: BLE001 - BFCL's runner counts any decoder failure as no call
        return None
    return calls if is_function_calling_format_output(calls) else None


def grade(answer: str, completion: str) -> float:
    """1 if BFCL's AST checker accepts the completion's calls (for ``irrelevance``
    categories: if the completion makes no call)."""
    from bfcl_eval.constants.enums import Language
    from bfcl_eval.utils import is_empty_output

    ref = json.loads(answer)
    calls = decode_calls(completion)
    if is_irrelevance(ref["category"]):
        return float(calls is None or is_empty_output(calls))
    if calls is None:
        return 0.0
    try:
        result = _checker().ast_checker(ref["function"], calls, ref["ground_truth"], Language.PYTHON, ref["category"], _MODEL)
    except Exception:  # noqa: BLE001 - model text is arbitrary; a call the checker cannot even compare is wrong
        return 0.0
    return float(result["valid"])


def answer_problem(answer: str) -> str | None:
    """Why ``answer`` is not a BFCL reference this grader can check, or None."""
    ref = load_reference(answer)
    if ref is None:
        return f"not a JSON object; {_FORM}"
    if ref.get("category") not in CATEGORIES:
        return f"category: expected one of {', '.join(CATEGORIES)}; {_FORM}"
    if not isinstance(ref.get("function"), list) or not all(isinstance(f, dict) and "name" in f for f in ref["function"]):
        return f"function: expected a list of function docs with a name; {_FORM}"
    if not is_irrelevance(ref["category"]) and not (isinstance(ref.get("ground_truth"), list) and ref["ground_truth"]):
        return f"ground_truth: expected a non-empty list of possible calls; {_FORM}"
    return missing_package("bfcl_eval", "bfcl-eval", INSTALL)


def render_prompt(entry: dict) -> str:
    """BFCL's prompt for a prompting (not native function-calling) model, as text: BFCL's
    system prompt with the function docs, each turn as ``role: content``, then ``assistant:``."""
    from bfcl_eval.model_handler.utils import system_prompt_pre_processing_chat_model

    messages = system_prompt_pre_processing_chat_model(copy.deepcopy(entry["question"][0]), entry["function"], entry["id"])
    turns = [f"{m['role']}: {m['content']}" for m in messages[1:]] + ["assistant:"]
    return "\n\n".join([messages[0]["content"], "\n".join(turns)])


def export_rows(category: str) -> list[dict[str, str]]:
    """Every entry of a BFCL category as a task row (``prompt``, ``answer``, ``grader``),
    from the data shipped in the bfcl-eval package."""
    from bfcl_eval.utils import load_dataset_entry, load_ground_truth_entry

    entries = load_dataset_entry(category, include_prereq=False)
    truths = {} if is_irrelevance(category) else {t["id"]: t["ground_truth"] for t in load_ground_truth_entry(category)}
    rows = []
    for entry in entries:
        ref: dict[str, Any] = {"category": category, "function": entry["function"]}
        if not is_irrelevance(category):
            ref["ground_truth"] = truths[entry["id"]]
        rows.append({"prompt": render_prompt(entry), "answer": json.dumps(ref), "grader": "bfcl"})
    return rows

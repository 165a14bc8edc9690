"""``docs/results.md``: the paper's tables on the embedded micro-world, in one resumable
command (``read-distill results``, or ``make results``).

What is run is the dict literals below: every method of :data:`TABLE_1` and
:data:`TABLE_2` on each composite task of :data:`TASKS` at its two budgets and every seed
of :data:`SEEDS` (``compare``), and the transfer study (``transfer``), all through the run
path of ``read-distill run``. The fixed methods run first and ``read`` and its ablations
last, so an interrupted invocation has the baselines of every task before any ``read``
row. Run directories live under ``--out``; a second invocation resumes the runs it finds
and only re-tabulates the finished ones. The wall time of every part is added up across
invocations in ``timings.json``, beside the runs' own wall times.

Every finished run is also kept in a **record** beside the document (``docs/results_runs/``:
per task, one JSONL line per run with the config it ran and its ``summary.json``, and the
timings). The record is committed with the document: the tables can be checked against
the runs they came from, and an invocation on a fresh clone or another machine continues
from it (the recorded runs are not run again; a recorded config that differs from what
the code now asks for is refused, as for a run dir).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

from read_distill.config import load_config
from read_distill.experiments.compare import (
    BOUND_SIGN,
    compare,
    equivalent_budget,
    equivalent_text,
    run_metrics,
    tabulate,
    task_card,
)
from read_distill.experiments.methods import SINGLE_CAPABILITY
from read_distill.experiments.transfer import summarise, transfer
from read_distill.store import read_json, read_jsonl, write_json, write_text
from read_distill.tasks import card_requirement

CONFIG = "configs/demo.yaml"

#: Composite task -> (low, high) budget in billable tokens. The high one is the demo's,
#: where long_tool and kb_tool end below the ceiling under every policy measured (README,
#: "ReAD against the static mix"); the document says for each task whether any method
#: reached it. The low one is a quarter of it, so the equivalent-budget ratio at the low
#: budget can be read up to 4x from the runs themselves. long_tool needs a capability
#: outside its requirement (reasoning feeds long_context); kb_tool is the demo's task;
#: reasoning_json asks for two capabilities the student base has at different levels; it
#: runs at a quarter of the others' budgets because at 200k it reaches the ceiling (cot_sft
#: 98.43 over seeds 0-2, in the record) while at 50k the best is 93.27 (logit_sft) and every
#: method has moved from 35 by round 5 (12.5k tokens). tool_math needs 600k tokens to leave
#: its floor, which would put the whole command past 6 hours on 2 cores, so it is not here.
TASKS: dict[str, tuple[int, int]] = {
    "long_tool": (50_000, 200_000),
    "kb_tool": (50_000, 200_000),
    "reasoning_json": (12_500, 50_000),
}
SEEDS = [0, 1, 2]
#: The paper's Table 1: read against the single-capability objectives (the whole budget on
#: the task's top capability, one signal and loss each) and on-policy distillation.
TABLE_1 = ["read", *SINGLE_CAPABILITY]
#: The paper's Table 2: read against allocation schedules and its own ablations.
TABLE_2 = ["read", "uniform", "task_static", "greedy", "grid", "exp3", "read_no_identification", "read_no_interaction"]
#: grid searches its fixed allocation on pilot runs, on a profiling budget of this share
#: of B, spent outside B and reported as overhead (the allocation benchmark's default).
#: Without one it has nothing to search on and plays r: the run of task_static.
GRID_PROFILING = 0.5
#: The transfer study: one-hot runs per capability at these budgets (on long_tool's probes).
TRANSFER_BUDGETS = [20_000, 50_000, 100_000]
TRANSFER_TASK = "long_tool"
KD = ["resp_kd", "cot_kd", "logit_kd"]
#: The hand-written reading of the document's tables, beside it.
DISCUSSION = "results_discussion.md"


def methods() -> list[str]:
    """Every method, fixed ones first and read's family last."""
    every = list(dict.fromkeys(TABLE_1 + TABLE_2))
    last = [m for m in every if m.startswith("read")]
    return [m for m in every if m not in last] + last


def record_dir(doc: Path) -> Path:
    """The record of ``doc``'s runs: ``docs/results_runs`` for ``docs/results.md``."""
    return doc.with_name(f"{doc.stem}_runs")


def keep_records(out: Path, records: Path) -> None:
    """Add every finished run under ``out`` (and the timings) to ``records``: per part (a
    task, or the transfer study), ``<part>.jsonl`` with one line per run, sorted by run."""
    for part in sorted(p for p in out.iterdir() if p.is_dir()):
        path = records / f"{part.name}.jsonl"
        kept = {r["run"]: r for r in read_jsonl(path)}
        for summary in part.glob("*/*/seed*/summary.json"):
            run = summary.parent.relative_to(part).as_posix()
            kept[run] = {"run": run, "config": (summary.parent / "config.yaml").read_text(), "summary": read_json(summary)}
        if kept:
            write_text(path, "".join(json.dumps(kept[run]) + "\n" for run in sorted(kept)))
    if (out / "timings.json").exists():
        write_json(records / "timings.json", read_json(out / "timings.json"))


def restore_records(records: Path, out: Path) -> int:
    """Write the recorded runs that ``out`` lacks as finished run dirs (their config and
    summary: all that the tables read) and the timings if ``out`` has none; returns how
    many runs. A run dir already in ``out`` is left as it is (it resumes or is read back)."""
    restored = 0
    for path in sorted(records.glob("*.jsonl")):
        for r in read_jsonl(path):
            run_dir = out / path.stem / r["run"]
            if not run_dir.exists():
                write_text(run_dir / "config.yaml", r["config"])
                write_json(run_dir / "summary.json", r["summary"])
                restored += 1
    if (records / "timings.json").exists() and not (out / "timings.json").exists():
        write_json(out / "timings.json", read_json(records / "timings.json"))
    return restored


def produce(out: Path, doc: Path, jobs: int, quiet: bool = False) -> str:
    """Run (or resume) everything, then write ``doc`` and return its text. Runs recorded
    beside ``doc`` (:func:`record_dir`) are not run again; every part's finished runs are
    added to the record as the part ends (also when it is stopped)."""
    out.mkdir(parents=True, exist_ok=True)
    records = record_dir(doc)
    restored = restore_records(records, out)
    if restored and not quiet:
        print(f"[results] {restored} finished runs restored from {records}", flush=True)
    timings_path = out / "timings.json"
    timings: dict[str, float] = read_json(timings_path) if timings_path.exists() else {}

    def timed(part: str, fn, *args, **kwargs):
        if not quiet:
            print(f"[results] {part}: {fn.__name__} ({timings.get(part, 0.0) / 60:.1f} min so far)", flush=True)
        start = time.monotonic()
        try:
            return fn(*args, **kwargs)
        finally:
            timings[part] = timings.get(part, 0.0) + time.monotonic() - start
            write_json(timings_path, timings)
            keep_records(out, records)

    fixed = [m for m in methods() if not m.startswith("read") and m != "grid"]
    for task, budgets in TASKS.items():
        timed(task, compare, _config(task), fixed, SEEDS, out / task, budgets=list(budgets), quiet=quiet, jobs=jobs)
        for b in budgets:
            profiled = _config(task, f"policy.profiling_tokens={int(GRID_PROFILING * b)}")
            timed(task, compare, profiled, ["grid"], SEEDS, out / task, budgets=[b], quiet=quiet, jobs=jobs)
    transfer_result = timed("transfer", transfer, _config(TRANSFER_TASK), SEEDS, out / "transfer", TRANSFER_BUDGETS, quiet=quiet, jobs=jobs)
    sections = []
    for task, budgets in TASKS.items():
        every = [m for m in methods() if m != "grid"]
        timed(task, compare, _config(task), every, SEEDS, out / task, budgets=list(budgets), quiet=quiet, jobs=jobs)
        sections.append(task_section(task, out / task, list(budgets)))
    for section in sections:
        utility_figure(section, doc.parent / f"results_{section['task']}.png")
    image = doc.parent / "results_transfer.png"
    shutil.copyfile(out / "transfer" / "transfer.png", image)
    run_time = {part: _run_seconds(out / part) for part in timings}
    # The reading of these tables is written by hand beside them, from the same runs.
    discussion = DISCUSSION if (doc.parent / DISCUSSION).exists() else None
    text = document(sections, transfer_result, image.name, timings, run_time, records.name, discussion)
    write_text(doc, text)
    return text


def _run_seconds(root: Path) -> float:
    """The wall time the finished runs under ``root`` took, each by its own clock (what a
    stopped invocation spent on runs it finished is counted here too)."""
    return sum(sum(read_json(p)["wall_s"].values()) for p in root.glob("*/*/seed*/summary.json"))


#: What every recorded run of docs/results_runs/ was made with where the demo's config has
#: changed since, kept so the record stays one experiment: probes after a round read each
#: capability the reward reads a third of its items at a time until its interval is 5
#: points wide (the default since reads the first third only, docs/performance.md),
#: generation runs in batches of 32, and dev utility is evaluated every 5 rounds (the demo's
#: every 10 since: the checkpoints at 5 and 15 changed no allocation of read's, docs/performance.md).
RECORDED = ("probe.stop_width=5", "generation.batch_size=32", "run.dev_every=5")


def _config(task: str, *overrides: str):
    return load_config(CONFIG, [f"task.card={task}", "run.report=false", *RECORDED, *overrides])


def task_section(task: str, root: Path, budgets: list[int]) -> dict[str, Any]:
    """The two tables per budget of one task, its equivalent budget and its targets."""
    config = _config(task)
    requirement = card_requirement(task_card(config, None), tuple(config.capabilities), config.task.requirement)
    summaries = {(b, m): [read_json(root / str(b) / m / f"seed{s}" / "summary.json") for s in SEEDS] for b in budgets for m in methods()}
    metrics = {key: [run_metrics(r, requirement, config.reward.top_k) for r in runs] for key, runs in summaries.items()}
    tables = {name: [{"budget": b, **tabulate({m: metrics[b, m] for m in rows})} for b in budgets]
              for name, rows in (("table_1", TABLE_1), ("table_2", TABLE_2))}
    equivalent = equivalent_budget(tables["table_1"], [m for m in TABLE_1 if m != "read"])
    profiles = {b: profile_table({m: summaries[b, m] for m in TABLE_1}, list(config.capabilities)) for b in budgets}
    r = dict(zip(config.capabilities, requirement, strict=True))
    spending = {b: allocation_table({m: summaries[b, m] for m in TABLE_2}, r) for b in budgets}
    return {"task": task, "budgets": budgets, "requirement": r, "tables": tables, "profiles": profiles,
            "spending": spending, "equivalent": equivalent, "targets": targets(tables, equivalent)}


def allocation_table(runs: dict[str, list[dict[str, Any]]], requirement: dict[str, float]) -> str:
    """Where each schedule spent its rounds (from the runs' ``allocations``): per run, the
    rounds whose allocation was not the task's r (a share off by more than 0.01), and each
    capability's mean share over rounds and runs (those of at least 0.02)."""
    total = sum(requirement.values())
    r = {c: w / total for c, w in requirement.items()}
    lines = ["| method | rounds off r, per run | mean share per capability |", "|---|---|---|"]
    for method, summaries in runs.items():
        rounds = [a for s in summaries for a in s["allocations"]]
        off = [sum(any(abs(a[c] - r[c]) > 0.01 for c in r) for a in s["allocations"]) for s in summaries]
        shares = {c: sum(a[c] for a in rounds) / len(rounds) for c in r}
        spent = ", ".join(f"{c} {v:.2f}" for c, v in sorted(shares.items(), key=lambda kv: -kv[1]) if v >= 0.02)
        lines.append(f"| {method} | {' / '.join(map(str, off))} of {len(summaries[0]['allocations'])} | {spent} |")
    return "\n".join(lines)


def utility_figure(section: dict[str, Any], path: Path) -> None:
    """Final utility against budget (log scale, mean ± std over seeds) of read, every
    single-capability baseline and task_static: the curves the equivalent budget is read from."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = section["budgets"]
    cells = [{**t1["results"], **t2["results"]} for t1, t2 in zip(section["tables"]["table_1"], section["tables"]["table_2"], strict=True)]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
    for method in [*TABLE_1, "task_static"]:
        mean = [c[method]["final_utility"]["mean"] for c in cells]
        std = [c[method]["final_utility"]["std"] for c in cells]
        style = {"read": {"lw": 2.6, "color": "black"}, "task_static": {"lw": 1.8, "ls": "--", "color": "#555"}}.get(method, {"lw": 1.0})
        ax.errorbar(budgets, mean, yerr=std, marker="o", ms=4, capsize=3, label=method, **style)
    ax.set(xscale="log", xlabel="budget B (billable tokens)", ylabel="final test utility", title=f"{section['task']}: utility against budget")
    ax.set_xticks(budgets, [f"{b:,}" for b in budgets])
    ax.minorticks_off()
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def profile_table(finals: dict[str, list[dict[str, Any]]], capabilities: list[str]) -> str:
    """The paper's Table 1 proper: each Table 1 method's final probe score per capability
    (mean over its runs' summaries, ``finals``) and their mean, the first row the student base's."""
    rows = {"student base": [sum(r["initial_profile"][c] for r in finals["read"]) / len(SEEDS) for c in capabilities]}
    rows |= {m: [sum(r["final_profile"][c] for r in runs) / len(SEEDS) for c in capabilities] for m, runs in finals.items()}
    head = ["| method | " + " | ".join(capabilities) + " | mean |", "|---|" + "---|" * (len(capabilities) + 1)]
    return "\n".join(head + [f"| {m} | " + " | ".join(f"{v:.1f}" for v in vs) + f" | {sum(vs) / len(vs):.1f} |" for m, vs in rows.items()])


def targets(tables: dict[str, list[dict[str, Any]]], equivalent: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The issue's targets for one task, each as a sentence per budget saying met or not."""
    above, ratio, off, ceiling = [], [], [], []
    for t1, t2 in zip(tables["table_1"], tables["table_2"], strict=True):
        cells = {**t1["results"], **t2["results"]}
        best = max(cells, key=lambda m: cells[m]["final_utility"]["mean"])
        top = cells[best]["final_utility"]["mean"]
        ceiling.append(f"{t1['budget']:,}: {'met' if top < 99 else 'not met'} — best mean {top:.2f} ({best})")
        rivals = {m: e["vs_read"]["paired"] for m, e in cells.items() if "vs_read" in e}
        beaten = [m for m, p in rivals.items() if p["diff"] > 0 and p.get("p_holm", math.nan) < 0.05]
        lost = [m for m, p in rivals.items() if p["diff"] < 0]
        above.append(f"{t1['budget']:,}: {'met' if len(beaten) == len(rivals) else 'not met'} — significantly above "
                     f"{len(beaten)} of {len(rivals)}" + (f"; lower mean than {', '.join(lost)}" if lost else ""))
        read_off = abs(cells["read"]["off_target_change"]["mean"])
        kd = {m: abs(cells[m]["off_target_change"]["mean"]) for m in KD}
        off.append(f"{t1['budget']:,}: {'met' if all(read_off < v for v in kd.values()) else 'not met'} — |read| {read_off:.2f} vs "
                   + ", ".join(f"{m} {v:.2f}" for m, v in kd.items()))
    for r in equivalent:
        bound = BOUND_SIGN[r["bound"]]
        # "not reached" is a lower bound: below 2x it says nothing either way.
        verdict = "met" if r["ratio"] >= 2 else "undetermined" if r["bound"] == "not reached" else "not met"
        ratio.append(f"{r['budget']:,}: {verdict} — {bound}{r['ratio']:.2f}×")
    return {"no method at the ceiling (best mean below 99)": ceiling,
            "read above every baseline (Holm p < 0.05)": above, "equivalent-budget ratio ≥ 2×": ratio,
            "read's off-target change smaller in magnitude than single-capability KD's": off}


def document(sections: list[dict[str, Any]], transfer_result: dict[str, Any], image: str, timings: dict[str, float],
             run_time: dict[str, float], records: str, discussion: str | None = None) -> str:
    """The Markdown of docs/results.md (linking to ``discussion``, the hand-written reading
    of its tables, where there is one)."""
    seeds = ", ".join(map(str, SEEDS))
    lines = [
        "# Results on the micro-world",
        "",
        "Written by `make results` (`read-distill results`), which runs every number below "
        f"through `read-distill compare` / `read-distill transfer` on `{CONFIG}` (the embedded micro-world: its teacher "
        f"distilled into its student base, 20 rounds) with seeds {seeds}, and resumes where it was stopped. Final "
        "utility is the task's score on its 1,000 test rows; on-/off-target Δ is the mean probe change of the task's "
        "essential / other capabilities (docs/method.md §8). Tests against read are paired over seeds, Holm-corrected "
        "within each table. Budgets per task: the high one is the demo's (reasoning_json: a quarter of it, where "
        "it does not reach the ceiling), the low one a quarter of the high one. grid searches "
        f"its fixed allocation on pilot runs with a profiling budget of {GRID_PROFILING:g} × B spent outside B "
        "(overhead); every other method spends none. Every run is made with `" + " ".join(RECORDED) + "` (the probes "
        "after a round read each capability the reward reads a third of its items at a time until its interval is 5 "
        "points wide; generation in batches of 32; dev utility every 5 rounds), what the demo's config said when the record began. Negative transfer is the mean of min(0, change) over the "
        "off-target capabilities. The micro-world's teacher is in-process and records no top-k log-probs "
        "(`generation.top_logprobs` 0), so the logit signal distils its full distribution from a forward pass, as "
        "CoT-KD does: logit_kd is the same run as cot_kd (docs/method.md §5); logit_sft (soft cross-entropy) is not "
        "cot_sft.",
        "",
        f"Every run behind these tables is in `{records}/` beside this file: per task, one JSON line per run with the "
        "config it ran and its summary (initial and final profile, allocations, dev utility, ledger, wall time). "
        "`make results` on a fresh clone re-tabulates them without running them again.",
    ]
    if discussion:
        lines += ["", f"What these tables say, where read wins and where it loses and why (from the runs' traces), is "
                      f"discussed in [{discussion}]({discussion})."]
    for s in sections:
        req = ", ".join(f"{c} {w:g}" for c, w in s["requirement"].items() if w > 0)
        lines += ["", f"## {s['task']} (r: {req})"]
        for name, title in (("table_1", "Table 1 analogue: single-capability objectives"), ("table_2", "Table 2 analogue: schedules and ablations")):
            for t in s["tables"][name]:
                lines += ["", f"### {title}, {t['budget']:,} tokens", "", t["table"]]
                if name == "table_1":
                    lines += ["", f"Final probe score per capability (mean over seeds), {t['budget']:,} tokens:", "",
                              s["profiles"][t["budget"]]]
        for b in s["budgets"]:
            lines += ["", f"### Where the schedules spent their rounds, {b:,} tokens", "", s["spending"][b]]
        lines += ["", equivalent_text(s["equivalent"]), "", f"![utility against budget](results_{s['task']}.png)",
                  "", "### Targets", ""]
        lines += [f"* **{target}**: " + "; ".join(rows) for target, rows in s["targets"].items()]
    harm = [m["mean_negative_off_diagonal"] for m in transfer_result["matrices"]]
    growing = all(b < a for a, b in zip(harm, harm[1:], strict=False))
    lines += [
        "", f"## Transfer study (one-hot runs per capability, {TRANSFER_TASK}'s config)", "",
        f"![T_ij per budget]({image})", "", summarise(transfer_result), "",
        f"* **Transfer off-diagonals growing more negative with budget**: {'met' if growing else 'not met'} "
        f"({' → '.join(f'{h:+.2f}' for h in harm)}).",
        "", "## Time", "",
        "Wall time is the command's, added up over its invocations (an invocation killed by a signal other than "
        "SIGTERM or Ctrl-C loses its share); run time is the sum of the runs' own wall times, about `--jobs` times "
        "the wall time when runs go in parallel.", "",
        "| part | wall time | run time |", "|---|---|---|",
        *[f"| {part} | {seconds / 60:.1f} min | {run_time[part] / 60:.1f} min |" for part, seconds in timings.items()],
        f"| total | {sum(timings.values()) / 60:.1f} min | {sum(run_time.values()) / 60:.1f} min |",
    ]
    return "\n".join(lines) + "\n"

"""Run directories → human-readable summaries. Reads artefacts; computes nothing new.

* ``format_summary`` — the text table printed after a run.
* ``write_report`` — a self-contained ``report.html``: one run's figures and tables, or a
  page comparing several runs.

Figures are matplotlib ``Figure`` objects, never pyplot (no GUI backend, no global figure
list), rendered to SVG and inlined, so the page needs no script, no stylesheet and no
network. matplotlib is imported only where a figure is drawn, so ``import read_distill``
stays light. The only arithmetic is aggregation for display (sums, shares, differences).
"""

from __future__ import annotations

import html
import io
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from read_distill.config import ConfigError
from read_distill.store import write_text
from read_distill.types import PHASES

#: Phases charged against the budget under some unit; the others are overhead (docs/method.md §1).
OVERHEAD_PHASES = ("probe", "eval", "profiling")
#: Okabe–Ito: distinguishable under the common colour-vision deficiencies. Black is softened
#: to grey so stacked bars stay readable; yellow, faint as a line on white, is darkened and last.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#444444", "#C9B800")
#: Spend that is no capability (the replay mixture): grey and hatched.
OTHER_COLOR = "#BBBBBB"
#: Capability scores and utilities are on the 0–100 scale; their axes show all of it.
SCORE_LIM = (0, 100)
#: Line styles and bar hatches that tell runs of one policy (different seeds) apart in overlays.
LINE_STYLES = ("-", "--", ":", "-.", (0, (1, 2)))
HATCHES = (None, "//", "..", "xx", "\\\\")
#: Figure width in inches: the page scales each SVG to its column, about 1.4 px per pt.
WIDTH = 11.0
STYLE = {"font.size": 10, "axes.titlesize": 10.5, "axes.titleweight": "bold", "axes.titlelocation": "left", "axes.spines.top": False,
         "axes.spines.right": False, "axes.grid": True, "axes.axisbelow": True, "grid.color": "#e4e4e4", "legend.frameon": False,
         "svg.fonttype": "none"}  # text stays text: searchable, and a fraction of the size of glyph paths
#: Names of the policy_info keys the shipped policies record; other keys keep their own.
INFO_NAMES = {"mu": "μ", "sigma": "σ: ensemble spread", "kappa": "κ: exploration weight", "n_actions": "candidate allocations",
              "gamma": "EXP3 γ", "t": "t: the policy's round counter"}


class ReportError(ConfigError):
    """A run directory cannot be reported on (missing, or not a run directory)."""


def format_summary(summary: dict[str, Any], run_dir: Path) -> str:
    """The final table printed after a run: utility, profile, tokens and time by phase."""
    lines = [
        f"run dir      {run_dir}",
        f"task         {summary['task']}   policy {summary['policy']}   seed {summary['seed']}",
        f"utility      {summary['initial_utility']:.2f} -> {summary['final_utility']:.2f}"
        f"  ({summary['final_utility'] - summary['initial_utility']:+.2f})",
        "",
        f"{'capability':<20}{'initial':>9}{'final':>9}{'change':>9}",
    ]
    for c, before in summary["initial_profile"].items():
        after = summary["final_profile"][c]
        lines.append(f"{c:<20}{before:>9.2f}{after:>9.2f}{after - before:>+9.2f}")
    ledger = summary["ledger"]
    lines += ["", f"tokens       billable {ledger['billable']:,} of budget {ledger['budget']:,} ({summary['budget_unit']})"]
    lines += [f"  {phase:<18}{ledger[phase]:>14,}" for phase in PHASES if phase in ledger]
    lines += ["", "wall time (s)"] + [f"  {phase:<18}{s:>14.2f}" for phase, s in summary["wall_s"].items()]
    return "\n".join(lines)


# --- reading a run directory -----------------------------------------------------------


@dataclass
class RoundView:
    """What one committed round left in ``rounds/NNNN/`` (``round`` is NNNN: 1..N, as the console prints it)."""

    round: int
    policy_info: dict[str, Any]
    scores: dict[str, float]
    intervals: dict[str, list[float]]
    reward: dict[str, Any]
    #: Tokens spent per capability, replay included (reward.json ``spend_per_capability``).
    spend: dict[str, int]


@dataclass
class RunView:
    """A run directory read back for display; tolerant of a run that has not finished."""

    path: Path
    config: dict[str, Any]
    summary: dict[str, Any] | None
    env: dict[str, Any]
    #: Headline facts: from summary.json once there is one, else from the config.
    task: str
    policy: str
    seed: Any
    budget: int
    unit: str
    capabilities: list[str]
    rounds: list[RoundView]
    #: Charges of committed work (initial probe, committed rounds, final evaluation).
    ledger: list[dict[str, Any]]
    #: Scores and 95 % intervals before round 1 (the intervals are only kept in state.json).
    initial: tuple[dict[str, float], dict[str, list[float]]]
    #: Test-split utility before round 1 and at the end (None until measured).
    utility: tuple[float | None, float | None]
    #: (rounds done, dev utility) at each checkpoint; 0 is before round 1.
    dev: list[tuple[int, float]]
    wall_s: dict[str, float]
    #: Things the reader should know (incomplete run, unreadable files).
    notes: list[str]

    def cfg(self, section: str, key: str, default: Any = None) -> Any:
        """``config.yaml``'s ``section.key``, or ``default``."""
        node = self.config.get(section)
        return node.get(key, default) if isinstance(node, dict) else default

    @property
    def complete(self) -> bool:
        return self.summary is not None

    @property
    def label(self) -> str:
        return f"{self.policy} · seed {self.seed}"

    @property
    def n_rounds(self) -> int:
        """Rounds on the x axes: the planned ones, or those present if more."""
        return max(int(self.cfg("run", "rounds", 0)), len(self.rounds), 1)

    @property
    def final(self) -> tuple[dict[str, float], dict[str, list[float]], str]:
        """The held-out final profile, or for an unfinished run the last probed one, and which it is."""
        if self.summary:
            return dict(self.summary["final_profile"]), dict(self.summary.get("final_intervals", {})), "final"
        if self.rounds:
            return self.rounds[-1].scores, self.rounds[-1].intervals, f"after round {self.rounds[-1].round}"
        return (*self.initial, "initial")


def _read(path: Path, notes: list[str]) -> Any:
    """A JSON or YAML file, or None (with a note when it exists but cannot be read)."""
    import yaml

    if not path.exists():
        return None
    try:
        return yaml.safe_load(path.read_text()) if path.suffix == ".yaml" else json.loads(path.read_text())
    except (OSError, ValueError, yaml.YAMLError) as e:
        notes.append(f"{path.name}: unreadable ({e.__class__.__name__}); skipped")
        return None


def _read_rounds(path: Path, committed: int, notes: list[str]) -> list[RoundView]:
    """Committed rounds only: one whose files exist but which ``state.json`` does not name yet is redone on resume."""
    rounds = []
    for rd in sorted(d for d in path.glob("rounds/*") if d.is_dir() and d.name.isdigit()):
        if int(rd.name) > committed:
            notes.append(f"round {int(rd.name)} was started but not committed; a resumed run redoes it")
            break
        alloc, prof, rew = (_read(rd / f"{name}.json", notes) for name in ("allocation", "profile", "reward"))
        if alloc is None or prof is None or rew is None:
            notes.append(f"rounds/{rd.name}: missing allocation, profile or reward record; skipped")
            continue
        spend = {k: int(v) for k, v in (rew.get("spend_per_capability") or {}).items()}
        rounds.append(RoundView(int(rd.name), dict(alloc.get("policy_info") or {}), {k: float(v) for k, v in prof.get("scores", {}).items()},
                                {k: list(v) for k, v in prof.get("intervals", {}).items()}, rew, spend))
    return rounds


def _read_ledger(path: Path, committed: int, finished: bool, notes: list[str]) -> list[dict[str, Any]]:
    """Charges of committed work; lines cut by a crash mid-write are skipped."""
    kept: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    bad = 0
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            e = json.loads(line)
            int(e["round"]), int(e["tokens"]), int(e["billable"]), str(e["phase"])
        except (ValueError, KeyError, TypeError):
            bad += bool(line.strip())
            continue
        # Before the final evaluation starts, charges past the committed round belong to a
        # round that is redone on resume; they are not counted.
        (kept if finished or e["round"] <= committed else dropped).append(e)
    if bad:
        notes.append(f"ledger.jsonl: {bad} unreadable line(s) skipped")
    if dropped:
        notes.append(f"ledger.jsonl: {len(dropped)} charge(s) of uncommitted work not counted")
    return kept


def load_run(run_dir: Path | str) -> RunView:
    """Read a run directory for display; raises ``ReportError`` if it is not one."""
    path = Path(run_dir)
    if not path.is_dir():
        raise ReportError(f"{path}: no such run directory")
    if not any((path / f).exists() for f in ("config.yaml", "state.json", "summary.json")):
        raise ReportError(f"{path}: not a run directory (no config.yaml, state.json or summary.json)")
    notes: list[str] = []
    config = _read(path / "config.yaml", notes)
    config = config if isinstance(config, dict) else {}
    summary, state = _read(path / "summary.json", notes), _read(path / "state.json", notes)

    def head(key: str, section: str, cfg_key: str, default: Any = "?") -> Any:
        return summary[key] if summary else (config.get(section) or {}).get(cfg_key, default)

    facts = (str(head("task", "run", "name")), str(head("policy", "policy", "name")), head("seed", "run", "seed"),
             int(head("budget_tokens", "budget", "total_tokens", 0)), str(head("budget_unit", "budget", "unit")))
    # The last committed round: 0 once the initial probe is, -1 before that.
    committed = 10**9 if summary else (int(state["round"]) if state else -1)
    rounds = _read_rounds(path, committed, notes)
    ledger = _read_ledger(path / "ledger.jsonl", committed, summary is not None, notes)
    latest = summary or state or {}
    prof = (state or {}).get("initial_profile") or {}
    s0 = dict(summary["initial_profile"]) if summary else dict(prof.get("scores", {}))
    caps = list(config.get("capabilities") or s0 or (rounds[0].scores if rounds else []))
    u0 = latest.get("initial_utility")
    utility = (None if u0 is None else float(u0), float(summary["final_utility"]) if summary else None)
    dev = [(int(t), float(u)) for t, u in latest.get("dev_utility") or latest.get("dev") or []]
    wall = {str(k): float(v) for k, v in sorted((latest.get("wall_s") or {}).items())}
    if not summary:
        planned = (config.get("run") or {}).get("rounds", "?")
        notes.insert(0, f"Incomplete run: {max(committed, 0)} of {planned} rounds committed and no summary.json yet — figures show the "
                        "rounds that exist; the final column is the last probed profile, not the held-out test profile.")
    return RunView(path, config, summary, _read(path / "env.json", notes) or {}, *facts, caps, rounds, ledger, (s0, dict(prof.get("intervals", {}))), utility, dev, wall, notes)


def spend_shares(run: RunView) -> dict[str, list[float]]:
    """Per spend series (capabilities, then replay), its % of each round's spent tokens;
    series that never got a token are left out. The shares of a round add to 100."""
    series = dict.fromkeys(list(run.capabilities) + [k for r in run.rounds for k in r.spend])
    shares = {s: [100 * r.spend.get(s, 0) / (sum(r.spend.values()) or 1) for r in run.rounds] for s in series}
    return {s: v for s, v in shares.items() if any(v)}


def _phase_rows(run: RunView) -> tuple[dict[str, dict[str, int]], dict[int, int]]:
    """Per phase: tokens and billable, split initial probe (round 0) / rounds / final evaluation; and billable per round."""
    planned = run.n_rounds
    table: dict[str, dict[str, int]] = {}
    per_round: dict[int, int] = {}
    for e in run.ledger:
        t, n = int(e["round"]), int(e["tokens"])
        row = table.setdefault(str(e["phase"]), dict.fromkeys(("tokens", "billable", "initial", "rounds", "final", "cached"), 0))
        row["tokens"] += n
        row["billable"] += int(e["billable"])
        row["initial" if t < 1 else ("final" if t > planned else "rounds")] += n
        row["cached"] += n if e.get("cached") else 0
        if 1 <= t <= planned:
            per_round[t] = per_round.get(t, 0) + int(e["billable"])
    return table, per_round


# --- figures ---------------------------------------------------------------------------


def _panels(n: int, ncols: int, height: float, **kw: Any) -> tuple[Any, list[Any]]:
    """A figure of ``n`` panels in rows of ``ncols``, each ``height`` inches tall; unused slots hidden."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH, height * -(-n // ncols)), layout="constrained")
    axes = fig.subplots(-(-n // ncols), ncols, squeeze=False, **kw).flat
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, list(axes[:n])


def _svg(fig: Any, name: str) -> str:
    """``fig`` as an inline ``<svg>``. Ids are salted with ``name`` so the clip paths and markers
    of several figures on one page do not collide; unreferenced ids and the RDF metadata
    (which names external URLs) are dropped."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": name}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = re.sub(r"<metadata>.*?</metadata>", "", buf.getvalue()[buf.getvalue().index("<svg"):], flags=re.S)
    used = set(re.findall(r"#([\w.-]+)", svg))
    svg = re.sub(r'\sid="([^"]*)"', lambda m: m.group(0) if m.group(1) in used else "", svg)
    return svg.replace("<svg ", f'<svg class="chart" role="img" aria-label="{_e(name)}" ', 1)


def _round_axis(fig: Any, axes: Sequence[Any], n: int, nbins: int = 12) -> None:
    """Rounds 1..n on x, numbered as stored and as the console prints them ("round 1/n" is rounds/0001); 0 is the initial probe."""
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.set_xlim(-0.5, n + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=nbins, integer=True))
    fig.supxlabel("round (0 = before round 1)", fontsize=10)


def _tex(text: Any) -> str:
    """Text from the run dir, drawn literally (a ``$`` would start mathtext)."""
    return str(text).replace("$", r"\$")


def _color(series: str, caps: Sequence[str]) -> str:
    return PALETTE[list(caps).index(series) % len(PALETTE)] if series in caps else OTHER_COLOR


def _styles(runs: Sequence[RunView]) -> list[tuple[str, Any, str | None]]:
    """(colour, line style, hatch) per run: colour by policy, line style and hatch by rank among its policy's runs."""
    policies = [r.policy for r in runs]
    order, ranks = list(dict.fromkeys(policies)), [policies[:i].count(p) for i, p in enumerate(policies)]
    return [(PALETTE[order.index(p) % len(PALETTE)], LINE_STYLES[k % len(LINE_STYLES)], HATCHES[k % len(HATCHES)]) for p, k in zip(policies, ranks, strict=True)]


def _allocation_figure(runs: Sequence[RunView], labels: Sequence[str]) -> Any:
    """Stacked shares of each round's spent tokens per capability and replay, one panel per run."""
    ncols = 1 if len(runs) == 1 else 2
    fig, axes = _panels(len(runs), ncols, 3.4 if ncols == 1 else 2.6)
    caps = list(dict.fromkeys(c for r in runs for c in r.capabilities))
    handles = {}
    for ax, run, label in zip(axes, runs, labels, strict=True):
        bottom = [0.0] * len(run.rounds)
        for s, shares in spend_shares(run).items():
            handles[s] = ax.bar([r.round for r in run.rounds], shares, 0.8, bottom=bottom, color=_color(s, caps), label=_tex(s),
                                edgecolor="white" if s in caps else "#777", linewidth=0.5, hatch=None if s in caps else "//")
            bottom = [b + v for b, v in zip(bottom, shares, strict=True)]
        ax.set(ylim=SCORE_LIM, ylabel="share of spent tokens (%)", title=_tex(label) if ncols > 1 else "")
    _round_axis(fig, axes, max(r.n_rounds for r in runs), nbins=12 // ncols)
    order = [s for s in caps if s in handles] + [s for s in handles if s not in caps]
    fig.legend([handles[s] for s in order], [handles[s].get_label() for s in order], loc="outside right upper")
    return fig


def _profile_figure(run: RunView) -> Any:
    """One panel per capability: score after each round, its 95 % interval, the initial score."""
    s0, i0 = run.initial
    fig, axes = _panels(len(run.capabilities), 4, 2.3, sharey=True)
    for i, (ax, c) in enumerate(zip(axes, run.capabilities, strict=True)):
        points = ([(0, s0[c], i0.get(c))] if c in s0 else []) + [(r.round, r.scores[c], r.intervals.get(c)) for r in run.rounds if c in r.scores]
        xs, color = [x for x, _, _ in points], _color(c, run.capabilities)
        ax.fill_between(xs, [iv[0] if iv else y for _, y, iv in points], [iv[1] if iv else y for _, y, iv in points], color=color, alpha=0.22, lw=0, label="95 % interval")
        ax.plot(xs, [y for _, y, _ in points], color=color, marker="o", ms=3, lw=1.6, label="score")
        if c in s0:
            ax.axhline(s0[c], color="#666", ls="--", lw=0.9, label="initial score")
        ax.set(title=_tex(c), ylim=SCORE_LIM, ylabel="score" if i % 4 == 0 else "")
    _round_axis(fig, axes, run.n_rounds, nbins=5)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside upper center", ncols=3)
    return fig


def _reward_figure(run: RunView, info: dict[str, list[tuple[int, float]]]) -> Any:
    """R, its gain and β·spillover, and its cost penalty, each on its own scale (the cost
    penalty can dwarf the parts that differ between allocations, or be dwarfed by them);
    then the policy's μ ± κ·σ against the outcome, where it recorded them."""
    beta = float(run.cfg("reward", "beta", 1.0))
    xs = [r.round for r in run.rounds]
    part = {k: [float(r.reward.get(k, 0.0)) for r in run.rounds] for k in ("reward", "gain", "spillover", "cost_penalty")}
    ucb = "mu" in info and "sigma" in info
    fig, axes = _panels(3 + ucb, 1, 1.9, sharex=True)
    axes[0].plot(xs, part["reward"], color="#111", marker="o", ms=3.5, lw=1.6)
    axes[0].set_title("Reward R (reward.json)")
    axes[1].bar([x - 0.2 for x in xs], part["gain"], 0.4, color=PALETTE[2], label="gain r·Δs")
    axes[1].bar([x + 0.2 for x in xs], [-beta * s for s in part["spillover"]], 0.4, color=PALETTE[3], label=f"−β·spillover (β = {beta:g})")
    axes[1].set_title("Gain and spillover (spillover drawn below zero: it is subtracted)")
    axes[2].bar(xs, [-c for c in part["cost_penalty"]], 0.6, color=PALETTE[4])
    axes[2].set_title("Cost penalty λ·tokens, drawn below zero (its own scale)")
    if ucb:
        # μ leaves the cost out (it is the same for every candidate of a round): it is set against gain − β·spillover.
        (mx, mu), (_, sigma) = zip(*info["mu"], strict=True), zip(*info["sigma"], strict=True)
        kappa = dict(info.get("kappa", []))
        axes[3].errorbar(mx, mu, yerr=[kappa.get(x, 1.0) * s for x, s in zip(mx, sigma, strict=True)], color=PALETTE[0], marker="o", ms=3.5,
                         capsize=3, label="μ ± κ·σ (predicted)")
        axes[3].plot(xs, [g - beta * s for g, s in zip(part["gain"], part["spillover"], strict=True)], color="#111", ls="--", marker="o", ms=3, label="gain − β·spillover (observed)")
        axes[3].set_title("The policy's prediction for its choice against the outcome (shaded: warm-up rounds)")
        _shade_warmup(axes[3], run)
    for ax in axes:
        ax.axhline(0, color="#777", lw=0.8)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=9)
        ax.set_ylabel("score points")
    _round_axis(fig, axes, run.n_rounds)
    return fig


def _numeric_info(run: RunView) -> dict[str, list[tuple[int, float]]]:
    """policy_info keys holding a number in some round → (round, value); booleans excluded."""
    out: dict[str, list[tuple[int, float]]] = {}
    for r in run.rounds:
        for k, v in r.policy_info.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out.setdefault(k, []).append((r.round, float(v)))
    return out


def _shade_warmup(ax: Any, run: RunView) -> None:
    for r in run.rounds:
        if r.policy_info.get("warmup") is True:
            ax.axvspan(r.round - 0.5, r.round + 0.5, color="#888", alpha=0.13, lw=0)


def _policy_info_figure(run: RunView, info: dict[str, list[tuple[int, float]]]) -> Any:
    """One small panel per numeric policy_info entry; warm-up rounds shaded."""
    fig, axes = _panels(len(info), 3, 2.3)
    for i, (ax, (k, pts)) in enumerate(zip(axes, info.items(), strict=True)):
        _shade_warmup(ax, run)
        ax.plot(*zip(*pts, strict=True), color=PALETTE[(i + 1) % len(PALETTE)], marker="o", ms=3)
        ax.set_title(_tex(INFO_NAMES.get(k, k)), fontsize=9.5)
    _round_axis(fig, axes, run.n_rounds, nbins=5)
    return fig


def _burn_down_figure(runs: Sequence[RunView], labels: Sequence[str]) -> Any:
    """Cumulative billable tokens per run as a share of its own budget (so runs of different
    budgets compare), against the budget and an even pace to it."""
    fig, (ax,) = _panels(1, 1, 3.4)
    ax.axhline(100, color=PALETTE[3], ls="--", lw=1.4, label="budget B" + (f" = {runs[0].budget:,} tokens" if len(runs) == 1 else " (each run's own)"))
    for i, n in enumerate(sorted({r.n_rounds for r in runs})):
        ax.plot([0, n], [0, 100], color="#999", ls=":", lw=1.2, label=None if i else "even pace B·t/T")
    for run, label, (color, ls, _) in zip(runs, labels, _styles(runs), strict=True):
        per_round = _phase_rows(run)[1]
        xs = [0, *sorted(per_round)]
        ax.plot(xs, [100 * sum(v for t, v in per_round.items() if t <= x) / (run.budget or 1) for x in xs], color=color, ls=ls, marker="o", ms=3.5,
                lw=2, label=_tex(label) if len(runs) > 1 else "cumulative billable tokens")
    ax.set(ylim=(0, 105), ylabel=f"billable tokens ({runs[0].unit}), % of B")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _round_axis(fig, [ax], max(r.n_rounds for r in runs))
    return fig


def _dev_figure(runs: Sequence[RunView], labels: Sequence[str]) -> Any:
    """Dev-split utility at each checkpoint, one line per run."""
    fig, (ax,) = _panels(1, 1, 3.0)
    for run, label, (color, ls, _) in zip(runs, labels, _styles(runs), strict=True):
        ax.plot(*zip(*run.dev, strict=True), color=color, ls=ls, marker="o", ms=4, lw=2, label=_tex(label))
    ax.set(ylim=SCORE_LIM, ylabel="dev utility")
    if len(runs) > 1:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _round_axis(fig, [ax], max(r.n_rounds for r in runs))
    return fig


def _changes(run: RunView) -> dict[str, float]:
    """Final (or latest) minus initial score per capability."""
    return {c: run.final[0][c] - run.initial[0][c] for c in run.capabilities if c in run.initial[0] and c in run.final[0]}


def _change_figure(runs: Sequence[RunView], labels: Sequence[str]) -> Any:
    """Final − initial score per capability, a bar per run; one run's bars get whiskers
    (its final 95 % interval shifted by the initial score) and capability colours."""
    caps = list(dict.fromkeys(c for r in runs for c in r.capabilities))
    fig, (ax,) = _panels(1, 1, 3.4)
    width = 0.8 / len(runs)
    for j, (run, label, (color, _, hatch)) in enumerate(zip(runs, labels, _styles(runs), strict=True)):
        ch, iv = _changes(run), run.final[1]
        xs = [i - 0.4 + (j + 0.5) * width for i, c in enumerate(caps) if c in ch]
        ax.bar(xs, list(ch.values()), width * 0.9, color=[_color(c, caps) for c in ch] if len(runs) == 1 else color, hatch=hatch, edgecolor="white",
               linewidth=0.5, label=_tex(label))
        if len(runs) == 1 and ch:
            s1 = {c: run.initial[0][c] + d for c, d in ch.items()}
            err = [[max(0.0, s1[c] - iv[c][0]) if c in iv else 0.0 for c in ch], [max(0.0, iv[c][1] - s1[c]) if c in iv else 0.0 for c in ch]]
            ax.errorbar(xs, list(ch.values()), yerr=err, fmt="none", ecolor="#111", lw=1.2)
    ax.axhline(0, color="#777", lw=0.8)
    # Long names wrap after their first underscore so neighbouring labels do not collide.
    ax.set_xticks(range(len(caps)), [_tex(c.replace("_", "_\n", 1) if len(c) > 12 else c) for c in caps])
    ax.set_ylabel("score change (points)")
    if len(runs) > 1:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


# --- HTML ------------------------------------------------------------------------------

CSS = """
body { margin: 0; background: #fafafa; color: #1a1a1a; font: 16px/1.5 system-ui, "DejaVu Sans", sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; } h1 { font-size: 1.6em; margin: 0.2em 0; }
h2 { font-size: 1.3em; margin: 0 0 0.3em; } h3 { font-size: 1.05em; margin: 1.2em 0 0.4em; } .sub { color: #555; word-break: break-all; }
section, header { background: #fff; border: 1px solid #e2e2e2; border-radius: 8px; padding: 18px 22px; margin: 18px 0; }
.intro { color: #444; max-width: 85ch; } .empty { color: #666; font-style: italic; } svg.chart { width: 100%; height: auto; display: block; }
.banner { border-radius: 6px; padding: 10px 14px; margin: 10px 0; background: #eef5fb; border: 1px solid #56b4e9; }
.banner.incomplete { background: #fff4e0; border-color: #e69f00; } .facts dd { margin: 0; font-size: 1.1em; font-weight: 600; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 8px 24px; }
.facts div { border-left: 3px solid #0072b2; padding-left: 10px; } .facts dt { color: #555; font-size: 0.85em; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 0.95em; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e6e6e6; text-align: right; white-space: nowrap; } th { background: #f3f3f3; white-space: normal; }
th:first-child, td:first-child { text-align: left; } tr.total td { font-weight: 600; border-top: 2px solid #ccc; }
.up { color: #0a6b50; } .down { color: #b04000; } code { background: #f1f1f1; padding: 0 4px; } footer { color: #666; font-size: 0.85em; }
@media print { body { background: #fff; } section, header { break-inside: avoid; border: none; } }
"""


class _Html(str):
    """A table cell that is markup already (escaped where it needs to be)."""


def _e(x: Any) -> str:
    """Escape any text for HTML (attributes included)."""
    return html.escape(str(x), quote=True)


def _section(anchor: str, title: str, body: str, intro: str = "") -> str:
    return f'<section id="{anchor}"><h2>{_e(title)}</h2>' + (f'<p class="intro">{intro}</p>' if intro else "") + f"{body}</section>"


def _empty(msg: str) -> str:
    return f'<p class="empty">{_e(msg)}</p>'


def _td(x: Any) -> str:
    return f"<td>{x if isinstance(x, _Html) else _e(x)}</td>"


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], total: bool = False) -> str:
    """A table; cells are escaped unless ``_Html``. With ``total`` the last row is a bold total."""
    body = "".join(f"<tr{' class=total' if total and i == len(rows) - 1 else ''}>" + "".join(map(_td, row)) + "</tr>" for i, row in enumerate(rows))
    return "<table><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + f"</tr></thead><tbody>{body}</tbody></table>"


def _num(x: float | None, fmt: str = ".2f") -> str:
    return "–" if x is None else format(x, fmt)


def _allocation_section(runs: Sequence[RunView], labels: Sequence[str]) -> str:
    intro = ("Share of each round's spent tokens per capability (reward.json <code>spend_per_capability</code>). Replay, the general "
             "mixture every policy trains on alike, is its own hatched series, so each bar adds to 100 %; the policy's allocation "
             "w<sub>t</sub> splits the rest (docs/method.md §4).")
    body = _svg(_allocation_figure(runs, labels), "allocation") if any(r.rounds for r in runs) else _empty("No committed round yet.")
    return _section("allocation", "Allocation per round", body, intro)


def _profile_section(run: RunView) -> str:
    intro = "Probed score of each capability after every round, with its 95 % interval; round 0 is the initial profile (dashed line)."
    body = _svg(_profile_figure(run), "profile") if run.initial[0] or run.rounds else _empty("No profile recorded yet.")
    return _section("profile", "Capability profile per round", body, intro)


def _reward_section(run: RunView) -> str:
    intro = "R = gain − β·spillover − cost penalty per round (docs/method.md §6), in requirement-weighted score points."
    if not run.rounds:
        return _section("reward", "Reward per round", _empty("No committed round yet."), intro)
    info = _numeric_info(run)
    if {"mu", "sigma"} <= set(info):
        intro += (" The policy's UCB prediction μ ± κ·σ for the allocation it chose (upper end: its UCB score) is set against "
                  "gain − β·spillover: μ leaves the cost out, as it is the same for every candidate of a round.")
    body = _svg(_reward_figure(run, info), "reward")
    rest = {k: v for k, v in info.items() if k != "mu" or "sigma" not in info}
    if rest:
        warm = "; shaded rounds are warm-up" if any(r.policy_info.get("warmup") is True for r in run.rounds) else ""
        body += (f"<h3>The policy's record</h3><p class='intro'>Every numeric entry of <code>policy_info</code> in allocation.json, one panel "
                 f"each{warm}.</p>" + _svg(_policy_info_figure(run, rest), "policy_info"))
    return _section("reward", "Reward per round and the policy's view", body, intro)


def _ledger_section(runs: Sequence[RunView], labels: Sequence[str]) -> str:
    unit = runs[0].unit
    intro = (f"Billable tokens (budget unit <code>{_e(unit)}</code>) round by round against the budget B. Probe, evaluation and "
             "profiling tokens are overhead, outside B (docs/method.md §1).")
    title = "Ledger: budget burn-down" + (" and tokens per phase" if len(runs) == 1 else "")
    if not any(r.ledger for r in runs):
        return _section("ledger", title, _empty("The ledger has no charges yet."), intro)
    body = _svg(_burn_down_figure(runs, labels), "burn_down")
    if len(runs) == 1:
        table, B = _phase_rows(runs[0])[0], runs[0].budget
        order = [*(p for p in PHASES if p in table), *(p for p in table if p not in PHASES)]
        rows = [[ph, *(f"{v:,}" for v in table[ph].values()), "overhead" if ph in OVERHEAD_PHASES else
                 ("billable" if table[ph]["billable"] else f"not billable under unit {unit}")] for ph in order]
        billable = sum(r["billable"] for r in table.values())
        rows.append(["total billable", "", f"{billable:,}", "", "", "", "", f"{100 * billable / B:.1f} % of B = {B:,}" if B else ""])
        body += "<h3>Tokens per phase (ledger.jsonl)</h3>" + _table(
            ["phase", "tokens processed", "billable", "before round 1", "in rounds", "final eval", "from cache", "counts as"], rows, total=True)
        wall = runs[0].wall_s
        if wall:
            rows = [[k, f"{v:,.2f}"] for k, v in wall.items()] + [["total", f"{sum(wall.values()):,.2f}"]]
            body += "<h3>Wall time by phase</h3>" + _table(["phase", "seconds"], rows, total=True)
    return _section("ledger", title, body, intro)


def _dev_section(runs: Sequence[RunView], labels: Sequence[str]) -> str:
    intro = "Task utility on the dev split at each checkpoint (it calibrates rewards and shrinks κ when it stalls)."
    u0, u1 = runs[0].utility
    if len(runs) == 1 and u0 is not None:
        intro += f" Test-split utility: initial {u0:.2f}" + (f" → final {u1:.2f}." if u1 is not None else " (final not measured yet).")
    body = _svg(_dev_figure(runs, labels), "dev") if any(r.dev for r in runs) else _empty("No dev checkpoint recorded yet.")
    return _section("dev", "Dev utility checkpoints", body, intro)


def _final_table(run: RunView) -> str:
    """Initial, final, change and interval per capability, and the billable tokens spent on each (replay in its own row)."""
    (s0, _), (s1, iv1, what) = run.initial, run.final
    spend: dict[str, int] = {}
    for r in run.rounds:
        for k, v in r.spend.items():
            spend[k] = spend.get(k, 0) + v
    req = run.cfg("task", "requirement") or {}
    rows = []
    for c in [c for c in run.capabilities if c in s0 or c in s1] + [k for k in spend if k not in run.capabilities]:
        d = s1[c] - s0[c] if c in s0 and c in s1 else None
        cls = "" if d is None or abs(d) <= 0.005 else ("up" if d > 0 else "down")
        change = _Html(f"<span class='{cls}'>{'▲ ' if cls == 'up' else '▼ ' if cls == 'down' else ''}{_num(d, '+.2f')}</span>")
        rows.append([c, *([_num(float(req.get(c, 0))) if c in run.capabilities else "–"] if req else []), _num(s0.get(c)), _num(s1.get(c)), change,
                     f"[{iv1[c][0]:.2f}, {iv1[c][1]:.2f}]" if c in iv1 else "–", f"{spend.get(c, 0):,}", f"{100 * spend.get(c, 0) / (sum(spend.values()) or 1):.1f} %"])
    head = ["capability", *(["requirement"] if req else []), "initial", "final" if run.complete else f"latest ({what})", "change", "95 % interval", "billable tokens spent on it", "share"]
    return _table(head, rows)


def _final_section(runs: Sequence[RunView], labels: Sequence[str]) -> str:
    if len(runs) > 1:
        caps = list(dict.fromkeys(c for r in runs for c in r.capabilities))
        table = _table(["capability", *labels], [[c, *(_num(ch.get(c), "+.2f") for ch in map(_changes, runs))] for c in caps])
        intro = "Final minus initial score per capability (the latest probed profile for incomplete runs)."
    else:
        table = _final_table(runs[0])
        intro = ("Initial and final profile on the held-out test probes, with the final 95 % interval (the whiskers), and the billable tokens "
                 "spent on each capability, replay included, so the shares add to 100 %." if runs[0].complete else
                 f"The run is incomplete: the last column is the profile probed {runs[0].final[2]}, not the held-out final profile.")
    chart = _svg(_change_figure(runs, labels), "change") if any(map(_changes, runs)) else _empty("No profile recorded.")
    return _section("final", "Final profile", table + chart, intro)


def _banners(run: RunView, prefix: str = "") -> str:
    return "".join(f'<div class="banner{" incomplete" if i == 0 and not run.complete else ""}">{_e(prefix + n)}</div>' for i, n in enumerate(run.notes))


def _run_header(run: RunView) -> tuple[str, str]:
    """A one-run report's title and header: the headline facts."""
    (u0, u1), B = run.utility, run.budget
    billable = sum(int(e["billable"]) for e in run.ledger)
    facts = {
        "task": run.task, "policy": run.policy, "seed": run.seed,
        "budget": f"{B:,} tokens ({run.unit})" if B else "–",
        "billable spent": f"{billable:,}" + (f" ({100 * billable / B:.1f} % of B)" if B else ""),
        "rounds": f"{len(run.rounds)} of {run.cfg('run', 'rounds', '?')}" + ("" if run.complete else " (incomplete)"),
        "test utility (initial → final)": "–" if u0 is None else f"{u0:.2f} → " + ("(not measured yet)" if u1 is None else f"{u1:.2f} ({u1 - u0:+.2f})"),
        "wall time": f"{sum(run.wall_s.values()):,.1f} s",
    }
    title = f"read-distill report — {facts['task']} · {run.label}"
    dl = '<dl class="facts">' + "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in facts.items()) + "</dl>"
    return title, f"<p class='sub'>{_e(run.path)} — {'complete' if run.complete else 'INCOMPLETE'}</p>{_banners(run)}{dl}"


def _comparison_header(runs: Sequence[RunView], labels: Sequence[str], out: Path) -> tuple[str, str]:
    """A comparison page's title and header: one row of headline facts per run."""
    rows = []
    for r, lab in zip(runs, labels, strict=True):
        (u0, u1), page = r.utility, r.path / "report.html"
        rows.append([lab, r.task, "complete" if r.complete else "incomplete", len(r.rounds), f"{r.budget:,}",
                     f"{sum(int(e['billable']) for e in r.ledger):,}", _num(u0), _num(u1), "" if u0 is None or u1 is None else f"{u1 - u0:+.2f}",
                     _Html(f"<a href='{_e(os.path.relpath(page, out.parent))}'>report</a>" if page.exists() else "")])
    table = _table(["run", "task", "status", "rounds", "budget", "billable", "initial U", "final U", "change", ""], rows)
    banners = "".join(_banners(r, f"{lab}: ") for r, lab in zip(runs, labels, strict=True))
    return f"read-distill comparison — {len(runs)} runs", f"<p class='sub'>{_e(', '.join(str(r.path) for r in runs))}</p>{banners}{table}"


def _page(runs: Sequence[RunView], out: Path) -> str:
    """The HTML page: one run's report, or several runs compared."""
    labels = [r.label for r in runs]
    # The same policy and seed twice (e.g. two budgets): the directory name tells them apart.
    labels = [f"{lab} ({r.path.name})" if labels.count(lab) > 1 else lab for lab, r in zip(labels, runs, strict=True)]
    if len(runs) == 1:
        (title, header), run = _run_header(runs[0]), runs[0]
        sections = [_allocation_section(runs, labels), _profile_section(run), _reward_section(run), _ledger_section(runs, labels), _dev_section(runs, labels), _final_section(runs, labels)]
    else:
        title, header = _comparison_header(runs, labels, out)
        sections = [_allocation_section(runs, labels), _ledger_section(runs, labels), _dev_section(runs, labels), _final_section(runs, labels)]
    env = runs[0].env if isinstance(runs[0].env, dict) else {}
    versions = ", ".join(f"{k} {v}" for k, v in (env.get("versions") or {}).items())
    footer = f"Generated by read-distill's report from the run directory artefacts only. Run env: {versions}" + (f"; git {env['git_sha'][:12]}" if env.get("git_sha") else "") + "."
    return ("<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
            f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n<header><h1>{_e(title)}</h1>{header}</header>\n"
            + "\n".join(sections) + f"\n<footer>{_e(footer)}</footer>\n</main>\n</body>\n</html>\n")


def write_report(run_dirs: Sequence[Path | str] | Path | str, out: Path | str | None = None) -> Path:
    """Write a self-contained HTML report and return its path.

    One run dir: the run's report, at ``<run_dir>/report.html`` unless ``out`` is given.
    Several: a page overlaying them, at ``out`` (default: ``report.html`` in the runs'
    common parent directory). Reads the run directories only; an unfinished run is shown
    as far as it got, marked incomplete. Raises ``ReportError`` (a ``ConfigError``) when a
    path is not a run directory.
    """
    import matplotlib

    dirs = [Path(run_dirs)] if isinstance(run_dirs, (str, Path)) else [Path(d) for d in run_dirs]
    if not dirs:
        raise ReportError("report: give at least one run directory")
    runs = [load_run(d) for d in dirs]
    default = dirs[0] / "report.html" if len(dirs) == 1 else Path(os.path.commonpath([d.resolve() for d in dirs])) / "report.html"
    target = Path(out) if out is not None else default
    with matplotlib.rc_context(STYLE):
        write_text(target, _page(runs, target))
    return target

"""Run directories → human-readable summaries: ``format_summary``, the text table printed after a run, and
``write_report``, a self-contained ``report.html`` of one run's figures and tables or of several runs compared.
Reads artefacts; the only arithmetic is aggregation for display. Figures are matplotlib ``Figure`` objects, never
pyplot (no GUI backend, no global figure list), inlined as SVG (no script, stylesheet or network needed); matplotlib
is imported only where a figure is drawn, so ``import read_distill`` stays light."""

import html
import io
import json
import os
import re
from collections import Counter, namedtuple
from collections.abc import Sequence
from itertools import cycle, product
from pathlib import Path
from typing import Any

import yaml

from read_distill.config import ConfigError
from read_distill.ledger import teacher_tokens
from read_distill.store import write_text
from read_distill.types import PHASES, LedgerEntry

#: Okabe–Ito: distinguishable under the common colour-vision deficiencies. Black is softened
#: to grey so stacked bars stay readable; yellow, faint as a line on white, is darkened and last.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#444444", "#C9B800")
#: Spend that is no capability (the replay mixture): grey and hatched.
OTHER_STYLE = {"color": "#BBBBBB", "edgecolor": "#777", "hatch": "//"}
#: Capability scores and utilities are on the 0–100 scale; their axes show all of it.
SCORE_LIM = (0, 100)
#: Line styles and bar hatches that tell runs of one policy (different seeds) apart in overlays.
LINE_STYLES = ("-", "--", ":", "-.", (0, (1, 2)))
HATCHES = (None, "//", "..", "xx", "\\\\")
STYLE = {
    "font.size": 10, "axes.titlesize": 10.5, "axes.titleweight": "bold", "axes.titlelocation": "left",
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "axes.axisbelow": True,
    "grid.color": "#e4e4e4", "legend.frameon": False,
    "svg.fonttype": "none",  # text stays text: searchable, and a fraction of the size of glyph paths
    "svg.hashsalt": "read-distill",  # the same run dir gives the same page
    "text.parse_math": False,  # names from the run dir are drawn literally: a "$" would start mathtext
}
#: Names of the policy_info keys the shipped policies record; other keys keep their own.
INFO_NAMES = {"mu": "μ", "sigma": "σ: ensemble spread", "kappa": "κ: exploration weight",
              "n_actions": "candidate allocations", "gamma": "EXP3 γ", "t": "t: the policy's round counter"}


class ReportError(ConfigError):
    """A run directory cannot be reported on (missing, or not a run directory)."""


def format_summary(summary: dict[str, Any], run_dir: Path) -> str:
    """The final table printed after a run: utility, profile, tokens and time by phase."""
    u0, u1, s1, ledger = (summary[k] for k in ("initial_utility", "final_utility", "final_profile", "ledger"))
    return "\n".join([
        f"run dir      {run_dir}",
        f"task         {summary['task']}   policy {summary['policy']}   seed {summary['seed']}",
        f"utility      {u0:.2f} -> {u1:.2f}  ({u1 - u0:+.2f})",
        "", f"{'capability':<20}{'initial':>9}{'final':>9}{'change':>9}",
        *(f"{c:<20}{s0:>9.2f}{s1[c]:>9.2f}{s1[c] - s0:>+9.2f}" for c, s0 in summary["initial_profile"].items()),
        "", f"tokens       billable {ledger['billable']:,} of budget {ledger['budget']:,} ({summary['budget_unit']})",
        *(f"  {phase:<18}{ledger[phase]:>14,}" for phase in PHASES if phase in ledger),
        "", "wall time (s)", *(f"  {phase:<18}{s:>14.2f}" for phase, s in summary["wall_s"].items()),
        *_peak_lines(summary),
    ])


def _peak_lines(summary: dict[str, Any]) -> list[str]:
    """Peak memory per phase (summaries of older versions have none)."""
    peaks = summary.get("peak_memory_mb") or {}
    if not peaks:
        return []
    kind = {"cuda_max_allocated": "GPU allocated", "process_max_rss": "process RSS so far"}.get(summary.get("peak_memory_kind", ""), "")
    return ["", f"peak memory (MiB, {kind})", *(f"  {phase:<18}{mb:>14,.0f}" for phase, mb in peaks.items())]


#: One committed round's records in rounds/NNNN/ (``round`` is NNNN: 1..N, as the console prints it).
RoundView = namedtuple("RoundView", "round policy_info scores intervals reward spend")


class RunView:
    """A run directory read back for display, tolerant of a run that has not finished; ``ReportError`` if it is
    not one. The headline facts come from summary.json once there is one, else from the config."""

    def __init__(self, run_dir: Path | str) -> None:
        self.path, self.notes = Path(run_dir), []  # notes: an incomplete run, unreadable files
        if not self.path.is_dir():
            raise ReportError(f"{self.path}: no such run directory")
        if not any((self.path / f).exists() for f in ("config.yaml", "state.json", "summary.json")):
            raise ReportError(f"{self.path}: not a run directory (no config.yaml, state.json or summary.json)")
        self.config, self.env = self._read("config.yaml") or {}, self._read("env.json") or {}
        summary, state = self._read("summary.json"), self._read("state.json")
        s, self.complete = summary or {}, summary is not None
        self.task = str(s.get("task", self.cfg("run", "name", "?")))
        self.policy = str(s.get("policy", self.cfg("policy", "name", "?")))
        self.seed = s.get("seed", self.cfg("run", "seed", "?"))
        self.budget = int(s.get("budget_tokens", self.cfg("budget", "total_tokens", 0)))
        self.unit = str(s.get("budget_unit", self.cfg("budget", "unit", "?")))
        self.label = f"{self.policy} · seed {self.seed}"
        # The last committed round: 0 once the initial probe is, -1 before that. A later round's files (started,
        # not committed) are redone on resume, so are not shown.
        committed = 10**9 if self.complete else (int(state["round"]) if state else -1)
        names = sorted(d.name for d in self.path.glob("rounds/*") if d.is_dir() and d.name.isdigit())
        if names and int(names[-1]) > committed:
            self.notes.append(f"round {int(names[-1])} was started but not committed; a resumed run redoes it")
        files = [(int(rd), *(self._read(f"rounds/{rd}/{f}.json") or {} for f in ("allocation", "profile", "reward")))
                 for rd in names if int(rd) <= committed]
        self.rounds = [RoundView(t, a.get("policy_info") or {}, p.get("scores", {}), p.get("intervals", {}), w,
                                 w.get("spend_per_capability") or {}) for t, a, p, w in files]
        self.ledger = self._read_ledger(committed)
        self.warmup = [r.round for r in self.rounds if r.policy_info.get("warmup") is True]
        keys = dict.fromkeys(k for r in self.rounds for k, v in r.policy_info.items() if type(v) in (int, float))
        self.info = {k: [(r.round, float(r.policy_info[k])) for r in self.rounds  # numbers only, no booleans
                         if type(r.policy_info.get(k)) in (int, float)] for k in keys}
        self.n_rounds = max(int(self.cfg("run", "rounds", 0)), len(self.rounds), 1)  # the x axes' rounds
        latest, prof = s or state or {}, (state or {}).get("initial_profile") or {}
        # (round, scores, 95 % intervals) probed before round 1 (the intervals are only kept in state.json) and after
        # each round; at the end, the held-out final profile or, unfinished, the last probed one (final[2] says which).
        self.profiles = [(0, s.get("initial_profile") or prof.get("scores", {}), prof.get("intervals", {}))]
        self.profiles += [(r.round, r.scores, r.intervals) for r in self.rounds]
        if self.complete and self.rounds:
            # A round probes what the reward reads (probe.others_every); the final measurement,
            # of the same student, gives the last round every capability.
            t, scores, ivs = self.profiles[-1]
            self.profiles[-1] = (t, {**s["final_profile"], **scores}, {**(s.get("final_intervals") or {}), **ivs})
        t, last, last_iv = self.profiles[-1][0], {}, {}
        for _, scores, ivs in self.profiles:
            last, last_iv = {**last, **scores}, {**last_iv, **ivs}
        self.initial = self.profiles[0][1:]
        self.final = ((s["final_profile"], s.get("final_intervals", {}), "final") if self.complete
                      else (last, last_iv, f"after round {t}" if t else "initial"))
        self.capabilities = list(self.config.get("capabilities") or self.initial[0] or last)
        s0, s1 = self.initial[0], self.final[0]
        self.changes = {c: s1[c] - s0[c] for c in self.capabilities if c in s0 and c in s1}
        self.utility = (latest.get("initial_utility"), s.get("final_utility"))  # test split; None until measured
        #: (rounds done, dev utility) at each checkpoint; 0 is before round 1.
        self.dev = [(int(t), float(u)) for t, u in latest.get("dev_utility") or latest.get("dev") or []]
        self.wall_s = {str(k): float(v) for k, v in sorted((latest.get("wall_s") or {}).items())}
        #: "default" and each capability with its own teacher -> the teacher's name (summary.json).
        self.teachers = s.get("teachers")
        self.peak_mb = {str(k): float(v) for k, v in (latest.get("peak_memory_mb") or latest.get("peak_mb") or {}).items()}
        if not self.complete:
            self.notes.insert(0, f"Incomplete run: {max(committed, 0)} of {self.cfg('run', 'rounds', '?')} rounds "
                                 "committed and no summary.json yet — figures show the rounds that exist; the final "
                                 "column is the last probed profile, not the held-out test profile.")

    def cfg(self, section: str, key: str, default: Any = None) -> Any:
        return (self.config.get(section) or {}).get(key, default)

    def _read(self, name: str) -> dict[str, Any] | None:
        """A JSON or YAML mapping in the run dir, or None (with a note when the file exists but cannot be read)."""
        path = self.path / name
        try:
            data = path.exists() and (yaml.safe_load if name.endswith(".yaml") else json.loads)(path.read_text())
        except (OSError, ValueError, yaml.YAMLError) as e:
            self.notes.append(f"{name}: unreadable ({e.__class__.__name__}); skipped")
            data = None
        return data if isinstance(data, dict) else None

    def _read_ledger(self, committed: int) -> list[LedgerEntry]:
        """Charges of committed work. Lines cut by a crash mid-write are skipped; so are, before the final evaluation
        starts, charges past the committed round: they belong to a round that is redone on resume."""
        path, charges, bad = self.path / "ledger.jsonl", [], 0
        for line in path.read_text().splitlines() if path.exists() else []:
            try:
                charges.append(LedgerEntry(**json.loads(line)))
            except (ValueError, TypeError):
                bad += bool(line.strip())
        kept = [e for e in charges if self.complete or e.round <= committed]
        if bad or len(kept) < len(charges):
            self.notes.append(f"ledger.jsonl: {bad} unreadable line(s) skipped, {len(charges) - len(kept)} charge(s) "
                              "of uncommitted work not counted")
        return kept


def spend_shares(run: RunView) -> dict[str, list[float]]:
    """Per spend series (capabilities, then replay), its % of each round's spent tokens;
    series that never got a token are left out. The shares of a round add to 100."""
    series = dict.fromkeys(list(run.capabilities) + [k for r in run.rounds for k in r.spend])
    shares = {s: [100 * r.spend.get(s, 0) / (sum(r.spend.values()) or 1) for r in run.rounds] for s in series}
    return {s: v for s, v in shares.items() if any(v)}


def _panels(n: int, ncols: int, height: float, runs: Sequence[RunView] = (), **props: Any) -> tuple[Any, list[Any]]:
    """``n`` panels in rows of ``ncols``, ``height`` in tall and 11 in wide (~1.4 px per pt on the page), ``props`` set
    on each; with ``runs``, x is rounds 0..N, numbered as the console does ("round 1/N" is rounds/0001)."""
    from matplotlib.figure import Figure
    nrows, share = -(-n // ncols), {k: props.pop(k) for k in ("sharex", "sharey") if k in props}
    fig = Figure(figsize=(11.0, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **share).flat
    if runs:
        fig.supxlabel("round (0 = before round 1)", fontsize=10)
        props["xlim"] = (-0.5, max(r.n_rounds for r in runs) + 0.5)
    for i, ax in enumerate(axes):
        ax.set(visible=i < n, **props)
        if runs:
            ax.locator_params(axis="x", nbins=max(5, 12 // ncols), integer=True)
    return fig, list(axes[:n])


def _svg(fig: Any, name: str) -> str:
    """``fig`` as an inline ``<svg>``: its ids prefixed with ``name``, so that those of several figures on one page
    do not collide, and without the RDF metadata (which names external URLs)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = re.sub(r"<metadata>.*?</metadata>", "", buf.getvalue().split("<svg", 1)[1], flags=re.S)
    svg = re.sub(r'(\sid="|url\(#|href="#)', rf"\1{name}-", svg)
    return f'<svg class="chart" role="img" aria-label="{_e(name)}"{svg}'


def _colors(runs: Sequence[RunView]) -> dict[str, str]:
    return dict(zip(dict.fromkeys(c for r in runs for c in r.capabilities), cycle(PALETTE)))


def _styles(runs: Sequence[RunView]) -> list[tuple[str, Any, str | None]]:
    """(colour, line style, hatch) per run: colour by policy; line style and hatch by rank among its policy's runs."""
    policies = [r.policy for r in runs]
    return [(PALETTE[policies.index(p) % len(PALETTE)], LINE_STYLES[k % len(LINE_STYLES)], HATCHES[k % len(HATCHES)])
            for p, k in ((p, policies[:i].count(p)) for i, p in enumerate(policies))]


def _allocation_figure(runs: Sequence[RunView]) -> Any:
    ncols = min(len(runs), 2)
    fig, axes = _panels(len(runs), ncols, 3.4 if ncols == 1 else 2.6, runs, ylim=SCORE_LIM,
                        ylabel="share of spent tokens (%)")
    colors, handles = _colors(runs), {}
    for ax, run in zip(axes, runs, strict=True):
        bottom = [0.0] * len(run.rounds)
        for s, shares in spend_shares(run).items():
            style = {"color": colors[s], "edgecolor": "white"} if s in colors else OTHER_STYLE
            handles[s] = ax.bar([r.round for r in run.rounds], shares, 0.8, bottom=bottom, linewidth=0.5, **style)
            bottom = [b + v for b, v in zip(bottom, shares, strict=True)]
        ax.set_title(run.label if ncols > 1 else "")
    order = [*(s for s in colors if s in handles), *(s for s in handles if s not in colors)]
    fig.legend([handles[s] for s in order], order, loc="outside right upper")
    return fig


def _profile_figure(run: RunView) -> Any:
    s0, colors = run.initial[0], _colors([run])
    fig, axes = _panels(len(run.capabilities), 4, 2.3, [run], ylim=SCORE_LIM, sharey=True)
    for i, (ax, c) in enumerate(zip(axes, run.capabilities, strict=True)):
        points = [(t, scores[c], ivs.get(c)) for t, scores, ivs in run.profiles if c in scores]
        xs = [x for x, _, _ in points]
        lo, hi = ([iv[k] if iv else y for _, y, iv in points] for k in (0, 1))
        ax.fill_between(xs, lo, hi, color=colors[c], alpha=0.22, lw=0, label="95 % interval")
        ax.plot(xs, [y for _, y, _ in points], color=colors[c], marker="o", ms=3, lw=1.6, label="score")
        if c in s0:
            ax.axhline(s0[c], color="#666", ls="--", lw=0.9, label="initial score")
        ax.set(title=c, ylabel="score" if i % 4 == 0 else "")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside upper center", ncols=3)
    return fig


def _reward_figure(run: RunView, info: dict[str, list[tuple[int, float]]]) -> Any:
    """R, its gain and β·spillover, and its cost penalty, each on its own scale (the cost penalty can dwarf the parts
    that differ between allocations, or be dwarfed by them); then a panel per number the policy recorded (``info``)."""
    beta, xs = float(run.cfg("reward", "beta", 1.0)), [r.round for r in run.rounds]
    reward, gain, spill, cost = ([float(r.reward.get(k, 0.0)) for r in run.rounds]
                                 for k in ("reward", "gain", "spillover", "cost_penalty"))
    ucb = "mu" in info and "sigma" in info
    rest = {k: v for k, v in info.items() if k != "mu" or not ucb}
    fig, axes = _panels(3 + ucb + len(rest), 1, 1.9, [run], sharex=True)
    axes[0].plot(xs, reward, color="#111", marker="o", ms=3.5, lw=1.6)
    axes[0].set_title("Reward R (reward.json)")
    axes[1].bar([x - 0.2 for x in xs], gain, 0.4, color=PALETTE[2], label="gain r·Δs")
    axes[1].bar([x + 0.2 for x in xs], [-beta * s for s in spill], 0.4, color=PALETTE[3],
                label=f"−β·spillover (β = {beta:g})")
    axes[1].set_title("Gain and spillover (spillover drawn below zero: it is subtracted)")
    axes[2].bar(xs, [-c for c in cost], 0.6, color=PALETTE[4])
    axes[2].set_title("Cost penalty λ·tokens, drawn below zero (its own scale)")
    if ucb:
        kappa, sigma = dict(info.get("kappa", [])), dict(info["sigma"])
        axes[3].errorbar(*zip(*info["mu"], strict=True), yerr=[kappa.get(x, 1.0) * sigma[x] for x, _ in info["mu"]],
                         color=PALETTE[0], marker="o", ms=3.5, capsize=3, label="μ ± κ·σ (predicted)")
        axes[3].plot(xs, [g - beta * s for g, s in zip(gain, spill, strict=True)], color="#111", ls="--",
                     marker="o", ms=3, label="gain − β·spillover (observed)")
        axes[3].set_title("The policy's prediction for its choice against the outcome")
    for i, (ax, (k, pts)) in enumerate(zip(axes[3 + ucb:], rest.items(), strict=True)):
        ax.plot(*zip(*pts, strict=True), color=PALETTE[(i + 1) % len(PALETTE)], marker="o", ms=3)
        refined = k.startswith("r: ") and f"r̂ {k[3:]}: its weight in the requirement refined at the dev checkpoints"
        ax.set_title(f"policy_info: {refined or INFO_NAMES.get(k, k)}")
    for ax in axes[:3 + ucb]:
        ax.set_ylabel("score points")
        ax.axhline(0, color="#777", lw=0.8)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=9)
    for ax, x in product(axes[3:], run.warmup):
        ax.axvspan(x - 0.5, x + 0.5, color="#888", alpha=0.13, lw=0)
    return fig


def _burn_down_figure(runs: Sequence[RunView]) -> Any:
    """Cumulative billable tokens per run as a share of its own budget (so runs of different
    budgets compare), against the budget and an even pace to it."""
    fig, (ax,) = _panels(1, 1, 3.4, runs, ylim=(0, 105), ylabel=f"billable tokens ({runs[0].unit}), % of B")
    own = f" = {runs[0].budget:,} tokens" if len(runs) == 1 else " (each run's own)"
    ax.axhline(100, color=PALETTE[3], ls="--", lw=1.4, label="budget B" + own)
    ax.plot([0, max(r.n_rounds for r in runs)], [0, 100], color="#999", ls=":", lw=1.2, label="even pace B·t/T")
    for run, (color, ls, _) in zip(runs, _styles(runs), strict=True):
        # Billable tokens of rounds 1..N only: round 0 is the initial probe, past N the final evaluation.
        charges = [e for e in run.ledger if 1 <= e.round <= run.n_rounds]
        xs = sorted({0, *(e.round for e in charges)})
        ys = [100 * sum(e.billable for e in charges if e.round <= x) / (run.budget or 1) for x in xs]
        ax.plot(xs, ys, color=color, ls=ls, marker="o", ms=3.5, lw=2,
                label=run.label if len(runs) > 1 else "cumulative billable tokens")
    fig.legend(loc="outside right upper")
    return fig


def _dev_figure(runs: Sequence[RunView]) -> Any:
    fig, (ax,) = _panels(1, 1, 3.0, runs, ylim=SCORE_LIM, ylabel="dev utility")
    for run, (color, ls, _) in zip(runs, _styles(runs), strict=True):
        ax.plot(*zip(*run.dev, strict=True), color=color, ls=ls, marker="o", ms=4, lw=2, label=run.label)
    if len(runs) > 1:
        fig.legend(loc="outside right upper")
    return fig


def _change_figure(runs: Sequence[RunView]) -> Any:
    """Final − initial score per capability, a bar per run; one run's get capability colours and whiskers."""
    colors, width, one = _colors(runs), 0.8 / len(runs), len(runs) == 1
    fig, (ax,) = _panels(1, 1, 3.4, ylabel="score change (points)")
    for j, (run, (color, _, hatch)) in enumerate(zip(runs, _styles(runs), strict=True)):
        ch, s0, iv = run.changes, run.initial[0], run.final[1]
        xs = [i - 0.4 + (j + 0.5) * width for i, c in enumerate(colors) if c in ch]
        ax.bar(xs, list(ch.values()), width * 0.9, color=[colors[c] for c in ch] if one else color,
               hatch=hatch, edgecolor="white", linewidth=0.5, label=run.label)
        if one and ch:  # the final 95 % interval, shifted by the initial score as the bar is
            ends = [(iv[c][0] - s0[c], iv[c][1] - s0[c]) if c in iv else (d, d) for c, d in ch.items()]
            ax.vlines(xs, *zip(*ends, strict=True), color="#111", lw=1.2)
    ax.axhline(0, color="#777", lw=0.8)
    # Long names wrap after their first underscore so neighbouring labels do not collide.
    ax.set_xticks(range(len(colors)), [c.replace("_", "_\n", 1) if len(c) > 12 else c for c in colors])
    if not one:
        fig.legend(loc="outside right upper")
    return fig


CSS = """
body { margin: 0; background: #fafafa; color: #1a1a1a; font: 16px/1.5 system-ui, "DejaVu Sans", sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; } h1 { font-size: 1.6em; margin: 0.2em 0; }
h2 { font-size: 1.3em; margin: 0 0 0.3em; } h3 { font-size: 1.05em; margin: 1.2em 0 0.4em; }
section, header { background: #fff; border: 1px solid #e2e2e2; border-radius: 8px; padding: 18px 22px; margin: 18px 0; }
.sub { color: #555; word-break: break-all; } .intro { color: #444; max-width: 85ch; }
.empty { color: #666; font-style: italic; } svg.chart { width: 100%; height: auto; display: block; }
.banner { border-radius: 6px; padding: 10px 14px; margin: 10px 0; background: #eef5fb; border: 1px solid #56b4e9; }
.banner.incomplete { background: #fff4e0; border-color: #e69f00; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 8px 24px; }
.facts div { border-left: 3px solid #0072b2; padding-left: 10px; } .facts dt { color: #555; font-size: 0.85em; }
.facts dd { margin: 0; font-size: 1.1em; font-weight: 600; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 0.95em; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e6e6e6; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; white-space: normal; } th:first-child, td:first-child { text-align: left; }
table.total tr:last-child td { font-weight: 600; border-top: 2px solid #ccc; }
.up { color: #0a6b50; } .down { color: #b04000; } code { background: #f1f1f1; padding: 0 4px; }
footer { color: #666; font-size: 0.85em; } @media print { body { background: #fff; } section, header { border: none; } }
"""


class _Html(str):
    """A table cell that is markup already (escaped where it needs to be)."""


_e = html.escape  # text to HTML, attributes included


def _num(x: float | None, fmt: str = ".2f") -> str:
    return "–" if x is None else format(x, fmt)


def _change(d: float | None) -> _Html:
    cls = "" if d is None or abs(d) <= 0.005 else ("up" if d > 0 else "down")
    return _Html(f"<span class='{cls}'>{dict(up='▲ ', down='▼ ').get(cls, '')}{_num(d, '+.2f')}</span>")


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], total: bool = False) -> str:
    """A table; cells are escaped unless ``_Html``. With ``total`` the last row is a bold total."""
    body = "".join("<tr>" + "".join(f"<td>{x if isinstance(x, _Html) else _e(str(x))}</td>" for x in row) + "</tr>"
                   for row in rows)
    head_row = "".join(f"<th>{_e(h)}</th>" for h in head)
    return f"<table{' class=total' if total else ''}><thead><tr>{head_row}</tr></thead><tbody>{body}</tbody></table>"


def _section(anchor: str, title: str, intro: str, body: Any, empty: str = "") -> str:
    """A section of the page; ``empty`` says why when ``body`` is falsy (nothing to show yet)."""
    body = body or f'<p class="empty">{_e(empty)}</p>'
    return f'<section id="{anchor}"><h2>{_e(title)}</h2><p class="intro">{intro}</p>{body}</section>'


def _phase_tables(run: RunView) -> str:
    """Tokens per phase (ledger.jsonl), split initial probe (round 0) / rounds / final evaluation; wall time."""
    table: dict[str, list[int]] = {}
    for e in run.ledger:
        t, n, N = e.round, e.tokens, run.n_rounds
        row = [n, e.billable, n * (t < 1), n * (1 <= t <= N), n * (t > N), n * bool(e.cached)]
        table[e.phase] = [a + b for a, b in zip(table.get(e.phase, [0] * 6), row, strict=True)]
    B, billable = run.budget, sum(row[1] for row in table.values())
    # Probe, evaluation and profiling are overhead; the others are charged against B under some unit (method.md §1).
    rows = [[ph, *(f"{v:,}" for v in table[ph]), "overhead" if ph in ("probe", "dev", "eval", "profiling")
             else "billable" if table[ph][1] else f"not billable under unit {run.unit}"]
            for ph in PHASES if ph in table]  # the ledger refuses any other phase
    share = f"{100 * billable / (B or 1):.1f} % of B = {B:,}"
    rows.append(["total billable", "", f"{billable:,}", "", "", "", "", share])
    head = ["phase", "tokens processed", "billable", "before round 1", "in rounds", "final eval", "from cache",
            "counts as"]
    wall = [[k, f"{v:,.2f}", f"{run.peak_mb[k]:,.0f}" if k in run.peak_mb else "—"] for k, v in run.wall_s.items()]
    wall.append(["total", f"{sum(run.wall_s.values()):,.2f}", f"{max(run.peak_mb.values(), default=0):,.0f}" if run.peak_mb else "—"])
    return ("<h3>Tokens per phase (ledger.jsonl)</h3>" + _table(head, rows, total=True) + _teacher_table(run)
            + ("<h3>Wall time and peak memory by phase</h3>" + _table(["phase", "seconds", "peak memory (MiB)"], wall, total=True)
               if run.wall_s else ""))


def _teacher_table(run: RunView) -> str:
    """Tokens per teacher (the ledger's teacher charges), with the capabilities each answers."""
    tokens = teacher_tokens(run.ledger)
    if not tokens:
        return ""
    routes = run.teachers or {}
    default = routes.get("default")
    own = [c for c in run.capabilities if c in routes]

    def answers(name: str) -> str:
        # The default teacher's list is "all" or "all but" the capabilities with their own: short cells.
        if name == default:
            return f"all but {', '.join(own)}" if own else "all"
        return ", ".join(c for c in own if routes[c] == name) or "—"

    rows = [[name, answers(name), f"{t['prompt']:,}", f"{t['generated']:,}", f"{t['cached']:,}", f"{t['billable']:,}"]
            for name, t in tokens.items()]
    head = ["teacher", "capabilities it answers", "prompt tokens", "tokens generated", "of them from cache", "billable"]
    return "<h3>Tokens per teacher</h3>" + _table(head, rows)


def _final_table(runs: Sequence[RunView]) -> str:
    """Final minus initial score per capability, a column per run; one run's table adds its initial and final score,
    final interval, and the billable tokens spent on each capability, replay in its own row."""
    if len(runs) > 1:
        rows = [[c, *(_change(r.changes.get(c)) for r in runs)] for c in _colors(runs)]
        return _table(["capability", *(r.label for r in runs)], rows)
    run = runs[0]
    (s0, _), (s1, iv, what), caps = run.initial, run.final, run.capabilities
    spend = sum((Counter(r.spend) for r in run.rounds), Counter())
    req = run.cfg("task", "requirement") or {}  # a column only where the config sets the requirement by hand
    rows = [[c, *([_num(req.get(c, 0.0)) if c in caps else "–"] if req else []), _num(s0.get(c)),
             _num(s1.get(c)), _change(run.changes.get(c)), f"[{iv[c][0]:.2f}, {iv[c][1]:.2f}]" if c in iv else "–",
             f"{spend[c]:,}", f"{100 * spend[c] / (spend.total() or 1):.1f} %"]
            for c in [*(c for c in caps if c in s0 or c in s1), *(k for k in spend if k not in caps)]]
    return _table(["capability", *(["requirement"] if req else []), "initial", "final" if run.complete else
                   f"latest ({what})", "change", "95 % interval", "billable tokens spent on it", "share"], rows)


def _sections(runs: Sequence[RunView]) -> list[str]:
    run, one = runs[0], len(runs) == 1
    out = [_section("allocation", "Allocation per round", (
        "Share of each round's spent tokens per capability (reward.json <code>spend_per_capability</code>). Replay, "
        "the general mixture every policy trains on alike, is its own hatched series, so each bar adds to 100 %; "
        "the policy's allocation w<sub>t</sub> splits the rest (docs/method.md §4)."),
        any(r.rounds for r in runs) and _svg(_allocation_figure(runs), "allocation"), "No committed round yet.")]
    if one:
        out.append(_section("profile", "Capability profile per round", (
            "Probed score of each capability with its 95 % interval, at the rounds it was probed: those the reward "
            "reads (and those with a floor) after every round, the others every probe.others_every rounds and at the "
            "start and end; round 0 is the initial profile (dashed line)."),
            (run.initial[0] or run.rounds) and _svg(_profile_figure(run), "profile"), "No profile recorded yet."))
        out.append(_section("reward", "Reward per round and the policy's view", (
            "R = gain − β·spillover − cost penalty per round (docs/method.md §6), in requirement-weighted score "
            "points; then every number the policy recorded (<code>policy_info</code> in allocation.json), warm-up "
            "rounds shaded. Where it records a UCB prediction μ ± κ·σ for the allocation it chose (upper end: its UCB "
            "score), that is set against gain − β·spillover: μ leaves the cost out, as it is the same for every "
            "candidate."),
            run.rounds and _svg(_reward_figure(run, run.info), "reward"), "No committed round yet."))
    out.append(_section("ledger", "Ledger: budget burn-down" + (" and tokens per phase" if one else ""), (
        f"Billable tokens (budget unit <code>{_e(run.unit)}</code>) round by round against the budget B. Probe, "
        "evaluation and profiling tokens are overhead, outside B (docs/method.md §1)."),
        any(r.ledger for r in runs)
        and _svg(_burn_down_figure(runs), "burn_down") + (_phase_tables(run) if one else ""),
        "The ledger has no charges yet."))
    out.append(_section("dev", "Dev utility checkpoints", (
        "Task utility on the dev split at each checkpoint (it calibrates rewards and shrinks κ when it stalls); the "
        "header has the test-split utility."),
        any(r.dev for r in runs) and _svg(_dev_figure(runs), "dev"), "No dev checkpoint recorded yet."))
    out.append(_section("final", "Final profile", (
        "Final minus initial score per capability on the held-out test probes (the last probed profile for an "
        "incomplete run); a one-run report adds the initial and final score, the final 95 % interval (the whiskers) "
        "and the billable tokens spent on each capability, replay included, so the shares add to 100 %."),
        any(r.changes for r in runs) and _final_table(runs) + _svg(_change_figure(runs), "change"),
        "No profile recorded."))
    return out


def _header(runs: Sequence[RunView], out: Path) -> str:
    """The runs' paths, notes and headline facts: cards for one run, a row each for several compared."""
    one, facts = len(runs) == 1, []
    for r in runs:
        (u0, u1), B, billable = r.utility, r.budget, sum(e.billable for e in r.ledger)
        facts.append({
            "task": r.task, "policy": r.policy, "seed": str(r.seed), "budget": f"{B:,} tokens ({r.unit})",
            "billable spent": f"{billable:,} ({100 * billable / (B or 1):.1f} % of B)",
            "rounds": f"{len(r.rounds)} of {r.cfg('run', 'rounds', '?')}" + ("" if r.complete else " (incomplete)"),
            "test utility (initial → final)": "–" if u0 is None else f"{u0:.2f} → " + (
                "(not measured yet)" if u1 is None else f"{u1:.2f} ({u1 - u0:+.2f})"),
            "wall time": f"{sum(r.wall_s.values()):,.1f} s",
        })
    head = "<p class='sub'>" + _e(", ".join(f"{r.path} — {'complete' if r.complete else 'INCOMPLETE'}" for r in runs))
    head += "</p>" + "".join(f'<div class="banner{" incomplete" if i == 0 and not r.complete else ""}">'
                             f'{_e(("" if one else r.label + ": ") + note)}</div>'
                             for r in runs for i, note in enumerate(r.notes))
    if one:
        cards = "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in facts[0].items())
        return f"{head}<dl class='facts'>{cards}</dl>"
    links = [f"<a href='{_e(os.path.relpath(r.path / 'report.html', out.parent))}'>report</a>"
             if (r.path / "report.html").exists() else "" for r in runs]
    rows = [[r.label, r.task, *list(f.values())[3:], _Html(a)] for r, f, a in zip(runs, facts, links, strict=True)]
    return head + _table(["run", "task", *list(facts[0])[3:], ""], rows)  # policy and seed are in the label


def write_report(run_dirs: Sequence[Path | str] | Path | str, out: Path | str | None = None) -> Path:
    """Write a self-contained HTML report and return its path.

    One run dir: the run's report, at ``<run_dir>/report.html`` unless ``out`` is given. Several: a page overlaying
    them, at ``out`` (default: ``report.html`` in the runs' common parent directory). Reads the run directories only;
    an unfinished run is shown as far as it got, marked incomplete. Raises ``ReportError`` (a ``ConfigError``) when
    a path is not a run directory.
    """
    import matplotlib
    dirs = [Path(run_dirs)] if isinstance(run_dirs, (str, Path)) else [Path(d) for d in run_dirs]
    if not dirs:
        raise ReportError("report: give at least one run directory")
    runs, one = [RunView(d) for d in dirs], len(dirs) == 1
    labels = [r.label for r in runs]
    for r in runs:  # the same policy and seed twice (e.g. two budgets): the directory name tells them apart
        r.label += f" ({r.path.name})" if labels.count(r.label) > 1 else ""
    common = dirs[0] if one else Path(os.path.commonpath([d.resolve() for d in dirs]))
    target = Path(out) if out is not None else common / "report.html"
    title = (f"read-distill report — {runs[0].task} · {runs[0].label}" if one
             else f"read-distill comparison — {len(runs)} runs")
    env = runs[0].env
    footer = ("Generated by read-distill's report from the run directory artefacts only. Run env: "
              + ", ".join(f"{k} {v}" for k, v in (env.get("versions") or {}).items())
              + (f"; git {env['git_sha'][:12]}" if env.get("git_sha") else "") + ".")
    with matplotlib.rc_context(STYLE):
        body = _header(runs, target) + "</header>\n" + "\n".join(_sections(runs))
    _write_page(target, title, body, footer)
    return target


def _write_page(target: Path, title: str, body: str, footer: str) -> None:
    """A self-contained page: ``body`` continues the header it opens (so it closes it)."""
    write_text(target, "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><meta name='viewport' content="
               f"'width=device-width, initial-scale=1'>\n<title>{_e(title)}</title><style>{CSS}</style></head>\n"
               f"<body><main><header><h1>{_e(title)}</h1>{body}\n<footer>{_e(footer)}</footer></main></body></html>\n")


def _method_figure(table: dict[str, Any]) -> Any:
    """Final utility per method: each seed a dot, the mean a bar with its 95 % t interval."""
    import numpy as np
    from scipy import stats
    methods = list(table)
    fig, (ax,) = _panels(1, 1, 0.5 + 0.42 * len(methods), xlim=SCORE_LIM, xlabel="final test utility")
    for i, m in enumerate(methods):
        values = np.asarray(table[m]["final_utility"]["values"], dtype=float)
        half = float(stats.t.ppf(0.975, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size)) if values.size > 1 else 0.0
        color = PALETTE[i % len(PALETTE)]
        ax.barh(i, values.mean(), xerr=half, color=color, alpha=0.35, capsize=4, height=0.6)
        ax.plot(values, np.full(values.size, i), "o", color=color, ms=5)
    ax.set_yticks(range(len(methods)), methods)
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    return fig


def _budget_figure(tables: list[dict[str, Any]]) -> Any:
    """Mean final utility against budget (log scale) per method, with the seeds' std."""
    methods = list(tables[0]["results"])
    fig, (ax,) = _panels(1, 1, 3.6, ylim=SCORE_LIM, xscale="log", xlabel="budget (tokens)", ylabel="final test utility")
    budgets = [t["budget"] for t in tables]
    for i, m in enumerate(methods):
        mean = [t["results"][m]["final_utility"]["mean"] for t in tables]
        std = [t["results"][m]["final_utility"]["std"] for t in tables]
        ax.errorbar(budgets, mean, yerr=std, marker="o", capsize=3, color=PALETTE[i % len(PALETTE)],
                    ls=LINE_STYLES[(i // len(PALETTE)) % len(LINE_STYLES)], label=m)
    # The budgets run are the ticks, written out: a log axis's own labels are mathtext,
    # which the page's style draws literally.
    ax.set_xticks(budgets, [f"{b:,}" for b in budgets])
    ax.xaxis.set_minor_formatter("")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def write_comparison(result: dict[str, Any], out: Path | str) -> Path:
    """``comparison.html`` for what ``compare`` returned: per budget the final utility of
    every method (seeds and 95 % intervals) and the table of tests against read; with
    several budgets, utility against budget and the equivalent-budget table."""
    import matplotlib

    from read_distill.experiments.statistics import vs_read_cells

    target, tables = Path(out), result["tables"]
    head = ["method", "final utility", "read − method (paired, 95 % CI)", "p paired (Holm)", "p Welch (Holm)",
            "on-target Δ", "off-target Δ", "negative transfer"]
    sections = []
    with matplotlib.rc_context(STYLE):
        if len(tables) > 1:
            rows = [[f"{r['budget']:,}", _num(r["read_utility"]), f"{r['baseline_budget']:,.0f}", f"{r['ratio']:.2f}×", r["bound"]]
                    for r in result.get("equivalent_budget") or []]
            body = _svg(_budget_figure(tables), "budgets") + (
                _table(["budget", "read", "best single-capability baseline needs", "ratio", "how"], rows) if rows else "")
            sections.append(_section("budgets", "Utility against budget",
                                     "Mean final test utility over seeds (bars: std) per method; the equivalent budget is "
                                     "what the best single-capability baseline needs to reach read's score.", body))
        for t in tables:
            rows = []
            for m, e in t["results"].items():
                fu, vs = e["final_utility"], e.get("vs_read")
                cells = [m, f"{fu['mean']:.2f} ± {fu['std']:.2f}"]
                if vs:
                    cells += vs_read_cells(vs)
                else:
                    cells += ["–", "–", "–"]
                cells += [_change(e[k]["mean"]) for k in ("on_target_change", "off_target_change", "negative_transfer")]
                rows.append(cells)
            sections.append(_section(f"budget-{t['budget']}", f"Budget {t['budget']:,} tokens",
                                     "Each dot is one seed; bars are the mean with its 95 % t interval. Tests against read "
                                     "are Holm-corrected within this table.",
                                     _svg(_method_figure(t["results"]), f"methods-{t['budget']}") + _table(head, rows)))
    title = f"read-distill comparison — {result['config']['run']['name']}"
    intro = (f"<p class='sub'>{_e(', '.join(result['methods']))} · seeds {_e(str(result['seeds']))} · "
             f"task {_e(result['task'])}</p>")
    _write_page(target, title, intro + "</header>\n" + "\n".join(sections),
                "Generated by read-distill's compare from its run directories.")
    return target

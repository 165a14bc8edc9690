"""Run directories → human-readable summaries. Reads artefacts; computes nothing new.

Two outputs:

* ``format_summary`` — the text table printed after a run.
* ``write_report`` — a self-contained ``report.html`` for one run (charts per round, the
  ledger, dev checkpoints, the final profile) or a comparison page for several runs.

Charts are inline SVG written here, so the page needs no plotting library, no script
and no network: it opens from a file on an offline machine and prints as it looks.
Everything shown is read from the run directory (SPEC §2, DESIGN "The run directory");
the only arithmetic is aggregation for display (sums, cumulative sums, differences).
"""

from __future__ import annotations

import html
import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from read_distill.config import ConfigError
from read_distill.store import write_text
from read_distill.types import PHASES

#: Phases charged against the budget under some unit; the others are overhead (SPEC §1).
OVERHEAD_PHASES = ("probe", "eval", "profiling")

#: Okabe–Ito palette: distinguishable under the common colour-vision deficiencies. Black
#: is softened to dark grey so stacked areas stay readable; yellow is last because it is
#: the weakest as a line on white.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#444444", "#F0E442")

#: Yellow fills well but is faint as a line on white: lines and markers use a darker tone.
LINE_TONE = {"#F0E442": "#B8A800"}

#: Dash patterns that tell runs of one policy (different seeds) apart in overlays.
DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 2")

#: Labels of the policy_info keys known to the shipped policies; other numeric keys are
#: shown under their own name.
POLICY_INFO_LABELS = {
    "mu": "μ: predicted reward of the choice",
    "sigma": "σ: ensemble spread (uncertainty)",
    "kappa": "κ: exploration weight used",
    "bonus": "UCB bonus κ·σ",
    "ucb": "UCB score μ + κ·σ",
    "n_actions": "candidate allocations",
    "gamma": "EXP3 exploration rate γ",
    "t": "policy's round counter",
}


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
    for phase in ("teacher_prompt", "teacher_gen", "train", "probe", "eval", "profiling"):
        if phase in ledger:
            lines.append(f"  {phase:<18}{ledger[phase]:>14,}")
    lines += ["", "wall time (s)"]
    for phase, seconds in summary["wall_s"].items():
        lines.append(f"  {phase:<18}{seconds:>14.2f}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Reading a run directory
# ---------------------------------------------------------------------------------------


@dataclass
class RoundView:
    """What one committed round left in ``rounds/NNNN/``."""

    round: int
    allocation: dict[str, float]
    quota_tokens: int | None
    policy_info: dict[str, Any]
    scores: dict[str, float]
    intervals: dict[str, list[float]]
    reward: dict[str, Any]


@dataclass
class RunView:
    """A run directory read back for display; tolerant of a run that has not finished."""

    path: Path
    config: dict[str, Any]
    env: dict[str, Any]
    summary: dict[str, Any] | None
    state: dict[str, Any] | None
    capabilities: list[str]
    rounds: list[RoundView]
    #: Ledger charges of committed work (initial probe, committed rounds, final evaluation).
    ledger: list[dict[str, Any]]
    #: Things the reader should know (incomplete run, unreadable files).
    notes: list[str] = field(default_factory=list)

    # -- headline facts: summary.json when there is one, else config/state ---------------
    def _cfg(self, *keys: str, default: Any = None) -> Any:
        node: Any = self.config
        for k in keys:
            if not isinstance(node, dict) or k not in node:
                return default
            node = node[k]
        return node

    @property
    def complete(self) -> bool:
        return self.summary is not None

    @property
    def task(self) -> str:
        return str(self.summary["task"]) if self.summary else str(self._cfg("run", "name", default="?"))

    @property
    def policy(self) -> str:
        return str(self.summary["policy"]) if self.summary else str(self._cfg("policy", "name", default="?"))

    @property
    def seed(self) -> Any:
        return self.summary["seed"] if self.summary else self._cfg("run", "seed", default=self.env.get("seed", "?"))

    @property
    def budget_tokens(self) -> int | None:
        if self.summary:
            return int(self.summary["budget_tokens"])
        b = self._cfg("budget", "total_tokens")
        return int(b) if b is not None else None

    @property
    def budget_unit(self) -> str:
        return str(self.summary["budget_unit"]) if self.summary else str(self._cfg("budget", "unit", default="?"))

    @property
    def planned_rounds(self) -> int | None:
        r = self._cfg("run", "rounds")
        return int(r) if r is not None else None

    @property
    def initial_utility(self) -> float | None:
        if self.summary:
            return float(self.summary["initial_utility"])
        return float(self.state["initial_utility"]) if self.state else None

    @property
    def final_utility(self) -> float | None:
        return float(self.summary["final_utility"]) if self.summary else None

    @property
    def initial_profile(self) -> tuple[dict[str, float], dict[str, list[float]]]:
        """Scores and 95 % intervals before round 0 (intervals only kept in state.json)."""
        scores: dict[str, float] = {}
        intervals: dict[str, list[float]] = {}
        if self.state and isinstance(self.state.get("initial_profile"), dict):
            scores = dict(self.state["initial_profile"].get("scores", {}))
            intervals = dict(self.state["initial_profile"].get("intervals", {}))
        if self.summary:
            scores = dict(self.summary["initial_profile"])
        return scores, intervals

    @property
    def final_profile(self) -> tuple[dict[str, float], dict[str, list[float]], str]:
        """The held-out final profile, or for an unfinished run the last probed one."""
        if self.summary:
            return dict(self.summary["final_profile"]), dict(self.summary.get("final_intervals", {})), "final"
        if self.rounds:
            last = self.rounds[-1]
            return last.scores, last.intervals, f"after round {last.round}"
        scores, intervals = self.initial_profile
        return scores, intervals, "initial"

    @property
    def dev_utility(self) -> list[tuple[int, float]]:
        """(round, dev utility) checkpoints; round −1 is before round 0."""
        raw = (self.summary or {}).get("dev_utility") or (self.state or {}).get("dev") or []
        return [(int(t), float(u)) for t, u in raw]

    @property
    def wall_s(self) -> dict[str, float]:
        raw = (self.summary or {}).get("wall_s") or (self.state or {}).get("wall_s") or {}
        return {str(k): float(v) for k, v in sorted(raw.items())}

    @property
    def label(self) -> str:
        return f"{self.policy} · seed {self.seed}"


def _read_json(path: Path, notes: list[str]) -> Any:
    """A JSON file, or None (with a note) when it is missing or unreadable."""
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        notes.append(f"{path.name}: unreadable ({e.__class__.__name__}); skipped")
        return None


def _read_yaml(path: Path, notes: list[str]) -> dict[str, Any]:
    import yaml

    if not path.exists():
        return {}
    try:
        loaded = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        notes.append(f"{path.name}: unreadable ({e.__class__.__name__})")
        return {}
    return loaded if isinstance(loaded, dict) else {}


def load_run(run_dir: Path | str) -> RunView:
    """Read a run directory for display. Only committed rounds are shown: a round whose
    files exist but which ``state.json`` does not name yet is redone on resume."""
    path = Path(run_dir)
    if not path.is_dir():
        raise ReportError(f"{path}: no such run directory")
    if not any((path / f).exists() for f in ("config.yaml", "state.json", "summary.json")):
        raise ReportError(f"{path}: not a run directory (no config.yaml, state.json or summary.json)")
    notes: list[str] = []
    config = _read_yaml(path / "config.yaml", notes)
    env = _read_json(path / "env.json", notes) or {}
    summary = _read_json(path / "summary.json", notes)
    state = _read_json(path / "state.json", notes)
    committed = 10**9 if summary else (int(state["round"]) if state else -2)

    caps = list(config.get("capabilities") or [])
    if not caps and summary:
        caps = list(summary["initial_profile"])
    if not caps and state:
        caps = list(state.get("initial_profile", {}).get("scores", {}))

    rounds: list[RoundView] = []
    uncommitted: list[int] = []
    rounds_root = path / "rounds"
    for rd in sorted(rounds_root.iterdir()) if rounds_root.is_dir() else []:
        if not (rd.is_dir() and rd.name.isdigit()):
            continue
        t = int(rd.name)
        if t > committed:
            uncommitted.append(t)
            continue
        alloc = _read_json(rd / "allocation.json", notes)
        prof = _read_json(rd / "profile.json", notes)
        rew = _read_json(rd / "reward.json", notes)
        if alloc is None or prof is None or rew is None:
            notes.append(f"rounds/{rd.name}: missing allocation, profile or reward record; skipped")
            continue
        rounds.append(
            RoundView(
                round=t,
                allocation={k: float(v) for k, v in alloc.get("allocation", {}).items()},
                quota_tokens=alloc.get("quota_tokens"),
                policy_info=dict(alloc.get("policy_info") or {}),
                scores={k: float(v) for k, v in prof.get("scores", {}).items()},
                intervals={k: list(v) for k, v in prof.get("intervals", {}).items()},
                reward=rew,
            )
        )
    if not caps and rounds:
        caps = list(rounds[0].allocation)

    ledger: list[dict[str, Any]] = []
    dropped = bad = 0
    if (path / "ledger.jsonl").exists():
        for line in (path / "ledger.jsonl").read_text().splitlines():
            if not line.strip():
                continue
            try:
                e = json.loads(line)
                int(e["round"]), int(e["tokens"]), int(e["billable"]), str(e["phase"])
            except (ValueError, KeyError, TypeError):
                bad += 1  # a line cut by a crash mid-write; the resume rewrites the file
                continue
            # Before the final evaluation starts, charges past the committed round belong
            # to a round that is redone on resume; they are not counted.
            if summary or e["round"] <= committed:
                ledger.append(e)
            else:
                dropped += 1
    if bad:
        notes.append(f"ledger.jsonl: {bad} unreadable line(s) skipped")
    if dropped:
        notes.append(f"ledger.jsonl: {dropped} charge(s) of uncommitted work not counted")
    if uncommitted:
        notes.append(f"round {uncommitted[0]} was started but not committed; a resumed run redoes it")
    if not summary:
        planned = config.get("run", {}).get("rounds", "?") if isinstance(config.get("run"), dict) else "?"
        done = (committed + 1) if state else 0
        notes.insert(0, f"Incomplete run: {done} of {planned} rounds committed and no summary.json yet — "
                        "figures show the rounds that exist; the final column is the last probed profile, not the held-out test profile.")
    return RunView(path, config, env, summary, state, caps, rounds, ledger, notes)


# ---------------------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------------------


def _e(x: Any) -> str:
    """Escape any text for HTML and SVG (attributes included)."""
    return html.escape(str(x), quote=True)


def _tok(n: float) -> str:
    """A token count in a short form for axes: 20M, 1.5M, 250k."""
    n = float(n)
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            v = n / div
            return f"{v:.0f}{suffix}" if abs(v - round(v)) < 1e-9 else f"{v:.3g}{suffix}"
    return f"{n:.0f}"


def _num(x: float, digits: int = 2) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _axis_num(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 1e4:
        return _tok(x)
    return f"{x:.4g}"


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (steps of 1, 2, 2.5 or 5 × 10^k)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi - lo < 1e-12:
        pad = abs(hi) * 0.05 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step + 1e-9) * step
    ticks, v = [], start
    while v < hi + step * 0.999:
        ticks.append(round(v, 12))
        v += step
    return ticks


def _wrap_name(name: str, width: int = 12) -> str:
    """A long capability name split after an underscore so axis labels do not collide."""
    if len(name) <= width or "_" not in name:
        return name
    cut = name.index("_") + 1
    return name[:cut] + "\n" + name[cut:]


def _int_ticks(lo: int, hi: int, n: int = 20) -> list[int]:
    span = max(1, hi - lo)
    step = next(s for s in (1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000, 10**9) if span / s <= n)
    return list(range(lo, hi + 1, step))


# ---------------------------------------------------------------------------------------
# SVG charts
# ---------------------------------------------------------------------------------------


class Plot:
    """One SVG chart with linear axes: a title, gridlines, ticks, axis labels, and drawing
    primitives in data coordinates. ``render`` returns the ``<svg>`` element; it scales to
    its container's width (viewBox) so the page is responsive."""

    def __init__(
        self,
        title: str,
        x_label: str,
        y_label: str,
        x_lim: tuple[float, float],
        y_values: Iterable[float],
        *,
        width: int = 900,
        height: int = 330,
        small: bool = False,
        x_ticks: Sequence[float] | None = None,
        x_fmt: Callable[[float], str] = lambda v: f"{v:g}",
        y_fmt: Callable[[float], str] = _axis_num,
        y_lim: tuple[float, float] | None = None,
        include_zero: bool = False,
    ) -> None:
        self.title, self.x_label, self.y_label = title, x_label, y_label
        self.width, self.height, self.small = width, height, small
        # Small panels render at about a third of the page: scale the font with the viewBox.
        self.font = max(13, round(width / 28)) if small else 14
        self.m_left, self.m_right = (58, 12) if small else (78, 20)
        self.m_top, self.m_bottom = (28, 42) if small else (36, 52)
        self.x0, self.x1 = x_lim
        if self.x1 <= self.x0:
            self.x1 = self.x0 + 1
        ys = [y for y in y_values if y is not None and math.isfinite(y)]
        if include_zero:
            ys.append(0.0)
        if y_lim is not None:
            self.y_ticks = _nice_ticks(*y_lim, n=4 if small else 5)
            self.y0, self.y1 = y_lim
        else:
            lo, hi = (min(ys), max(ys)) if ys else (0.0, 1.0)
            # A little headroom so markers and whiskers do not sit on the frame.
            pad = 0.03 * (hi - lo)
            lo, hi = (lo - pad if lo != 0 else lo), (hi + pad if hi != 0 else hi)
            self.y_ticks = _nice_ticks(lo, hi, n=4 if small else 5)
            self.y0, self.y1 = self.y_ticks[0], self.y_ticks[-1]
        self.x_ticks = list(x_ticks) if x_ticks is not None else _nice_ticks(self.x0, self.x1, 8)
        self.x_fmt, self.y_fmt = x_fmt, y_fmt
        # Room for tick labels written on several lines (long capability names).
        extra = max((x_fmt(v).count("\n") for v in self.x_ticks), default=0) * self.font
        self.m_bottom += extra
        self.height += extra
        self.parts: list[str] = []

    # -- coordinates ------------------------------------------------------------------
    def sx(self, x: float) -> float:
        w = self.width - self.m_left - self.m_right
        return round(self.m_left + (x - self.x0) / (self.x1 - self.x0) * w, 2)

    def sy(self, y: float) -> float:
        h = self.height - self.m_top - self.m_bottom
        span = (self.y1 - self.y0) or 1.0
        y = min(max(y, self.y0 - span), self.y1 + span)  # keep wild values drawable
        return round(self.m_top + (1 - (y - self.y0) / span) * h, 2)

    # -- primitives -------------------------------------------------------------------
    def line(self, points: Sequence[tuple[float, float]], color: str, width: float = 2.2, dash: str = "", markers: bool = False, tips: Sequence[str] | None = None) -> None:
        """A polyline; with ``markers``, a dot per point whose hover text is ``tips[i]``."""
        keep = [i for i, (_, y) in enumerate(points) if y is not None and math.isfinite(y)]
        pts = [points[i] for i in keep]
        tips = [tips[i] for i in keep] if tips else None
        if not pts:
            return
        color = LINE_TONE.get(color, color)
        d = " ".join(f"{self.sx(x)},{self.sy(y)}" for x, y in pts)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(f'<polyline points="{d}" fill="none" stroke="{color}" stroke-width="{width}" stroke-linejoin="round"{dash_attr}/>')
        if markers:
            for i, (x, y) in enumerate(pts):
                tip = f"<title>{_e(tips[i])}</title>" if tips else ""
                r = 2.8 if self.small else 3.6
                self.parts.append(f'<circle cx="{self.sx(x)}" cy="{self.sy(y)}" r="{r}" fill="{color}" stroke="#fff" stroke-width="1">{tip}</circle>')

    def band(self, xs: Sequence[float], lows: Sequence[float], highs: Sequence[float], color: str, opacity: float = 0.22) -> None:
        """A filled band between ``lows`` and ``highs``."""
        if not xs:
            return
        upper = [f"{self.sx(x)},{self.sy(h)}" for x, h in zip(xs, highs, strict=True)]
        lower = [f"{self.sx(x)},{self.sy(lo)}" for x, lo in zip(reversed(xs), reversed(lows), strict=True)]
        self.parts.append(f'<polygon points="{" ".join(upper + lower)}" fill="{color}" fill-opacity="{opacity}" stroke="none"/>')

    def rect(self, x0: float, x1: float, y0: float, y1: float, color: str, tip: str = "", opacity: float = 1.0, stroke: str = "#fff") -> None:
        """A filled rectangle in data coordinates (a bar or a stacked-area cell)."""
        px0, px1 = sorted((self.sx(x0), self.sx(x1)))
        py0, py1 = sorted((self.sy(y0), self.sy(y1)))
        t = f"<title>{_e(tip)}</title>" if tip else ""
        self.parts.append(
            f'<rect x="{px0}" y="{py0}" width="{round(px1 - px0, 2)}" height="{round(py1 - py0, 2)}" fill="{color}" '
            f'fill-opacity="{opacity}" stroke="{stroke}" stroke-width="0.6">{t}</rect>'
        )

    def hline(self, y: float, color: str = "#333", dash: str = "5 4", label: str = "", width: float = 1.4) -> None:
        """A horizontal reference line across the plot, optionally labelled at its right end."""
        py = self.sy(y)
        self.parts.append(f'<line x1="{self.m_left}" x2="{self.width - self.m_right}" y1="{py}" y2="{py}" stroke="{color}" stroke-width="{width}" stroke-dasharray="{dash}"/>')
        if label:
            self.parts.append(f'<text x="{self.width - self.m_right - 4}" y="{py - 5}" text-anchor="end" font-size="{self.font - 1}" fill="{color}">{_e(label)}</text>')

    def vspan(self, x0: float, x1: float, color: str = "#888", opacity: float = 0.12, tip: str = "") -> None:
        """A shaded vertical strip (e.g. warm-up rounds)."""
        t = f"<title>{_e(tip)}</title>" if tip else ""
        self.parts.append(
            f'<rect x="{self.sx(x0)}" y="{self.m_top}" width="{round(self.sx(x1) - self.sx(x0), 2)}" '
            f'height="{self.height - self.m_top - self.m_bottom}" fill="{color}" fill-opacity="{opacity}">{t}</rect>'
        )

    # -- output -----------------------------------------------------------------------
    def render(self) -> str:
        """The chart as an inline ``<svg>`` element."""
        f = self.font
        left, right, top, bottom = self.m_left, self.width - self.m_right, self.m_top, self.height - self.m_bottom
        out = [
            f'<svg class="chart{" small" if self.small else ""}" viewBox="0 0 {self.width} {self.height}" role="img" '
            f'aria-label="{_e(self.title)}" xmlns="http://www.w3.org/2000/svg" font-family="inherit">',
            f"<title>{_e(self.title)}</title>",
            f'<text x="{left}" y="{top - (10 if not self.small else 9)}" font-size="{f + 2}" font-weight="600" fill="#111">{_e(self.title)}</text>',
        ]
        for v in self.y_ticks:
            py = self.sy(v)
            out.append(f'<line x1="{left}" x2="{right}" y1="{py}" y2="{py}" stroke="#e3e3e3" stroke-width="1"/>')
            out.append(f'<text x="{left - 6}" y="{py + f * 0.35}" text-anchor="end" font-size="{f - 1}" fill="#333">{_e(self.y_fmt(v))}</text>')
        for v in self.x_ticks:
            if not (self.x0 - 1e-9 <= v <= self.x1 + 1e-9):
                continue
            px = self.sx(v)
            out.append(f'<line x1="{px}" x2="{px}" y1="{bottom}" y2="{bottom + 5}" stroke="#555" stroke-width="1"/>')
            lines = self.x_fmt(v).split("\n")
            spans = "".join(f'<tspan x="{px}" dy="{0 if i == 0 else f}">{_e(t)}</tspan>' for i, t in enumerate(lines))
            out.append(f'<text x="{px}" y="{bottom + 6 + f}" text-anchor="middle" font-size="{f - 1}" fill="#333">{spans}</text>')
        out += self.parts
        if self.y0 < 0 < self.y1:
            out.append(f'<line x1="{left}" x2="{right}" y1="{self.sy(0)}" y2="{self.sy(0)}" stroke="#777" stroke-width="1"/>')
        out.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{bottom}" stroke="#555" stroke-width="1"/>')
        out.append(f'<line x1="{left}" x2="{right}" y1="{bottom}" y2="{bottom}" stroke="#555" stroke-width="1"/>')
        out.append(f'<text x="{(left + right) / 2}" y="{self.height - 6}" text-anchor="middle" font-size="{f}" fill="#222">{_e(self.x_label)}</text>')
        cy = (top + bottom) / 2
        out.append(f'<text x="{f + 2}" y="{cy}" text-anchor="middle" font-size="{f}" fill="#222" transform="rotate(-90 {f + 2} {cy})">{_e(self.y_label)}</text>')
        out.append("</svg>")
        return "\n".join(out)


def _legend(items: Sequence[tuple[str, str, str]]) -> str:
    """An HTML legend: (label, colour, kind) with kind 'box', 'line', 'dash' or 'band'."""
    spans = []
    for label, color, kind in items:
        if kind == "box":
            sw = f'<svg width="16" height="12"><rect width="16" height="12" fill="{color}"/></svg>'
        elif kind == "band":
            sw = f'<svg width="22" height="12"><rect width="22" height="12" fill="{color}" fill-opacity="0.25"/><line x1="0" x2="22" y1="6" y2="6" stroke="{color}" stroke-width="2"/></svg>'
        else:
            color = LINE_TONE.get(color, color)
            dash = ' stroke-dasharray="5 3"' if kind == "dash" else (f' stroke-dasharray="{kind[5:]}"' if kind.startswith("dash:") else "")
            sw = f'<svg width="26" height="12"><line x1="0" x2="26" y1="6" y2="6" stroke="{color}" stroke-width="2.5"{dash}/></svg>'
        spans.append(f'<span class="key">{sw}{_e(label)}</span>')
    return f'<div class="legend">{"".join(spans)}</div>'


def _round_axis(n_rounds: int) -> dict[str, Any]:
    """The shared x axis: 'rounds completed', 0 = before round 0. Round t spans (t, t+1]."""
    return {"x_lim": (0, max(1, n_rounds)), "x_ticks": _int_ticks(0, max(1, n_rounds)), "x_fmt": lambda v: f"{v:.0f}"}


def _colors(caps: Sequence[str]) -> dict[str, str]:
    return {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(caps)}


# ---------------------------------------------------------------------------------------
# Sections of a one-run report
# ---------------------------------------------------------------------------------------

X_ROUNDS = "rounds completed (0 = before round 0)"


def _n_axis(run: RunView) -> int:
    return max(run.planned_rounds or 0, len(run.rounds), 1)


def _section(anchor: str, title: str, body: str, intro: str = "") -> str:
    intro_html = f'<p class="intro">{intro}</p>' if intro else ""
    return f'<section id="{anchor}"><h2>{_e(title)}</h2>{intro_html}{body}</section>'


def _empty(msg: str) -> str:
    return f'<p class="empty">{_e(msg)}</p>'


def _allocation_section(run: RunView) -> str:
    caps, colors = run.capabilities, _colors(run.capabilities)
    intro = "Share of each round's billable tokens the policy gave each capability (the allocation w<sub>t</sub>). Round t occupies the strip from t to t+1."
    if not run.rounds:
        return _section("allocation", "1 · Allocation per round", _empty("No committed round yet."), intro)
    p = Plot("Allocation per round (stacked)", X_ROUNDS, "share of round's tokens (%)", y_values=[0, 100], y_lim=(0, 100), **_round_axis(_n_axis(run)))
    for r in run.rounds:
        total = sum(r.allocation.get(c, 0.0) for c in caps) or 1.0
        y = 0.0
        for c in caps:
            share = 100 * r.allocation.get(c, 0.0) / total  # shares are on the simplex; guard rounding
            if share > 0:
                quota = f", quota {r.quota_tokens:,} tokens" if isinstance(r.quota_tokens, int) else ""
                p.rect(r.round, r.round + 1, y, y + share, colors[c], tip=f"round {r.round}: {c} {share:.1f} %{quota}", stroke="#fff")
                y += share
    legend = _legend([(c, colors[c], "box") for c in caps])
    return _section("allocation", "1 · Allocation per round", legend + p.render(), intro)


def _profile_section(run: RunView) -> str:
    caps, colors = run.capabilities, _colors(run.capabilities)
    intro = ("Probed score of each capability after every round, with its 95 % interval as a band. "
             "Point 0 is the initial profile; the dashed line marks it. Each panel has its own vertical scale.")
    s0, i0 = run.initial_profile
    if not s0 and not run.rounds:
        return _section("profile", "2 · Capability profile per round", _empty("No profile recorded yet."), intro)
    panels = []
    n = _n_axis(run)
    for c in caps:
        xs, ys, lo, hi, tips = [], [], [], [], []
        points = ([(0, s0.get(c), i0.get(c))] if c in s0 else []) + [(r.round + 1, r.scores.get(c), r.intervals.get(c)) for r in run.rounds]
        for x, y, iv in points:
            if y is None:
                continue
            xs.append(x)
            ys.append(y)
            lo.append(iv[0] if iv else y)
            hi.append(iv[1] if iv else y)
            tips.append(f"{c} after {x} round(s): {y:.2f}" + (f" [{iv[0]:.2f}, {iv[1]:.2f}]" if iv else ""))
        if not xs:
            continue
        p = Plot(c, "rounds completed", "score (0–100)", y_values=lo + hi, small=True, width=360, height=230, **_round_axis(n) | {"x_ticks": _int_ticks(0, n, 5)})
        p.band(xs, lo, hi, colors[c])
        if c in s0:
            p.hline(s0[c], color="#666", dash="4 3", width=1)
        p.line(list(zip(xs, ys, strict=True)), colors[c], width=2, markers=True, tips=tips)
        panels.append(p.render())
    legend = _legend([("score", "#555", "line"), ("95 % interval", "#555", "band"), ("initial score", "#666", "dash")])
    return _section("profile", "2 · Capability profile per round", legend + f'<div class="grid">{"".join(panels)}</div>', intro)


def _numeric_info_keys(rounds: Sequence[RoundView]) -> list[str]:
    """policy_info keys that hold a number in some round (booleans and lists excluded)."""
    keys: list[str] = []
    for r in rounds:
        for k, v in r.policy_info.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in keys:
                keys.append(k)
    return keys


def _reward_section(run: RunView) -> str:
    beta = run._cfg("reward", "beta")
    beta_txt = f"β = {beta:g}" if isinstance(beta, (int, float)) else "β from the config"
    intro = (f"Reward R = gain − β·spillover − cost penalty ({beta_txt}), per round. Bars stack the parts "
             "(gain above zero when positive; the penalties below); the black line is R as recorded in reward.json.")
    if not run.rounds:
        return _section("reward", "3 · Reward per round", _empty("No committed round yet."), intro)
    gain_c, spill_c, cost_c = PALETTE[2], PALETTE[3], PALETTE[4]
    parts_per_round = []
    values: list[float] = []
    for r in run.rounds:
        g = float(r.reward.get("gain", 0.0))
        spill = float(r.reward.get("spillover", 0.0)) * (float(beta) if isinstance(beta, (int, float)) else 1.0)
        cost = float(r.reward.get("cost_penalty", 0.0))
        R = float(r.reward.get("reward", g - spill - cost))
        parts_per_round.append((r.round, g, spill, cost, R))
        pos = max(g, 0.0)
        neg = min(g, 0.0) - spill - cost
        values += [pos, neg, R]
    p = Plot("Reward and its parts per round", X_ROUNDS, "reward (requirement-weighted score points)", y_values=values, include_zero=True, **_round_axis(_n_axis(run)))
    for t, g, spill, cost, R in parts_per_round:
        x0, x1 = t + 0.14, t + 0.86
        tip = f"round {t}: R {R:+.3f} = gain {g:+.3f} − β·spillover {spill:.3f} − cost {cost:.3f}"
        if g >= 0:
            p.rect(x0, x1, 0, g, gain_c, tip)
            base = 0.0
        else:
            p.rect(x0, x1, g, 0, gain_c, tip)
            base = g
        p.rect(x0, x1, base - spill, base, spill_c, tip)
        p.rect(x0, x1, base - spill - cost, base - spill, cost_c, tip)
    p.line([(t + 0.5, R) for t, *_, R in parts_per_round], "#111", width=2, markers=True, tips=[f"round {t}: R {R:+.3f}" for t, *_, R in parts_per_round])
    body = _legend([("gain r·Δs", gain_c, "box"), ("β·spillover", spill_c, "box"), ("cost penalty λ·tokens", cost_c, "box"), ("reward R", "#111", "line")]) + p.render()

    # The cost penalty is near-constant per round (λ × the round's quota) and can dwarf the
    # parts that differ between allocations; show those on their own scale.
    z = Plot("Gain and β·spillover per round (own scale, cost penalty left out)", X_ROUNDS, "score points", y_values=[v for _, g, sp, *_ in parts_per_round for v in (g, -sp)], include_zero=True, height=280, **_round_axis(_n_axis(run)))
    for t, g, spill, _cost, _R in parts_per_round:
        z.rect(t + 0.12, t + 0.5, 0, g, gain_c, tip=f"round {t}: gain {g:+.3f}")
        if spill:
            z.rect(t + 0.5, t + 0.88, -spill, 0, spill_c, tip=f"round {t}: β·spillover {spill:.3f} (drawn below zero: it is subtracted)")
    body += z.render()

    # The policy's own view of its choice, where it recorded one (UCB policies).
    keys = _numeric_info_keys(run.rounds)
    if keys:
        body += _policy_info_block(run, keys, parts_per_round)
    return _section("reward", "3 · Reward per round and the policy's view", body, intro)


def _policy_info_block(run: RunView, keys: list[str], parts: list[tuple[int, float, float, float, float]]) -> str:
    n = _n_axis(run)
    blocks = []
    warm = [r.round for r in run.rounds if r.policy_info.get("warmup") is True]
    has_ucb = {"mu", "sigma"} <= set(keys)
    if has_ucb:
        xs, mus, lo, hi = [], [], [], []
        for r in run.rounds:
            mu, sigma = r.policy_info.get("mu"), r.policy_info.get("sigma")
            if isinstance(mu, (int, float)) and isinstance(sigma, (int, float)):
                k = r.policy_info.get("kappa", 1.0)
                k = float(k) if isinstance(k, (int, float)) else 1.0
                xs.append(r.round + 0.5)
                mus.append(float(mu))
                lo.append(mu - k * sigma)
                hi.append(mu + k * sigma)
        obs = [(t + 0.5, R) for t, *_, R in parts]
        p = Plot("Policy's prediction vs observed reward", X_ROUNDS, "reward (score points)", y_values=lo + hi + [R for _, R in obs], **_round_axis(n))
        for t in warm:
            p.vspan(t, t + 1, tip=f"round {t}: warm-up")
        p.band(xs, lo, hi, PALETTE[0])
        p.line(list(zip(xs, mus, strict=True)), PALETTE[0], markers=True, tips=[f"μ {m:.3f}, UCB μ+κσ {h:.3f}" for m, h in zip(mus, hi, strict=True)])
        p.line(obs, "#111", width=1.6, dash="5 3", markers=True, tips=[f"observed R {R:+.3f}" for _, R in obs])
        legend_items = [("μ: predicted reward of the chosen allocation", PALETTE[0], "line"), ("μ ± κ·σ (upper edge = UCB score)", PALETTE[0], "band"), ("observed reward R", "#111", "dash")]
        if warm:
            legend_items.append(("warm-up round (policy_info.warmup)", "#ccc", "box"))
        blocks.append(_legend(legend_items) + p.render())
    panels = []
    # μ is drawn above already; σ and κ get panels because the band mixes them.
    for i, k in enumerate([k for k in keys if not (has_ucb and k == "mu")]):
        pts = [(r.round + 0.5, float(r.policy_info[k])) for r in run.rounds if isinstance(r.policy_info.get(k), (int, float)) and not isinstance(r.policy_info.get(k), bool)]
        title = POLICY_INFO_LABELS.get(k, f"policy_info[{k!r}]")
        p = Plot(title, "rounds completed", k, y_values=[y for _, y in pts], small=True, width=420, height=230, **_round_axis(n) | {"x_ticks": _int_ticks(0, n, 6)})
        for t in warm:
            p.vspan(t, t + 1)
        p.line(pts, PALETTE[(i + 1) % len(PALETTE)], width=2, markers=True, tips=[f"round {x - 0.5:.0f}: {k} = {y:.4g}" for x, y in pts])
        panels.append(p.render())
    info_note = (f'<p class="intro">Every numeric entry of the policy\'s record (<code>policy_info</code> in allocation.json), '
                 f'one panel each{"; shaded rounds are warm-up" if warm else ""}.</p>')
    blocks.append(info_note + f'<div class="grid wide">{"".join(panels)}</div>')
    return "".join(blocks)


def _phase_rows(run: RunView) -> tuple[dict[str, dict[str, int]], list[tuple[int, int]]]:
    """Per phase: tokens and billable, split initial / rounds / final; and billable per round."""
    n_planned = run.planned_rounds or 10**9
    table: dict[str, dict[str, int]] = {}
    per_round: dict[int, int] = {}
    for e in run.ledger:
        t, phase = int(e["round"]), str(e["phase"])
        row = table.setdefault(phase, {"tokens": 0, "billable": 0, "initial": 0, "rounds": 0, "final": 0, "cached": 0})
        row["tokens"] += int(e["tokens"])
        row["billable"] += int(e["billable"])
        where = "initial" if t < 0 else ("final" if t >= n_planned else "rounds")
        row[where] += int(e["tokens"])
        if e.get("cached"):
            row["cached"] += int(e["tokens"])
        if 0 <= t < n_planned:
            per_round[t] = per_round.get(t, 0) + int(e["billable"])
    return table, sorted(per_round.items())


def _ledger_section(run: RunView) -> str:
    B, unit = run.budget_tokens, run.budget_unit
    intro = (f"Billable tokens (budget unit <code>{_e(unit)}</code>) accumulated round by round against the budget B. "
             "Probe, evaluation and profiling tokens are overhead, outside B (SPEC §1).")
    table, per_round = _phase_rows(run)
    body = ""
    if per_round or B:
        n = _n_axis(run)
        cum, xs_ys, tips = 0, [(0, 0)], ["before round 0: 0"]
        for t, b in per_round:
            cum += b
            xs_ys.append((t + 1, cum))
            tips.append(f"after round {t}: {cum:,} billable tokens (+{b:,})")
        p = Plot("Budget burn-down: cumulative billable tokens", X_ROUNDS, f"billable tokens ({unit})", y_values=[y for _, y in xs_ys] + ([B * 1.05] if B else []), include_zero=True, y_fmt=_tok, **_round_axis(n))
        if B:
            p.line([(0, 0), (n, B)], "#999", width=1.2, dash="2 4")
            p.hline(B, color=PALETTE[3], dash="7 4", label=f"budget B = {B:,}", width=1.8)
        p.line(xs_ys, PALETTE[0], width=2.6, markers=True, tips=tips)
        body += _legend([("cumulative billable tokens", PALETTE[0], "line"), ("budget B", PALETTE[3], "dash"), ("even pace B·t/T", "#999", "dash:2 4")]) + p.render()
    if table:
        rows = []
        order = [ph for ph in PHASES if ph in table] + [ph for ph in table if ph not in PHASES]
        for ph in order:
            r = table[ph]
            kind = "overhead" if ph in OVERHEAD_PHASES else ("billable" if r["billable"] else f"not billable under unit {unit}")
            rows.append(
                f"<tr><td>{_e(ph)}</td><td>{r['tokens']:,}</td><td>{r['billable']:,}</td><td>{r['initial']:,}</td>"
                f"<td>{r['rounds']:,}</td><td>{r['final']:,}</td><td>{r['cached']:,}</td><td class='text'>{_e(kind)}</td></tr>"
            )
        billable = sum(r["billable"] for r in table.values())
        share = f"{100 * billable / B:.1f} % of B = {B:,}" if B else ""
        rows.append(f'<tr class="total"><td>total billable</td><td></td><td>{billable:,}</td><td colspan="5" class="text">{_e(share)}</td></tr>')
        body += (
            "<h3>Tokens per phase (ledger.jsonl)</h3><table class='num'><thead><tr><th>phase</th><th>tokens processed</th><th>billable</th>"
            "<th>before round 0</th><th>in rounds</th><th>final eval</th><th>from cache</th><th style='text-align:left'>counts as</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )
    else:
        body += _empty("The ledger has no charges yet.")
    wall = run.wall_s
    if wall:
        rows = "".join(f"<tr><td>{_e(k)}</td><td>{v:,.2f}</td></tr>" for k, v in wall.items())
        body += (f"<h3>Wall time by phase</h3><table class='num narrow'><thead><tr><th>phase</th><th>seconds</th></tr></thead>"
                 f"<tbody>{rows}<tr class='total'><td>total</td><td>{sum(wall.values()):,.2f}</td></tr></tbody></table>")
    return _section("ledger", "4 · Ledger: budget burn-down and tokens per phase", body, intro)


def _dev_section(run: RunView) -> str:
    intro = "Task utility on the dev split at each checkpoint (used to calibrate rewards and shrink κ when it stalls)."
    dev = run.dev_utility
    if run.initial_utility is not None:
        fin = f" → final {run.final_utility:.2f}" if run.final_utility is not None else " (final not measured yet)"
        intro += f" Test-split utility: initial {run.initial_utility:.2f}{fin}."
    if not dev:
        return _section("dev", "5 · Dev utility checkpoints", _empty("No dev checkpoint recorded yet."), intro)
    pts = [(t + 1, u) for t, u in dev]
    p = Plot("Dev utility at checkpoints", X_ROUNDS, "utility (0–100, dev split)", y_values=[u for _, u in pts], **_round_axis(_n_axis(run)))
    p.line(pts, PALETTE[5], width=2.4, markers=True, tips=[f"after {x} round(s): dev utility {u:.2f}" for x, u in pts])
    return _section("dev", "5 · Dev utility checkpoints", _legend([("dev utility", PALETTE[5], "line")]) + p.render(), intro)


def _final_section(run: RunView) -> str:
    s0, _ = run.initial_profile
    s1, iv1, what = run.final_profile
    caps = [c for c in run.capabilities if c in s0 or c in s1]
    spend: dict[str, int] = {}
    for r in run.rounds:
        for c, v in (r.reward.get("spend_per_capability") or {}).items():
            spend[c] = spend.get(c, 0) + int(v)
    total_spend = sum(spend.values())
    req = run._cfg("task", "requirement") or {}
    intro = ("Initial and final profile on the held-out test probes, with the final 95 % interval." if run.complete else
             f"The run is incomplete: the last column is the profile probed {what}, not the held-out final profile.")
    if not caps:
        return _section("final", "6 · Final profile", _empty("No profile recorded."), intro)
    rows = []
    changes = []
    for c in caps:
        a, b = s0.get(c), s1.get(c)
        d = (b - a) if a is not None and b is not None else None
        changes.append((c, d, iv1.get(c), a))
        cls = "" if d is None else ("up" if d > 0.005 else ("down" if d < -0.005 else ""))
        arrow = "" if d is None else ("▲ " if d > 0.005 else ("▼ " if d < -0.005 else ""))
        iv = iv1.get(c)
        tokens = spend.get(c, 0)
        req_cell = f"<td>{float(req[c]):.2f}</td>" if isinstance(req, dict) and req else ""
        if isinstance(req, dict) and req and c not in req:
            req_cell = "<td>0.00</td>"
        rows.append(
            f"<tr><td>{_e(c)}</td>{req_cell}<td>{_num(a)}</td><td>{_num(b)}</td><td class='{cls}'>{arrow}{'' if d is None else f'{d:+.2f}'}</td>"
            f"<td>{f'[{iv[0]:.2f}, {iv[1]:.2f}]' if iv else '–'}</td>"
            f"<td>{tokens:,}</td><td>{(100 * tokens / total_spend if total_spend else 0):.1f} %</td></tr>"
        )
    req_head = "<th>requirement</th>" if isinstance(req, dict) and req else ""
    table = (f"<table class='num'><thead><tr><th>capability</th>{req_head}<th>initial</th><th>{_e('final' if run.complete else 'latest (' + what + ')')}</th>"
             "<th>change</th><th>95 % interval</th><th>tokens trained on it</th><th>share</th></tr></thead>"
             f"<tbody>{''.join(rows)}</tbody></table>")
    # A change chart beside the table: the eye finds spillover faster in bars than digits.
    vals = [d for _, d, _, _ in changes if d is not None]
    lows = [iv[0] - a for _, d, iv, a in changes if iv and a is not None]
    highs = [iv[1] - a for _, d, iv, a in changes if iv and a is not None]
    chart = ""
    if vals:
        n = len(changes)
        p = Plot("Change per capability (final − initial)", "capability", "score change (points)", (0, n), vals + lows + highs, include_zero=True,
                 x_ticks=[i + 0.5 for i in range(n)], x_fmt=lambda v: _wrap_name(changes[int(v)][0]), height=300)
        colors = _colors(run.capabilities)
        for i, (c, d, iv, a) in enumerate(changes):
            if d is None:
                continue
            p.rect(i + 0.2, i + 0.8, 0, d, colors.get(c, "#777"), tip=f"{c}: {d:+.2f}")
            if iv and a is not None:
                xm = p.sx(i + 0.5)
                p.parts.append(f'<line x1="{xm}" x2="{xm}" y1="{p.sy(iv[0] - a)}" y2="{p.sy(iv[1] - a)}" stroke="#111" stroke-width="1.4"/>')
        chart = p.render() + "<p class='intro'>Whiskers: the final 95 % interval, shifted by the initial score.</p>"
    return _section("final", "6 · Final profile", table + chart, intro)


# ---------------------------------------------------------------------------------------
# Page
# ---------------------------------------------------------------------------------------

CSS = """
:root { color-scheme: light; }
body { margin: 0; background: #fafafa; color: #1a1a1a; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 1.7em; margin: 0.2em 0 0.1em; }
h2 { font-size: 1.3em; margin: 0 0 0.3em; }
h3 { font-size: 1.05em; margin: 1.2em 0 0.4em; }
.sub { color: #555; margin: 0 0 1em; word-break: break-all; }
section, header { background: #fff; border: 1px solid #e2e2e2; border-radius: 8px; padding: 18px 22px; margin: 18px 0; }
.intro { color: #444; margin: 0 0 0.6em; max-width: 80ch; }
.empty { color: #666; font-style: italic; }
.banner { border-radius: 6px; padding: 10px 14px; margin: 10px 0; }
.banner.incomplete { background: #fff4e0; border: 1px solid #e69f00; }
.banner.note { background: #eef5fb; border: 1px solid #56b4e9; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 8px 24px; margin: 0; }
.facts div { border-left: 3px solid #0072b2; padding-left: 10px; }
.facts dt { color: #555; font-size: 0.85em; }
.facts dd { margin: 0; font-size: 1.1em; font-weight: 600; font-variant-numeric: tabular-nums; }
svg.chart { width: 100%; height: auto; display: block; margin: 6px 0 10px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 6px 18px; }
.grid.wide { grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); }
.legend { display: flex; flex-wrap: wrap; gap: 6px 18px; margin: 6px 0; font-size: 0.92em; }
.legend .key { display: inline-flex; align-items: center; gap: 6px; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 0.95em; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e6e6e6; text-align: left; white-space: nowrap; }
td.text { text-align: left !important; }
th { background: #f3f3f3; font-weight: 600; }
table.num td:not(:first-child) { text-align: right; font-variant-numeric: tabular-nums; }
table.num th:not(:first-child) { text-align: right; }
tr.total td { font-weight: 600; border-top: 2px solid #ccc; }
td.up { color: #0a6b50; } td.down { color: #b04000; }
code { background: #f1f1f1; padding: 0 4px; border-radius: 3px; }
footer { color: #666; font-size: 0.85em; margin-top: 24px; }
a { color: #0060a0; }
@media print { body { background: #fff; } section, header { break-inside: avoid; border: none; } }
"""


def _page(title: str, header: str, sections: Iterable[str], footer: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
        f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        f"{header}\n" + "\n".join(sections) + f"\n<footer>{footer}</footer>\n</main>\n</body>\n</html>\n"
    )


def _facts(items: Sequence[tuple[str, str]]) -> str:
    return '<dl class="facts">' + "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in items) + "</dl>"


def _notes_html(run: RunView) -> str:
    out = []
    for i, n in enumerate(run.notes):
        cls = "incomplete" if (i == 0 and not run.complete) else "note"
        out.append(f'<div class="banner {cls}">{_e(n)}</div>')
    return "".join(out)


def _footer(runs: Sequence[RunView]) -> str:
    env = runs[0].env if runs else {}
    versions = env.get("versions", {}) if isinstance(env, dict) else {}
    v = ", ".join(f"{k} {val}" for k, val in versions.items())
    sha = env.get("git_sha", "") if isinstance(env, dict) else ""
    return _e(f"Generated by read-distill's report from the run directory artefacts only. Run env: {v}" + (f"; git {sha[:12]}" if sha else "") + ".")


def render_run(run: RunView) -> str:
    """The HTML of a one-run report."""
    u0, u1 = run.initial_utility, run.final_utility
    if u0 is not None and u1 is not None:
        utility = f"{u0:.2f} → {u1:.2f} ({u1 - u0:+.2f})"
    elif u0 is not None:
        utility = f"{u0:.2f} → (not measured yet)"
    else:
        utility = "–"
    B = run.budget_tokens
    billable = sum(int(e["billable"]) for e in run.ledger)
    wall = sum(run.wall_s.values())
    n_done = len(run.rounds)
    facts = [
        ("task", run.task),
        ("policy", run.policy),
        ("seed", str(run.seed)),
        ("budget", f"{B:,} tokens ({run.budget_unit})" if B else "–"),
        ("billable spent", f"{billable:,}" + (f" ({100 * billable / B:.1f} % of B)" if B else "")),
        ("rounds", f"{n_done} of {run.planned_rounds if run.planned_rounds is not None else '?'}" + ("" if run.complete else " (incomplete)")),
        ("test utility (initial → final)", utility),
        ("wall time", f"{wall:,.1f} s"),
    ]
    status = "complete" if run.complete else "INCOMPLETE"
    title = f"read-distill report — {run.task} · {run.policy} · seed {run.seed}"
    header = (f"<header><h1>{_e(title)}</h1><p class='sub'>{_e(str(run.path))} — {_e(status)}</p>"
              f"{_notes_html(run)}{_facts(facts)}</header>")
    sections = [_allocation_section(run), _profile_section(run), _reward_section(run), _ledger_section(run), _dev_section(run), _final_section(run)]
    return _page(title, header, sections, _footer([run]))


# ---------------------------------------------------------------------------------------
# Several runs: one comparison page
# ---------------------------------------------------------------------------------------


def _run_styles(runs: Sequence[RunView]) -> list[tuple[str, str]]:
    """(colour, dash) per run: colour by policy, dash by the run's rank within its policy."""
    policies: list[str] = []
    seen: dict[str, int] = {}
    out = []
    for r in runs:
        if r.policy not in policies:
            policies.append(r.policy)
        k = seen.get(r.policy, 0)
        seen[r.policy] = k + 1
        out.append((PALETTE[policies.index(r.policy) % len(PALETTE)], DASHES[k % len(DASHES)]))
    return out


def _labels(runs: Sequence[RunView]) -> list[str]:
    labels = [r.label for r in runs]
    # Same policy and seed twice (e.g. two budgets): add the directory name to tell them apart.
    return [f"{lab} ({r.path.name})" if labels.count(lab) > 1 else lab for lab, r in zip(labels, runs, strict=True)]


def render_comparison(runs: Sequence[RunView], out: Path) -> str:
    """The HTML of a page overlaying several runs."""
    labels, styles = _labels(runs), _run_styles(runs)
    legend = _legend([(lab, c, f"dash:{d}" if d else "line") for lab, (c, d) in zip(labels, styles, strict=True)])
    n = max(_n_axis(r) for r in runs)

    rows = []
    for r, lab, (c, _) in zip(runs, labels, styles, strict=True):
        u0, u1 = r.initial_utility, r.final_utility
        billable = sum(int(e["billable"]) for e in r.ledger)
        report = r.path / "report.html"
        link = f"<a href='{_e(os.path.relpath(report, out.parent))}'>report</a>" if report.exists() else ""
        rows.append(
            f"<tr><td><span style='color:{c}'>■</span> {_e(lab)}</td><td class='text'>{_e(r.task)}</td><td class='text'>{'complete' if r.complete else 'incomplete'}</td>"
            f"<td>{len(r.rounds)}</td><td>{r.budget_tokens or 0:,}</td><td>{billable:,}</td><td>{_num(u0)}</td><td>{_num(u1)}</td>"
            f"<td>{'' if u0 is None or u1 is None else f'{u1 - u0:+.2f}'}</td><td>{link}</td></tr>"
        )
    header_table = ("<table class='num'><thead><tr><th>run</th><th style='text-align:left'>task</th><th style='text-align:left'>status</th><th>rounds</th><th>budget</th><th>billable</th>"
                    "<th>initial U</th><th>final U</th><th>change</th><th></th></tr></thead>" f"<tbody>{''.join(rows)}</tbody></table>")
    notes = "".join(f'<div class="banner {"incomplete" if not r.complete else "note"}">{_e(lab)}: {_e(r.notes[0])}</div>' for r, lab in zip(runs, labels, strict=True) if r.notes)
    title = f"read-distill comparison — {len(runs)} runs"
    header = f"<header><h1>{_e(title)}</h1><p class='sub'>{_e(', '.join(str(r.path) for r in runs))}</p>{notes}{header_table}</header>"

    sections = []
    # Dev utility overlay.
    p = Plot("Dev utility at checkpoints", X_ROUNDS, "utility (0–100, dev split)", y_values=[u for r in runs for _, u in r.dev_utility], **_round_axis(n))
    for r, lab, (c, d) in zip(runs, labels, styles, strict=True):
        p.line([(t + 1, u) for t, u in r.dev_utility], c, dash=d, markers=True, tips=[f"{lab}: after {t + 1} round(s) {u:.2f}" for t, u in r.dev_utility])
    sections.append(_section("dev", "Dev utility", legend + p.render(), "Task utility on the dev split at each checkpoint, one line per run."))

    # Burn-down overlay.
    p_pts = []
    for r in runs:
        _, per_round = _phase_rows(r)
        cum, pts = 0, [(0, 0)]
        for t, b in per_round:
            cum += b
            pts.append((t + 1, cum))
        p_pts.append(pts)
    budgets = sorted({r.budget_tokens for r in runs if r.budget_tokens})
    p = Plot("Cumulative billable tokens", X_ROUNDS, "billable tokens", y_values=[y for pts in p_pts for _, y in pts] + [b * 1.05 for b in budgets], include_zero=True, y_fmt=_tok, **_round_axis(n))
    for b in budgets:
        p.hline(b, color="#888", label=f"budget {b:,}")
    for pts, lab, (c, d) in zip(p_pts, labels, styles, strict=True):
        p.line(pts, c, dash=d, markers=True, tips=[f"{lab}: {y:,} after {x} round(s)" for x, y in pts])
    sections.append(_section("ledger", "Budget burn-down", legend + p.render(), "Billable tokens against each run's budget."))

    # Profile change per capability, one dot per run.
    caps: list[str] = []
    for r in runs:
        caps += [c for c in r.capabilities if c not in caps]
    changes = []
    for r in runs:
        s0, _ = r.initial_profile
        s1, _, _ = r.final_profile
        changes.append({c: s1[c] - s0[c] for c in caps if c in s0 and c in s1})
    vals = [v for ch in changes for v in ch.values()]
    if vals:
        k = len(caps)
        p = Plot("Profile change per capability (final − initial)", "capability", "score change (points)", (0, k), vals, include_zero=True,
                 x_ticks=[i + 0.5 for i in range(k)], x_fmt=lambda v: _wrap_name(caps[int(v)]), height=340)
        width = 0.8 / max(1, len(runs))
        for j, (ch, lab, (c, _)) in enumerate(zip(changes, labels, styles, strict=True)):
            for i, cap in enumerate(caps):
                if cap in ch:
                    x0 = i + 0.1 + j * width
                    p.rect(x0, x0 + width, 0, ch[cap], c, tip=f"{lab}: {cap} {ch[cap]:+.2f}", stroke="#fff")
        sections.append(_section("final", "Profile change", legend + p.render(), "Final minus initial score per capability (latest probed profile for incomplete runs)."))
        head = "".join(f"<th>{_e(lab)}</th>" for lab in labels)
        body = "".join(
            f"<tr><td>{_e(cap)}</td>" + "".join(f"<td>{ch[cap]:+.2f}</td>" if cap in ch else "<td>–</td>" for ch in changes) + "</tr>" for cap in caps
        )
        sections[-1] = sections[-1].replace("</section>", f"<table class='num'><thead><tr><th>capability</th>{head}</tr></thead><tbody>{body}</tbody></table></section>")

    # Allocation per run, small multiples with one shared legend.
    colors = _colors(caps)
    panels = []
    for r, lab in zip(runs, labels, strict=True):
        p = Plot(lab, "rounds completed", "share (%)", y_values=[0, 100], y_lim=(0, 100), small=True, width=420, height=230, **_round_axis(n) | {"x_ticks": _int_ticks(0, n, 6)})
        for rv in r.rounds:
            total = sum(rv.allocation.values()) or 1.0
            y = 0.0
            for cap in caps:
                share = 100 * rv.allocation.get(cap, 0.0) / total
                if share > 0:
                    p.rect(rv.round, rv.round + 1, y, y + share, colors[cap], tip=f"{lab}, round {rv.round}: {cap} {share:.1f} %")
                    y += share
        panels.append(p.render())
    sections.append(_section("allocation", "Allocation per round", _legend([(c, colors[c], "box") for c in caps]) + f'<div class="grid wide">{"".join(panels)}</div>',
                             "Share of each round's tokens per capability, one panel per run."))
    return _page(title, header, sections, _footer(runs))


def write_report(run_dirs: Sequence[Path | str] | Path | str, out: Path | str | None = None) -> Path:
    """Write a self-contained HTML report and return its path.

    One run dir: the run's report, at ``<run_dir>/report.html`` unless ``out`` is given.
    Several: a page overlaying them, at ``out`` (default: ``report.html`` in the runs'
    common parent directory). Reads the run directories only; an unfinished run is shown
    as far as it got, marked incomplete. Raises ``ReportError`` (a ``ConfigError``) when a
    path is not a run directory.
    """
    dirs = [Path(run_dirs)] if isinstance(run_dirs, (str, Path)) else [Path(d) for d in run_dirs]
    if not dirs:
        raise ReportError("report: give at least one run directory")
    runs = [load_run(d) for d in dirs]
    if len(runs) == 1:
        target = Path(out) if out is not None else dirs[0] / "report.html"
        text = render_run(runs[0])
    else:
        target = Path(out) if out is not None else Path(os.path.commonpath([d.resolve() for d in dirs])) / "report.html"
        text = render_comparison(runs, target)
    write_text(target, text)
    return target

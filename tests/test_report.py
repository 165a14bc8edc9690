"""The HTML report: built from simulated run directories, finished and unfinished."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from read_distill.report import (
    ReportError,
    RunView,
    _allocation_figure,
    _dev_figure,
    _profile_figure,
    _reward_figure,
    spend_shares,
    write_report,
)
from read_distill.runner import run
from read_distill.sim import sim_config
from read_distill.sim.environments import paper_world
from read_distill.store import read_json

BUDGET, ROUNDS = 2_000_000, 6
#: Chart sections of a one-run report; each must hold at least one SVG.
SECTIONS = ("allocation", "profile", "reward", "ledger", "dev", "final")


def _sim_run(run_dir: Path, policy: str = "read", seed: int = 0, name: str = "paper", stop_after_round: int | None = None) -> Path:
    world = paper_world(name=name)
    config = sim_config(world, policy, BUDGET, ROUNDS, seed)
    run(config, run_dir, world=world.with_example_tokens(BUDGET, ROUNDS), quiet=True, stop_after_round=stop_after_round)
    return run_dir


def _section(html: str, anchor: str) -> str:
    m = re.search(rf'<section id="{anchor}">(.*?)</section>', html, re.S)
    assert m, f"section {anchor!r} missing"
    return m.group(1)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    return _sim_run(tmp_path_factory.mktemp("rep") / "read")


@pytest.fixture(scope="module")
def with_replay(finished, tmp_path_factory) -> Path:
    """The finished run as if a quarter of every round had trained on replay data (the sim
    world has no replay mixture; a micro-world run records it the same way)."""
    run_dir = tmp_path_factory.mktemp("replay") / "read"
    shutil.copytree(finished, run_dir)
    for path in sorted(run_dir.glob("rounds/*/reward.json")):
        reward = read_json(path)
        reward["spend_per_capability"]["replay"] = sum(reward["spend_per_capability"].values()) // 3
        path.write_text(json.dumps(reward))
    return run_dir


def test_one_run_report_has_every_chart_and_the_final_numbers(finished):
    path = write_report([finished])
    assert path == finished / "report.html"
    html = path.read_text()
    summary = read_json(finished / "summary.json")
    for anchor in SECTIONS:
        assert "<svg" in _section(html, anchor), anchor
    final = _section(html, "final")
    for c, v in summary["final_profile"].items():
        assert c in final and f"{v:.2f}" in final
        assert f"{v - summary['initial_profile'][c]:+.2f}" in final
        lo, hi = summary["final_intervals"][c]
        assert f"[{lo:.2f}, {hi:.2f}]" in final
    assert f"{summary['initial_utility']:.2f} → {summary['final_utility']:.2f}" in html
    assert f"{summary['ledger']['billable']:,}" in html
    assert "Incomplete" not in html
    # The read policy records UCB terms; they are drawn and labelled.
    assert "μ" in _section(html, "reward") and "κ" in _section(html, "reward")


def test_report_is_one_self_contained_page_of_well_formed_svgs(finished):
    html = write_report(finished, out=finished / "again.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html), "nothing may be fetched"
    assert not re.search(r"<script|<link|<img|<iframe|@import|url\(\s*['\"]?http", html)
    svgs = re.findall(r'<svg class="chart".*?</svg>', html, re.S)
    assert len(svgs) >= len(SECTIONS)
    ids = []
    for svg in svgs:
        root = ET.fromstring(svg)  # raises on broken markup or unescaped text
        ids += [e.get("id") for e in root.iter() if e.get("id")]
    assert len(ids) == len(set(ids)), "ids must be unique across the page's figures"


def test_importing_the_package_does_not_import_matplotlib():
    code = "import sys, read_distill.cli, read_distill.report; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_replay_is_its_own_series_and_the_shares_add_to_100(with_replay):
    shares = spend_shares(RunView(with_replay))
    assert "replay" in shares
    for t in range(ROUNDS):
        assert sum(v[t] for v in shares.values()) == pytest.approx(100)
        assert shares["replay"][t] == pytest.approx(25, abs=0.01)
    final = _section(write_report(with_replay).read_text(), "final")
    rows = re.findall(r"<tr><td>([^<]+)</td>.*?<td>([\d.]+) %</td></tr>", final)
    assert [c for c, _ in rows][-1] == "replay"
    assert sum(float(s) for _, s in rows) == pytest.approx(100, abs=0.2)
    assert dict(rows)["replay"] == "25.0"


def test_score_axes_are_0_to_100_and_rounds_are_numbered_from_1(finished):
    view = RunView(finished)
    for fig in (_profile_figure(view), _dev_figure([view]), _allocation_figure([view])):
        for ax in (ax for ax in fig.axes if ax.get_visible()):
            assert ax.get_ylim() == (0, 100)
    # The console prints "round 1/6" for rounds/0001: bars stand at rounds 1..6, point 0 is the initial probe.
    (ax,) = _allocation_figure([view]).axes
    assert {round(p.get_x() + p.get_width() / 2) for p in ax.patches} == set(range(1, ROUNDS + 1))
    # A capability the task needs is probed after every round; one it does not need only
    # before the first round and in the final measurement, drawn at the last round.
    world = paper_world(name="paper")
    needed = {c for c, r in zip(world.capabilities, world.requirement, strict=True) if r > 0}
    lines = {ax.get_title(): list(ax.lines[0].get_xdata()) for ax in _profile_figure(view).axes if ax.lines}
    assert needed and set(lines) > needed
    for c, x in lines.items():
        assert x == (list(range(ROUNDS + 1)) if c in needed else [0, ROUNDS]), c


def test_each_reward_part_fills_its_own_panel(finished):
    view = RunView(finished)
    _, parts_ax, cost_ax = _reward_figure(view, {}).axes
    costs = [r.reward["cost_penalty"] for r in view.rounds]
    assert max(costs) > 2 * max(abs(r.reward["gain"]) for r in view.rounds), "the case where one shared scale squashes the gains"
    lo, hi = cost_ax.get_ylim()
    assert max(costs) >= 0.8 * (hi - lo), "the cost bars fill their panel, however small the cost"
    assert parts_ax.get_ylim()[0] > -max(costs) / 2, "gain and spillover are not squashed by the cost"


def test_unfinished_run_renders_with_an_incomplete_note(tmp_path):
    run_dir = _sim_run(tmp_path / "stopped", stop_after_round=3)
    assert not (run_dir / "summary.json").exists()
    html = write_report([run_dir]).read_text()
    assert "Incomplete run: 3 of 6 rounds committed" in html
    assert "<svg" in _section(html, "allocation")
    assert "not measured yet" in html
    assert "latest (after round 3)" in _section(html, "final")


def test_run_dir_stopped_before_any_commit_still_renders(tmp_path):
    run_dir = _sim_run(tmp_path / "stopped", stop_after_round=1)
    for name in ("state.json", "ledger.jsonl"):
        (run_dir / name).unlink()
    shutil.rmtree(run_dir / "rounds")
    html = write_report([run_dir]).read_text()
    assert "Incomplete run: 0 of 6 rounds committed" in html
    assert "No committed round yet" in html


def test_text_from_the_run_dir_is_escaped(tmp_path):
    run_dir = _sim_run(tmp_path / "evil", name='<script>alert("x")</script>', stop_after_round=1)
    html = write_report([run_dir]).read_text()
    assert "<script" not in html
    assert "&lt;script&gt;" in html


def test_several_runs_make_one_comparison_page(finished, tmp_path):
    other = _sim_run(tmp_path / "uniform", policy="uniform")
    out = write_report([finished, other], out=tmp_path / "compare.html")
    html = out.read_text()
    assert "read · seed 0" in html and "uniform · seed 0" in html
    for anchor in ("dev", "ledger", "final", "allocation"):
        assert "<svg" in _section(html, anchor), anchor


def test_runs_of_one_policy_and_seed_are_told_apart_by_their_directory(finished, tmp_path):
    again = shutil.copytree(finished, tmp_path / "again")
    html = write_report([finished, again], out=tmp_path / "compare.html").read_text()
    assert f"read · seed 0 ({finished.name})" in html and "read · seed 0 (again)" in html
    assert html.count('<svg class="chart"') >= 4 and "Incomplete" not in html


def test_policy_record_gets_a_panel_per_number_and_the_ucb_panel(finished):
    view = RunView(finished)
    assert {"mu", "sigma"} <= set(view.info)
    axes = _reward_figure(view, view.info).axes
    titles = [ax.get_title() for ax in axes]
    assert len(axes) == 3 + 1 + len(view.info) - 1, "μ is drawn with σ in the UCB panel, every other number alone"
    assert any("κ" in t for t in titles) and not any(t.endswith(": μ") for t in titles)


def test_not_a_run_dir_is_a_clear_error(tmp_path):
    with pytest.raises(ReportError, match="not a run directory"):
        write_report([tmp_path])
    with pytest.raises(ReportError, match="no such run directory"):
        write_report([tmp_path / "missing"])


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="chromium not installed")
def test_report_renders_in_a_headless_browser(finished, tmp_path):
    png = tmp_path / "report.png"
    page = write_report([finished])
    cmd = [
        "/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}", "--window-size=1400,2000", page.as_uri(),
    ]
    try:
        subprocess.run(cmd, capture_output=True, timeout=90, check=False)
    except subprocess.TimeoutExpired:
        pytest.skip("chromium did not finish in time")
    assert png.exists() and png.stat().st_size > 20_000

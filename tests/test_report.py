"""The HTML report: built from simulated run directories, finished and unfinished."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from read_distill.report import ReportError, _nice_ticks, write_report
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


def test_one_run_report_has_every_chart_and_the_final_numbers(finished):
    path = write_report([finished])
    assert path == finished / "report.html"
    html = path.read_text()
    summary = read_json(finished / "summary.json")
    for anchor in SECTIONS:
        assert "<svg" in _section(html, anchor), anchor
    for c in summary["final_profile"]:
        assert c in html
    final = _section(html, "final")
    for c, v in summary["final_profile"].items():
        assert f"{v:.2f}" in final
        assert f"{v - summary['initial_profile'][c]:+.2f}" in final
        lo, hi = summary["final_intervals"][c]
        assert f"[{lo:.2f}, {hi:.2f}]" in final
    assert f"{summary['initial_utility']:.2f} → {summary['final_utility']:.2f}" in html
    assert f"{summary['ledger']['billable']:,}" in html
    assert "Incomplete" not in html
    # The read policy records UCB terms; they are drawn and labelled.
    assert "μ" in _section(html, "reward") and "κ" in _section(html, "reward")


def test_every_svg_is_well_formed(finished):
    html = write_report(finished, out=finished / "again.html").read_text()
    svgs = re.findall(r"<svg class=\"chart.*?</svg>", html, re.S)
    assert len(svgs) >= len(SECTIONS)
    for svg in svgs:
        ET.fromstring(svg)  # raises on broken markup or unescaped text


def test_unfinished_run_renders_with_an_incomplete_note(tmp_path):
    run_dir = _sim_run(tmp_path / "stopped", stop_after_round=2)
    assert not (run_dir / "summary.json").exists()
    html = write_report([run_dir]).read_text()
    assert "Incomplete run: 3 of 6 rounds committed" in html
    assert "<svg" in _section(html, "allocation")
    assert "not measured yet" in html


def test_run_dir_stopped_before_any_commit_still_renders(tmp_path):
    run_dir = _sim_run(tmp_path / "stopped", stop_after_round=0)
    for name in ("state.json", "ledger.jsonl", "policy.json"):
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


def test_not_a_run_dir_is_a_clear_error(tmp_path):
    with pytest.raises(ReportError, match="not a run directory"):
        write_report([tmp_path])
    with pytest.raises(ReportError, match="no such run directory"):
        write_report([tmp_path / "missing"])


def test_nice_ticks_cover_the_range():
    for lo, hi in [(0, 1), (-10.3, 0.7), (17.2, 19.3), (0, 20_000_000), (5, 5)]:
        ticks = _nice_ticks(lo, hi)
        assert ticks[0] <= lo and ticks[-1] >= hi and len(ticks) <= 12


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

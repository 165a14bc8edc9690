"""``read-distill world info``: a built world's manifest and where its models are, so that
its teacher can be served (``read-distill serve-teacher <teacher.path>``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from read_distill.world.build import SPECS, load_manifest, shipped_world_dir
from read_distill.world.build import main as build_main


def main(argv: list[str]) -> int:
    """Print the manifest (``--json``: with ``teacher.path`` and ``student.path`` added)."""
    p = argparse.ArgumentParser(prog="read-distill world info", description="Print a built world's manifest.")
    p.add_argument("--size", choices=list(SPECS), default="default")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dir", type=Path, default=None)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    d = a.dir or shipped_world_dir(a.size, a.seed)
    if not a.json:
        code = build_main(["info", *argv])
        if code == 0:
            print(f"  models: teacher {(d / 'teacher').resolve()}, student {(d / 'student').resolve()}")
        return code
    try:
        m = load_manifest(d)
    except FileNotFoundError as err:
        print(str(err), file=sys.stderr)
        return 2
    for role in ("teacher", "student"):
        m[role]["path"] = str((d / role).resolve())
    print(json.dumps(m, indent=2))
    return 0

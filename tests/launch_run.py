"""A run under a multi-process launch, for tests/test_read_tiny.py:
``torchrun --nproc_per_node N tests/launch_run.py RUN_DIR STOP_AFTER|- resume|fresh OVERRIDE...``."""

import sys

from read_distill.config import load_config
from read_distill.runner import run

run_dir, stop, mode, *overrides = sys.argv[1:]
run(load_config(None, overrides), run_dir, quiet=True, resume=mode == "resume", stop_after_round=None if stop == "-" else int(stop))

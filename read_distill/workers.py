"""Worker processes (``compare``/``transfer --jobs``, ``requirement collect --jobs``)."""

from __future__ import annotations

import os
import signal
import sys


def die_with_parent() -> None:
    """In a worker: be sent SIGTERM when the process that started it ends, however it ends.

    A `kill` of a comparison would otherwise leave its workers finishing their runs,
    holding those run directories' locks, so a restarted comparison is refused them. A
    run stopped this way resumes exactly (Linux: prctl PR_SET_PDEATHSIG; elsewhere a
    worker finishes its task and then exits)."""
    if sys.platform != "linux":
        return
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
    if os.getppid() == 1:  # the parent ended before the line above
        os.kill(os.getpid(), signal.SIGTERM)

"""A small sandboxed Python executor for graders.

The snippet runs in a fresh isolated interpreter (``python -I``: no user site, no
environment variables, no current directory on the path) in an empty temporary
directory, with a wall-clock timeout and, on POSIX, limits on CPU time, address space,
file size and number of processes. Only its stdout (truncated) is returned; any error,
timeout or limit gives ``None``. It is a grader's guard against runaway or clumsy code,
not a security boundary against hostile code.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile

_MAX_OUT = 10_000


def _limits(cpu_s: int, mem_bytes: int):  # pragma: no cover - runs in the child
    def apply() -> None:
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
            resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))
            resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
            resource.setrlimit(resource.RLIMIT_NPROC, (64, 64))
        except (ImportError, ValueError, OSError):
            pass

    return apply


def run_python(src: str, timeout_s: float = 2.0, mem_mb: int = 256) -> str | None:
    """Run ``src`` in a sandboxed interpreter; its stdout, or ``None`` on any failure."""
    with tempfile.TemporaryDirectory(prefix="rd-sandbox-") as tmp:
        try:
            proc = subprocess.run(
                [sys.executable, "-I", "-S", "-c", src],
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                env={"PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0"},
                preexec_fn=_limits(max(1, int(timeout_s) + 1), mem_mb << 20) if sys.platform != "win32" else None,
            )
        except (subprocess.TimeoutExpired, OSError):
            return None
    if proc.returncode != 0:
        return None
    return proc.stdout[:_MAX_OUT]

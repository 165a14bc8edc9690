"""Sandboxed execution of model-written Python, deny by default.

:func:`run_python` runs a snippet and returns its stdout, or ``None`` for any failure
(error, timeout, limit, output past the cap, or no isolation here). The snippet runs
(Linux, as root: the namespaces and a process limit that holds need it):

* in new network, mount, PID and IPC namespaces: no network at all (not even loopback),
  no view of the caller's processes (``/proc`` is the namespace's own), no shared IPC;
* with every mount read-only and nosuid; a fresh 16 MiB tmpfs at ``/tmp`` is the only
  writable place and the working directory; ``/run`` and ``/dev/shm`` are empty;
* as a uid of its own, with no groups, no capabilities and no new privileges, so that
  RLIMIT_NPROC holds (the kernel exempts root from it);
* under rlimits on CPU time, address space (per process), file size, open files and
  processes (:data:`jail.MAX_PROCS`);
* with an empty environment, as ``python -I -S``;
* for at most ``timeout_s`` of wall time: at the timeout, at the end of the snippet's
  process, or once its stdout passes :data:`MAX_OUTPUT` bytes, the whole PID namespace is
  killed before :func:`run_python` returns; stdout is read as it is written, so the caller
  never holds more than :data:`MAX_OUTPUT` bytes of it.

Where the namespaces cannot be made (not root, no CAP_SYS_ADMIN, Linux < 5.12), nothing
runs: every call returns ``None`` and one warning says why, unless the weaker fallback is
allowed (:func:`allow_fallback`, config ``grader.sandbox_fallback``): the snippet then
runs as the caller's user with the rlimits but the process limit, an empty environment, a
temporary working directory and a kill of its process group at the timeout.

The jail itself is ``jail.py``, run as a script once per snippet.
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

#: Bytes of stdout kept; a snippet that prints more fails (and is killed at once).
MAX_OUTPUT = 10_000

_JAIL = str(Path(__file__).with_name("jail.py"))
_fallback_allowed = False
_warned = False


def allow_fallback(enabled: bool) -> None:
    """Let code run with limits only where isolation is unavailable (``grader.sandbox_fallback``)."""
    global _fallback_allowed
    _fallback_allowed = enabled


@functools.cache
def isolation_problem() -> str | None:
    """Why isolated execution does not work here, or ``None`` when it does (tried once per process)."""
    try:
        proc = subprocess.run(_jail_command("isolated", 10.0, 64), input=b"print('ok')", capture_output=True, timeout=10, env={})
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"the jail did not start: {e}"
    if proc.returncode == 0 and proc.stdout == b"ok\n":
        return None
    lines = proc.stderr.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else f"the jail exited with status {proc.returncode}"


def run_python(src: str, timeout_s: float = 2.0, mem_mb: int = 256) -> str | None:
    """Run ``src`` in the sandbox; its stdout, or ``None`` on any failure (see the module docstring)."""
    problem = isolation_problem()
    if problem is not None and not _fallback_allowed:
        _warn_once(
            f"model-written code is not run (graded as a failure): no isolation here ({problem}); "
            "set grader.sandbox_fallback=true to run it with process limits only"
        )
        return None
    # Isolated, the snippet works in a tmpfs of its own; the fallback needs a directory here.
    with contextlib.nullcontext("") if problem is None else tempfile.TemporaryDirectory(prefix="rd-sandbox-") as workdir:
        proc = subprocess.Popen(
            _jail_command("isolated" if problem is None else "fallback", timeout_s, mem_mb, workdir),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={},
            start_new_session=True,
        )
        try:
            out = _collect(proc, src.encode(errors="replace"), time.monotonic() + timeout_s)
        finally:
            _end(proc)
    if out is None or proc.returncode != 0:
        return None
    return out.decode(errors="replace")


def _warn_once(message: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def _jail_command(mode: str, timeout_s: float, mem_mb: int, workdir: str = "") -> list[str]:
    cpu_s = int(timeout_s) + 1
    return [sys.executable, "-I", "-S", _JAIL, mode, str(cpu_s), str(mem_mb << 20), str(os.getpid()), workdir]


def _collect(proc: subprocess.Popen, src: bytes, deadline: float) -> bytes | None:
    """Feed ``src`` to the jail and read stdout until EOF; ``None`` past the deadline or the cap."""
    try:
        proc.stdin.write(src)
        proc.stdin.close()
    except BrokenPipeError:
        return None
    fd = proc.stdout.fileno()
    out = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        out += chunk
        if len(out) > MAX_OUTPUT:
            return None
    try:
        proc.wait(max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        return None
    return bytes(out)


def _end(proc: subprocess.Popen) -> None:
    """Stop the jail and everything it started; returns once the jail is reaped."""
    if proc.poll() is None:
        proc.terminate()  # the jail kills the namespace's init and waits for it
        try:
            proc.wait(1.0)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the fallback's stragglers, or a stuck jail
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
    proc.stdout.close()

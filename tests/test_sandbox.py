"""The sandbox against hostile snippets, for real: each runs as root in real subprocesses
and namespaces, and is shown contained and graded as a failure (the ``code`` grader's
answer is what the snippet prints only if its attack worked)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from read_distill.config import ConfigError, load_config
from read_distill.graders import GRADERS
from read_distill.graders.jail import MAX_PROCS
from read_distill.graders.sandbox import MAX_OUTPUT, isolation_problem, run_python

ESCAPED = "escaped"
#: How late past its timeout a snippet may be stopped (start-up, kill and reaping).
TIMEOUT_SLACK_S = 0.5
REPO = Path(__file__).resolve().parents[1]

needs_isolation = pytest.mark.skipif(isolation_problem() is not None, reason=f"no isolation here: {isolation_problem()}")
pytestmark = needs_isolation


def graded(snippet: str) -> float:
    """The code grader's score of ``snippet`` against the answer ESCAPED."""
    return GRADERS["code"](ESCAPED, snippet)


def processes_with(marker: str) -> list[int]:
    """Host pids whose command line contains ``marker``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:
            pass
    return found


@pytest.fixture
def open_dir():
    """A directory the snippet can see and anyone may write to (mode 0777), outside /tmp."""
    d = Path(tempfile.mkdtemp(prefix="rd-sandbox-test-", dir="/var/tmp"))
    d.chmod(0o777)
    yield d
    shutil.rmtree(d)


def test_benign_snippet_gives_its_stdout():
    assert run_python("print(6 * 7)") == "42\n"
    assert GRADERS["code"]("42", "6 * 7") == 1.0
    assert GRADERS["code"]("7", "x = 3\nprint(x + 4)") == 1.0
    assert run_python("import sys; sys.exit(3)") is None


def test_shell_and_writes_stay_inside_tmp(open_dir):
    target = open_dir / "written"
    attack = f"import os\nassert os.system('touch {target}') == 0\nprint('{ESCAPED}')"
    assert graded(attack) == 0.0
    assert graded(f"open('{target}', 'w').write('x')\nprint('{ESCAPED}')") == 0.0
    assert not target.exists()
    why = run_python(f"import os\nprint(os.path.isdir('{open_dir}'))\ntry:\n    open('{target}', 'w')\nexcept OSError as e:\n    print(e.strerror)")
    assert why == "True\nRead-only file system\n"
    # its own /tmp is writable, and gone afterwards
    assert run_python("open('/tmp/f', 'w').write('x'); import os; print(sorted(os.listdir('/tmp')))") == "['f', 'main.py']\n"


def test_parent_environment_and_processes_are_hidden(monkeypatch):
    secret = f"rd-secret-{uuid.uuid4().hex}"
    monkeypatch.setenv("RD_SANDBOX_SECRET", secret)
    attack = f"""
import os
seen = repr(dict(os.environ))
for pid in filter(str.isdigit, os.listdir('/proc')):
    for name in ('environ', 'cmdline'):
        try:
            seen += open(f'/proc/{{pid}}/{{name}}', 'rb').read().decode(errors='replace')
        except OSError:
            pass
try:
    seen += open(f'/proc/{os.getpid()}/environ', 'rb').read().decode(errors='replace')
except OSError:
    pass
if '{secret}' in seen:
    print('{ESCAPED}')
"""
    assert graded(attack) == 0.0
    seen = run_python("import os\nprint([int(p) for p in os.listdir('/proc') if p.isdigit()])\nprint(os.getppid())\nprint(list(os.environ))")
    pids, ppid, env = seen.splitlines()
    assert os.getpid() not in eval(pids) and ppid == "1"  # its parent is the namespace's init, not us
    assert "RD_SANDBOX_SECRET" not in env


def test_no_network_even_to_loopback():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.2)
        port = server.getsockname()[1]
        attack = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)\nprint('{ESCAPED}')"
        assert graded(attack) == 0.0
        with pytest.raises(TimeoutError):
            server.accept()
    why = run_python(f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=1)\nexcept OSError as e:\n    print(e.strerror)")
    assert why == "Network is unreachable\n"


def test_process_limit_holds_for_root():
    assert os.geteuid() == 0, "the point of this test is root, whom RLIMIT_NPROC alone does not limit"
    bomb = "import os, time\nfor _ in range(100):\n    if os.fork() == 0:\n        time.sleep(5)\n        os._exit(0)\nprint('escaped')"
    assert graded(bomb) == 0.0
    count = "import os, time\nn = 0\ntry:\n    for _ in range(100):\n        if os.fork() == 0:\n            time.sleep(5)\n            os._exit(0)\n        n += 1\nexcept OSError:\n    print(n)"
    assert int(run_python(count)) < MAX_PROCS


def test_memory_limit_holds_for_root():
    assert graded(f"x = bytearray(1 << 30)\nprint('{ESCAPED}')") == 0.0
    assert run_python("try:\n    x = bytearray(1 << 30)\nexcept MemoryError:\n    print('MemoryError')", mem_mb=256) == "MemoryError\n"


def test_grandchild_dies_with_the_sandbox():
    marker = f"{time.time() % 1000:.6f}"  # an argument no other process has
    spawn = f"""
import os, time
if os.fork() == 0:
    os.setsid()
    os.execv('/bin/sleep', ['sleep', '{marker}'])
def running():
    return any(b'{marker}' in open(f'/proc/{{p}}/cmdline', 'rb').read() for p in os.listdir('/proc') if p.isdigit())
for _ in range(50):  # until the grandchild has exec'd sleep
    if running():
        break
    time.sleep(0.02)
print('ready' if running() else 'no grandchild')
"""
    assert run_python(spawn) == "ready\n"
    assert processes_with(marker) == []
    t0 = time.monotonic()
    assert run_python(spawn + "\nwhile True: pass", timeout_s=1.0) is None
    assert time.monotonic() - t0 < 1.0 + TIMEOUT_SLACK_S
    assert processes_with(marker) == []


@pytest.mark.parametrize("snippet", ["while True: pass", "import time; time.sleep(60)", "import os; os.close(1); import time; time.sleep(60)"])
def test_timeout_is_honoured(snippet):
    t0 = time.monotonic()
    assert run_python(snippet, timeout_s=1.0) is None
    assert 1.0 <= time.monotonic() - t0 < 1.0 + TIMEOUT_SLACK_S


def test_output_flood_is_cut_at_the_cap_without_growing_the_parent():
    probe = """
import resource, time
from read_distill.graders.sandbox import run_python
run_python("print(1)")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.monotonic()
outs = [run_python("print('x' * 100_000_000)"), run_python("while True: print('x' * 10_000)", timeout_s=2.0)]
print(outs == [None, None], time.monotonic() - t0, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
"""
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True)
    both_failed, seconds, growth_mb = proc.stdout.split()
    assert both_failed == "True"
    assert float(seconds) < 2.0  # killed at the cap, not at the timeout
    assert float(growth_mb) < 2.0
    assert run_python(f"print('x' * {MAX_OUTPUT - 1})") == "x" * (MAX_OUTPUT - 1) + "\n"


FALLBACK_CHILD = """
import warnings
from read_distill.graders import sandbox
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    refused = [sandbox.run_python("print(1)"), sandbox.run_python("print(2)")]
sandbox.allow_fallback(True)
print(refused, len(caught), repr(sandbox.run_python("print(3)")), repr(sandbox.run_python("while True: pass", timeout_s=0.5)))
print(caught[0].message)
"""


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs util-linux setpriv")
def test_without_isolation_code_is_refused_unless_the_fallback_is_allowed():
    # Root without CAP_SYS_ADMIN (as in an unprivileged container): no namespaces.
    proc = subprocess.run(
        ["setpriv", "--bounding-set=-sys_admin", "--inh-caps=-sys_admin", sys.executable, "-c", FALLBACK_CHILD],
        capture_output=True, text=True, cwd=REPO, check=True,
    )
    results, message = proc.stdout.split("\n", 1)
    assert results == "[None, None] 1 '3\\n' None"
    assert "unshare: Operation not permitted" in message and "grader.sandbox_fallback=true" in message


def test_fallback_is_one_config_field():
    assert load_config(None, ["grader.sandbox_fallback=true"]).grader.sandbox_fallback is True
    assert load_config(None, []).grader.sandbox_fallback is False
    with pytest.raises(ConfigError, match="grader.sandbox_fallback"):
        load_config(None, ["grader.sandbox_fallback=sometimes"])

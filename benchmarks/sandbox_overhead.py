"""Per-call cost of the sandbox: ``run_python("print(1)")`` against the same snippet in a
bare ``python -I -S -c`` subprocess (no isolation), interleaved: wall time (median and
minimum over N calls each) and the CPU time of the processes each call starts (user + system,
mean; unlike wall time it hardly depends on what else the machine runs), measured in this run:

    .venv/bin/python benchmarks/sandbox_overhead.py [--calls 50]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time

from read_distill.graders.sandbox import isolation_problem, run_python


def children_cpu_s() -> float:
    """CPU seconds of this process's reaped descendants so far."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def time_ms(call) -> tuple[float, float]:
    """Wall time and the started processes' CPU time of one ``call()``, in milliseconds."""
    t0, c0 = time.perf_counter(), children_cpu_s()
    call()
    return 1000 * (time.perf_counter() - t0), 1000 * (children_cpu_s() - c0)


def main() -> None:
    """Print the two timings and their difference, the sandbox's overhead per call."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=50)
    args = ap.parse_args()
    problem = isolation_problem()
    if problem is not None:
        sys.exit(f"no isolation here: {problem}")
    calls = {
        "sandbox": lambda: run_python("print(1)"),
        "bare": lambda: subprocess.run([sys.executable, "-I", "-S", "-c", "print(1)"], capture_output=True, check=True),
    }
    times: dict[str, list[float]] = {name: [] for name in calls}
    cpu: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(args.calls):
        for name, call in calls.items():
            wall, used = time_ms(call)
            times[name].append(wall)
            cpu[name].append(used)
    for name, ts in times.items():
        print(f"{name:8s} wall median {statistics.median(ts):6.1f} ms  min {min(ts):6.1f} ms   cpu {statistics.mean(cpu[name]):5.1f} ms   ({args.calls} calls)")
    print(
        f"overhead per call: wall {statistics.median(times['sandbox']) - statistics.median(times['bare']):.1f} ms (median), "
        f"{min(times['sandbox']) - min(times['bare']):.1f} ms (min); cpu {statistics.mean(cpu['sandbox']) - statistics.mean(cpu['bare']):.1f} ms"
    )


if __name__ == "__main__":
    main()

"""Generation through a served teacher: N requests in flight together against one at a time.

Starts ``read-distill serve-teacher`` on the micro-world's shipped teacher (a subprocess on
127.0.0.1), sends the same prompts through the OpenAI backend with ``max_concurrency`` N
and 1, checks that both give the same (greedy) completions, and prints the wall times and
their ratio, measured in this run:

    .venv/bin/python benchmarks/teacher_concurrency.py [--prompts 64] [--concurrency 32] [--max-new-tokens 32]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

from read_distill.backends.openai_api import OpenAITeacher
from read_distill.world import GENERATORS
from read_distill.world.build import shipped_world_dir


def start_server(model_dir: str, port: int) -> subprocess.Popen:
    """``serve-teacher`` on one torch thread, once it answers /health."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "read_distill", "serve-teacher", model_dir, "--port", str(port)],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            return proc
        except OSError:
            if proc.poll() is not None:
                raise SystemExit("serve-teacher exited before it answered") from None
            time.sleep(0.2)


def timed(teacher: OpenAITeacher, prompts: list[str], max_new_tokens: int) -> tuple[float, list[str]]:
    """Wall seconds of one generate call over all prompts, and the texts."""
    start = time.perf_counter()
    gens = teacher.generate(prompts, {"max_new_tokens": max_new_tokens, "temperature": 0.0})
    return time.perf_counter() - start, [g.text for g in gens]


def main() -> None:
    """Measure and print."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prompts", type=int, default=64)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--max-new-tokens", type=int, default=32)
    a = p.parse_args()
    model_dir = str(shipped_world_dir() / "teacher")
    caps = sorted(GENERATORS)
    prompts = [GENERATORS[caps[i % len(caps)]].generate(10_000 + i, "medium").prompt for i in range(a.prompts)]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = start_server(model_dir, port)
    try:
        url = f"http://127.0.0.1:{port}/v1"
        timed(OpenAITeacher(url, model_dir), prompts[:2], a.max_new_tokens)  # warm-up
        together, texts_n = timed(OpenAITeacher(url, model_dir, max_concurrency=a.concurrency), prompts, a.max_new_tokens)
        health = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/health"))
        alone, texts_1 = timed(OpenAITeacher(url, model_dir, max_concurrency=1), prompts, a.max_new_tokens)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"{a.prompts} prompts, max_new_tokens {a.max_new_tokens}, micro-world teacher on 1 CPU thread")
    print(f"  concurrency {a.concurrency:3d}: {together:7.2f} s  ({a.prompts / together:6.1f} prompts/s)")
    print(f"  concurrency   1: {alone:7.2f} s  ({a.prompts / alone:6.1f} prompts/s)")
    print(f"  speed-up {alone / together:.2f}x; same completions: {texts_n == texts_1}; "
          f"server batches so far {health['batches']} for {health['prompts']} prompts")


if __name__ == "__main__":
    main()

"""A served teacher that fails: 500s, 429s with Retry-After and timeouts on a share of
requests. The run completes, retries are bounded, failed calls are never charged, and the
teacher cache makes a resume ask the server for nothing it already answered."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from read_distill.config import Config

pytestmark = pytest.mark.tiny

#: Seconds the stub asks a rate-limited client to wait, and sleeps on a request it lets time out.
RETRY_AFTER_S = 0.3
HANG_S = 2.0


class FlakyTeacher(ThreadingHTTPServer):
    """``/v1/completions`` whose first attempt at a prompt fails by the prompt's hash (a
    quarter each: answered, 500, 429 + Retry-After, no answer before the client's
    timeout); later attempts are answered. ``always_fail`` prompts always get a 500."""

    daemon_threads = True

    def __init__(self, always_fail: str = "") -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.always_fail = always_fail
        self.lock = threading.Lock()
        self.attempts: dict[str, list[float]] = defaultdict(list)
        self.answered: dict[str, list[dict]] = defaultdict(list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def requests(self) -> int:
        with self.lock:
            return sum(len(a) for a in self.attempts.values())


class _Handler(BaseHTTPRequestHandler):
    server: FlakyTeacher

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["prompt"]
        with self.server.lock:
            self.server.attempts[prompt].append(time.monotonic())
            first = len(self.server.attempts[prompt]) == 1
        fault = hashlib.sha256(prompt.encode()).digest()[0] % 4 if first else 0
        if prompt == self.server.always_fail or fault == 1:
            return self._send(500, {"error": {"message": "boom"}})
        if fault == 2:
            return self._send(429, {"error": {"message": "slow down"}}, {"Retry-After": str(RETRY_AFTER_S)})
        if fault == 3:
            time.sleep(HANG_S)  # the client has given up by now; what follows goes nowhere
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": 3, "total_tokens": len(prompt.split()) + 3}
        if fault != 3:
            with self.server.lock:
                self.server.answered[prompt].append(usage)
        self._send(200, {
            "id": "cmpl-1", "object": "text_completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "text": " add(a=1, b=2)", "logprobs": None, "finish_reason": "stop"}], "usage": usage,
        })

    def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            for k, v in {"Content-Type": "application/json", "Content-Length": str(len(data)), **(headers or {})}.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def flaky():
    server = FlakyTeacher(always_fail="never answered")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


MAX_RETRIES = 3


def _config(hf_config, url) -> Config:
    return hf_config(
        run={"name": "flaky", "rounds": 3, "dev_every": 3},
        world={
            "teacher": None, "teacher_url": url, "teacher_model": "stub", "teacher_timeout": 0.5,
            "teacher_max_retries": MAX_RETRIES,
        },
    )


def test_a_run_survives_a_flaky_server_and_a_resume_pays_nothing_twice(hf_config, models, card, flaky, tmp_path, monkeypatch):
    from read_distill.backends.cache import CachedTeacher
    from read_distill.ledger import Ledger
    from read_distill.runner import run

    config, d = _config(hf_config, flaky.url), tmp_path / "run"
    run(config, d, quiet=True, stop_after_round=2)
    # Crash in round 3 right after its first teacher call returned (and was cached).
    generate = CachedTeacher.generate

    def crash_after(self, prompts, sampling):
        generate(self, prompts, sampling)
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(CachedTeacher, "generate", crash_after)
        with pytest.raises(KeyboardInterrupt):
            run(config, d, quiet=True, resume=True)
    run(config, d, quiet=True, resume=True)
    assert (d / "summary.json").exists()

    faults = {p: hashlib.sha256(p.encode()).digest()[0] % 4 for p in flaky.attempts}
    assert set(faults.values()) == {0, 1, 2, 3}, "every kind of fault happened"
    for prompt, times in flaky.attempts.items():
        # One attempt when the first is answered, two when it failed: bounded, and the
        # resume asked for no prompt the server had answered.
        assert len(times) == (1 if faults[prompt] == 0 else 2), prompt
        assert len(flaky.answered[prompt]) == 1, prompt
        if faults[prompt] == 2:
            assert times[1] - times[0] >= RETRY_AFTER_S, "the client waited as Retry-After said"
    # Teacher charges are the usage of answered requests (failed ones report none); an
    # answer the round did not need is never charged, so the ledger holds at most that.
    ledger = Ledger(d / "ledger.jsonl", config.budget.total_tokens)
    charged = sum(e.tokens for e in ledger.entries if e.phase == "teacher_prompt" and not e.cached)
    answered = sum(u["prompt_tokens"] for us in flaky.answered.values() for u in us)
    assert 0 < charged <= answered
    examples = [json.loads(line) for rd in sorted((d / "rounds").iterdir()) for line in (rd / "examples.jsonl").read_text().splitlines()]
    assert all(e["prompt_tokens"] == flaky.answered[e["prompt"]][0]["prompt_tokens"] for e in examples)


def test_retries_are_bounded(flaky):
    import openai

    from read_distill.backends.openai_api import OpenAITeacher

    teacher = OpenAITeacher(flaky.url, "stub", max_retries=2, timeout=5)
    with pytest.raises(openai.InternalServerError):
        teacher.generate(["never answered"], {"max_new_tokens": 4})
    assert len(flaky.attempts["never answered"]) == 3

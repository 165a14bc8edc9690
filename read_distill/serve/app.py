"""The HTTP API of ``read-distill serve-teacher``: the OpenAI endpoints a distillation run uses.

``POST /v1/completions`` (``prompt`` a string or token ids, ``max_tokens``,
``temperature``, ``top_p``, ``n`` = 1, ``stop``, ``logprobs``, ``echo``, ``seed``),
``POST /v1/chat/completions`` (the model's chat template; ``logprobs``/``top_logprobs``),
``GET /v1/models`` and ``GET /health``. Log-probs are the model's own (untempered)
distribution, as vLLM reports them; ``return_tokens_as_token_ids`` (vLLM's extension)
names tokens ``token_id:N``, which is what a run needs to train on them. Other request
fields are ignored. Stop strings cut the decoded completion after generation (the counted
tokens are those up to the one that completed the stop string, as vLLM counts them).

A string prompt is encoded as an in-process teacher encodes it (``train.encode_prompt``):
through the model's chat template, as one user message, where the tokenizer has one (unlike
vLLM's completions endpoint), so a run gets the same completions from this server as from
the loaded model; ``serve-teacher --no-chat-template`` serves raw prompts (a run's
``world.chat_template: false``). Token-id prompts are fed as given.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from read_distill import train
from read_distill.backends.hf import Completion, HFTeacher
from read_distill.serve.batcher import Batcher, Sampling

#: ``max_tokens`` of a chat request that gives none (the API's default is "up to the context").
DEFAULT_CHAT_MAX_TOKENS = 512


class CompletionRequest(BaseModel):
    """The fields of ``/v1/completions`` this server honours."""

    model: str
    prompt: str | list[int]
    max_tokens: int = Field(16, ge=0)
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    n: int = 1
    stop: str | list[str] | None = None
    logprobs: int | None = Field(None, ge=0)
    echo: bool = False
    seed: int = 0
    stream: bool = False
    return_tokens_as_token_ids: bool = False


class ChatRequest(BaseModel):
    """The fields of ``/v1/chat/completions`` this server honours."""

    model: str
    messages: list[dict[str, Any]]
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    n: int = 1
    stop: str | list[str] | None = None
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0)
    seed: int = 0
    stream: bool = False
    return_tokens_as_token_ids: bool = False


def _error(status: int, message: str) -> JSONResponse:
    """An error in the OpenAI API's shape (the client reads ``error.message``)."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


def _cut_at_stop(tokenizer: Any, c: Completion, stop: str | list[str] | None) -> tuple[list[int], str, str]:
    """The kept ids, text and finish reason of ``c`` once ``stop`` strings end it."""
    stops = [stop] if isinstance(stop, str) else [s for s in stop or [] if s]
    for j in range(1, len(c.token_ids) + 1) if stops else ():
        text = tokenizer.decode(c.token_ids[:j], skip_special_tokens=True)
        found = [text.find(s) for s in stops if s in text]
        if found:
            return c.token_ids[:j], text[: min(found)], "stop"
    return c.token_ids, c.text, "stop" if c.stopped else "length"


def _top(dist: dict[int, float], k: int, chosen: int) -> dict[int, float]:
    """The k most likely entries of ``dist`` and the chosen id's (k or k + 1 entries)."""
    best = dict(sorted(dist.items(), key=lambda kv: -kv[1])[:k])
    best.setdefault(chosen, dist[chosen])
    return best


class TeacherServer:
    """The endpoints' logic over one loaded teacher and its batcher."""

    def __init__(self, teacher: HFTeacher) -> None:
        self.teacher = teacher
        self.tokenizer = teacher.tokenizer
        self.batcher = Batcher(teacher)

    def check(self, model: str, n: int, stream: bool) -> None:
        """What every request must satisfy: this model, one choice, no streaming."""
        if model != self.teacher.name:
            raise HTTPException(404, f"model {model!r} does not exist; this server serves {self.teacher.name!r}")
        if n != 1 or stream:
            raise HTTPException(400, "only n=1 without streaming is supported")

    def token(self, token_id: int, as_ids: bool) -> str:
        """A token as the API names it: ``token_id:N`` (vLLM's extension) or its text."""
        return f"token_id:{token_id}" if as_ids else self.tokenizer.decode([token_id])

    async def complete(self, prompt: str | list[int], max_tokens: int, temperature: float, top_p: float,
                       k: int | None, seed: int, stop: str | list[str] | None) -> tuple[list[int], list[int], str, str, list[dict[int, float]] | None]:
        """Prompt ids, kept completion ids, text, finish reason and per-position records."""
        if max_tokens == 0:
            ids = list(prompt) if isinstance(prompt, list) else train.encode_prompt(self.tokenizer, prompt)
            return ids, [], "", "length", [] if k is not None else None
        # Log-probs are recorded with at least one alternative, then cut to what was asked.
        sampling = Sampling(max_tokens, temperature, top_p, 0 if k is None else max(k, 1), seed)
        c = await self.batcher.generate(prompt, sampling)
        ids, text, reason = _cut_at_stop(self.tokenizer, c, stop)
        records = None if c.top_logprobs is None else [_top(d, k or 0, t) for d, t in zip(c.top_logprobs[: len(ids)], ids, strict=True)]
        return c.prompt_ids, ids, text, reason, records

    async def completions(self, req: CompletionRequest) -> dict[str, Any]:
        """``/v1/completions``."""
        self.check(req.model, req.n, req.stream)
        if isinstance(req.prompt, list) and not req.prompt:
            raise HTTPException(400, "prompt: expected a non-empty string or list of token ids")
        prompt_ids, ids, text, reason, records = await self.complete(
            req.prompt, req.max_tokens, req.temperature, req.top_p, req.logprobs, req.seed, req.stop
        )
        tokens, token_lps, tops = list(ids), [], []
        if records is not None:
            token_lps = [r[t] for r, t in zip(records, ids, strict=True)]
            tops = list(records)
        if req.echo:
            prompt_text = req.prompt if isinstance(req.prompt, str) else self.tokenizer.decode(prompt_ids)
            text = prompt_text + text
            tokens = prompt_ids + tokens
            if req.logprobs is not None:
                scored = await self.batcher.score(prompt_ids, req.logprobs)
                token_lps = [None] + [r[t] for r, t in zip(scored, prompt_ids[1:], strict=True)] + token_lps
                tops = [None] + [_top(r, req.logprobs, t) for r, t in zip(scored, prompt_ids[1:], strict=True)] + tops
        logprobs = None
        if req.logprobs is not None:
            name = lambda t: self.token(t, req.return_tokens_as_token_ids)  # noqa: E731
            logprobs = {
                "tokens": [name(t) for t in tokens],
                "token_logprobs": token_lps,
                "top_logprobs": [None if d is None else {name(t): lp for t, lp in d.items()} for d in tops],
            }
        return {
            "id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()), "model": req.model,
            "choices": [{"index": 0, "text": text, "logprobs": logprobs, "finish_reason": reason}],
            "usage": {"prompt_tokens": len(prompt_ids), "completion_tokens": len(ids), "total_tokens": len(prompt_ids) + len(ids)},
        }

    def chat_prompt(self, messages: list[dict[str, Any]]) -> list[int]:
        """The messages through the model's chat template, ready for generation: token ids
        (``train.encode_messages``, which one user message's ``encode_prompt`` also is), so
        they are not encoded again."""
        if not train.uses_chat_template(self.tokenizer):
            raise HTTPException(400, f"{self.teacher.name} has no chat template; use /v1/completions")
        return train.encode_messages(self.tokenizer, messages)

    async def chat(self, req: ChatRequest) -> dict[str, Any]:
        """``/v1/chat/completions``."""
        self.check(req.model, req.n, req.stream)
        k = (req.top_logprobs or 0) if req.logprobs else None
        max_tokens = req.max_completion_tokens or req.max_tokens or DEFAULT_CHAT_MAX_TOKENS
        prompt_ids, ids, text, reason, records = await self.complete(
            self.chat_prompt(req.messages), max_tokens, req.temperature, req.top_p, k, req.seed, req.stop
        )
        logprobs = None
        if records is not None:
            name = lambda t: self.token(t, req.return_tokens_as_token_ids)  # noqa: E731
            logprobs = {"content": [
                {"token": name(t), "logprob": r[t], "bytes": None,
                 "top_logprobs": [{"token": name(a), "logprob": lp, "bytes": None} for a, lp in r.items()]}
                for t, r in zip(ids, records, strict=True)
            ]}
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()), "model": req.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": logprobs, "finish_reason": reason}],
            "usage": {"prompt_tokens": len(prompt_ids), "completion_tokens": len(ids), "total_tokens": len(prompt_ids) + len(ids)},
        }


def make_app(teacher: HFTeacher) -> FastAPI:
    """The FastAPI app serving ``teacher`` under the name ``teacher.name``."""
    server = TeacherServer(teacher)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        worker = asyncio.create_task(server.batcher.run())
        yield
        worker.cancel()

    app = FastAPI(title="read-distill teacher", lifespan=lifespan)
    app.state.server = server

    @app.exception_handler(HTTPException)
    async def _http_error(_request: Request, e: HTTPException) -> JSONResponse:
        return _error(e.status_code, str(e.detail))

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_request: Request, e: RequestValidationError) -> JSONResponse:
        where = "; ".join(f"{'.'.join(str(p) for p in err['loc'][1:])}: {err['msg']}" for err in e.errors())
        return _error(400, where)

    @app.post("/v1/completions")
    async def completions(req: CompletionRequest) -> dict[str, Any]:
        return await server.completions(req)

    @app.post("/v1/chat/completions")
    async def chat(req: ChatRequest) -> dict[str, Any]:
        return await server.chat(req)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": teacher.name, "object": "model", "created": 0, "owned_by": "read-distill"}]}

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "batches": server.batcher.batches, "prompts": server.batcher.prompts}

    return app


def serve(model_dir: str, host: str, port: int, batch_size: int, chat_template: bool = True) -> None:
    """Load the model at ``model_dir`` and serve it (as model ``model_dir``) until interrupted;
    ``chat_template=False`` clears the tokenizer's chat template (string prompts go raw, and
    the chat endpoint refuses requests)."""
    import uvicorn

    teacher = HFTeacher.from_pretrained(model_dir, name=model_dir, batch_size=batch_size, chat_template=chat_template)
    print(f"read-distill: serving {model_dir} as model {model_dir!r} at http://{host}:{port}/v1", flush=True)
    uvicorn.run(make_app(teacher), host=host, port=port, log_level="warning")

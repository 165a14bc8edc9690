"""A teacher behind an OpenAI-compatible endpoint (vLLM, ``read-distill serve-teacher``, the
OpenAI API); implements ``Teacher``.

A round's prompts are in flight together: one ``openai.AsyncOpenAI`` client per call,
at most ``max_concurrency`` requests open at once. Retries are the client's own: on
connection errors, timeouts, 408, 409, 429 and 5xx it retries up to ``max_retries``
times with exponential backoff (0.5 s doubling, at most 8 s, less up to 25 % jitter), or
after the server's ``Retry-After`` when it sends one (up to 60 s); then the call fails.
A failed request returns no ``Generation``, so nothing of it reaches the ledger. Token
counts are the server's ``usage``.

Top-k log-probs (``sampling["top_logprobs"] > 0``, for the ``logit`` signal) need token
ids that the student shares: they are asked with ``return_tokens_as_token_ids`` (vLLM's
extension, honoured by ``serve-teacher``), and a server that answers with token text is
an error. vLLM refuses more than ``--max-logprobs`` (default 20) per position; the OpenAI
API caps ``logprobs`` at 5 on completions and ``top_logprobs`` at 20 on chat.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from read_distill.types import Generation

#: The key sent to servers that need none (the client refuses to start without one).
NO_KEY = "none"


def token_id(token: str) -> int:
    """The id in a ``token_id:N`` token name; a plain token text is an error."""
    if not token.startswith("token_id:"):
        raise ValueError(
            f"the served teacher named a token {token!r}, not its id: top-k log-probs need a server that honours "
            "return_tokens_as_token_ids (vLLM, read-distill serve-teacher)"
        )
    return int(token[len("token_id:"):])


def record(chosen: str, chosen_logprob: float, top: dict[str, float]) -> dict[int, float]:
    """One position's ``{token_id: logprob}``: the top-k and the chosen token (as ``HFTeacher`` records them)."""
    out = {token_id(t): lp for t, lp in top.items()}
    out.setdefault(token_id(chosen), chosen_logprob)
    return out


class OpenAITeacher:
    """A served teacher; ``name`` (endpoint, API and model) keys the teacher-output cache.

    ``api`` is ``completions`` (the prompt as given) or ``chat`` (the prompt as one user
    message, through the server's chat template). ``sampling`` keys as for ``HFTeacher``:
    ``max_new_tokens``, ``temperature`` (0 = greedy), ``top_p``, ``top_logprobs``, ``seed``.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api: str = "completions",
        api_key: str | None = None,
        max_concurrency: int = 16,
        timeout: float = 600.0,
        max_retries: int = 5,
        seed: int = 0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api = api
        self.name = f"openai-{api}:{self.base_url}:{model}"
        self._api_key = api_key or NO_KEY
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.seed = seed

    @classmethod
    def from_spec(cls, spec: Any, seed: int = 0) -> OpenAITeacher:
        """From a ``TeacherSpec`` with a URL; the key is read from ``spec.api_key_env`` here
        and kept only in memory (never in the config, run dir or logs)."""
        key = os.environ.get(spec.api_key_env) if spec.api_key_env else None
        return cls(
            spec.url, spec.model, api=spec.api, api_key=key, max_concurrency=spec.concurrency, timeout=spec.timeout,
            max_retries=spec.max_retries, seed=seed,
        )

    def generate(self, prompts: list[str], sampling: dict[str, Any]) -> list[Generation]:
        """Complete ``prompts``, all in flight together (up to ``max_concurrency``)."""
        one = self._chat if self.api == "chat" else self._complete
        return asyncio.run(self._gather(one, prompts, sampling))

    def score(self, sequences: list[list[int]], start: list[int], top_logprobs: int) -> list[list[dict[int, float]]]:
        """The teacher's top-k log-probs (and the given token's) at each position from
        ``start[i]`` (>= 1: nothing predicts position 0) on of each token sequence: the
        completions endpoint's ``echo``.

        The caller tokenises (``train.encode_prompt`` + ``train.encode_completion``), so the
        positions are the ones the student trains on. ``max_tokens`` is 1, not 0: vLLM
        refuses 0; the one generated token is dropped. The OpenAI API itself refuses
        ``echo`` with ``logprobs`` on its current models.
        """
        if any(s < 1 for s in start):
            raise ValueError("score: positions start at 1; nothing predicts a sequence's first token")
        jobs = list(zip(sequences, start, strict=True))
        return asyncio.run(self._gather(self._score, jobs, {"top_logprobs": top_logprobs}))

    async def _gather(self, one: Any, items: list[Any], sampling: dict[str, Any]) -> list[Any]:
        from openai import AsyncOpenAI

        gate = asyncio.Semaphore(self.max_concurrency)
        async with AsyncOpenAI(
            base_url=self.base_url, api_key=self._api_key, timeout=self.timeout, max_retries=self.max_retries
        ) as client:

            async def bounded(item: Any) -> Any:
                async with gate:
                    return await one(client, item, sampling)

            return await asyncio.gather(*(bounded(item) for item in items))

    def _common(self, sampling: dict[str, Any]) -> dict[str, Any]:
        temperature = float(sampling.get("temperature", 0.0))
        return {
            "model": self.model,
            "max_tokens": int(sampling["max_new_tokens"]),
            "temperature": temperature,
            "top_p": float(sampling.get("top_p", 1.0)),
            "seed": int(sampling.get("seed", self.seed)),
        }

    async def _complete(self, client: Any, prompt: str, sampling: dict[str, Any]) -> Generation:
        k = int(sampling.get("top_logprobs", 0))
        extra = {"logprobs": k, "extra_body": {"return_tokens_as_token_ids": True}} if k else {}
        response = await client.completions.create(prompt=prompt, **self._common(sampling), **extra)
        choice = response.choices[0]
        top = None
        if k:
            lp = choice.logprobs
            top = [record(t, c, d) for t, c, d in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs, strict=True)]
        return _generation(choice.text, response.usage, top)

    async def _chat(self, client: Any, prompt: str, sampling: dict[str, Any]) -> Generation:
        k = int(sampling.get("top_logprobs", 0))
        extra = {"logprobs": True, "top_logprobs": k, "extra_body": {"return_tokens_as_token_ids": True}} if k else {}
        response = await client.chat.completions.create(
            messages=[{"role": "user", "content": prompt}], **self._common(sampling), **extra
        )
        choice = response.choices[0]
        top = None
        if k:
            top = [
                record(p.token, p.logprob, {a.token: a.logprob for a in p.top_logprobs}) for p in choice.logprobs.content
            ]
        return _generation(choice.message.content or "", response.usage, top)

    async def _score(self, client: Any, job: tuple[list[int], int], sampling: dict[str, Any]) -> list[dict[int, float]]:
        ids, start = job
        response = await client.completions.create(
            model=self.model, prompt=ids, echo=True, max_tokens=1, temperature=0.0,
            logprobs=int(sampling["top_logprobs"]), extra_body={"return_tokens_as_token_ids": True},
        )
        lp = response.choices[0].logprobs
        # The last entry is the generated token, which nobody asked for.
        return [record(lp.tokens[i], lp.token_logprobs[i], lp.top_logprobs[i]) for i in range(start, len(ids))]


def _generation(text: str, usage: Any, top: list[dict[int, float]] | None) -> Generation:
    if usage is None:
        raise ValueError("the served teacher reported no token usage; the ledger needs it")
    return Generation(text=text, prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens, top_logprobs=top)

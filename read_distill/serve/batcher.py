"""Concurrent requests in, batches of the one engine out.

Each request waits on a future; a single worker task takes whatever is queued, groups it
by sampling parameters (one batched call takes one set) and runs each group through
``generate_tokens`` or ``prompt_logprobs`` in a worker thread, so the event loop keeps
accepting requests while the model runs, and they form the next batch.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from read_distill.backends.hf import Completion, HFTeacher, generate_tokens, prompt_logprobs

#: Requests taken into one round of batches at most; each group is still cut into
#: ``HFTeacher.batch_size`` prompts per forward pass by the engine.
MAX_COLLECT = 256
#: How long the worker waits after the first request for others sent at the same time.
COLLECT_WAIT_S = 0.002


@dataclass(frozen=True)
class Sampling:
    """What one batched generation call shares (the group key)."""

    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    top_logprobs: int = 0
    seed: int = 0


@dataclass
class _Job:
    key: Sampling | int  # Sampling: generate; int: score with that many top log-probs
    prompt: str | list[int]
    future: asyncio.Future = field(repr=False)


class Batcher:
    """Serialises all model work of a server onto one worker, in batches."""

    def __init__(self, teacher: HFTeacher) -> None:
        self.teacher = teacher
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        #: Batched calls made and prompts they held (the server's /health reports them).
        self.batches = 0
        self.prompts = 0

    async def generate(self, prompt: str | list[int], sampling: Sampling) -> Completion:
        """The completion of one prompt, generated in a batch with concurrent requests."""
        return await self._submit(sampling, prompt)

    async def score(self, prompt_ids: list[int], top_logprobs: int) -> list[dict[int, float]]:
        """Per position t >= 1 of ``prompt_ids``, the top-k log-probs and token t's own."""
        return await self._submit(top_logprobs, prompt_ids)

    async def _submit(self, key: Sampling | int, prompt: str | list[int]) -> Any:
        job = _Job(key, prompt, asyncio.get_running_loop().create_future())
        await self._queue.put(job)
        return await job.future

    async def run(self) -> None:
        """The worker loop; runs until cancelled."""
        while True:
            jobs = [await self._queue.get()]
            await asyncio.sleep(COLLECT_WAIT_S)
            while not self._queue.empty() and len(jobs) < MAX_COLLECT:
                jobs.append(self._queue.get_nowait())
            groups: dict[Sampling | int, list[_Job]] = defaultdict(list)
            for job in jobs:
                groups[job.key].append(job)
            for key, group in groups.items():
                try:
                    results = await asyncio.to_thread(self._work, key, [j.prompt for j in group])
                except Exception as e:  # the requests fail, the server goes on
                    for j in group:
                        if not j.future.done():
                            j.future.set_exception(e)
                    continue
                for j, r in zip(group, results, strict=True):
                    if not j.future.done():  # a client that went away cancelled its future
                        j.future.set_result(r)

    def _work(self, key: Sampling | int, prompts: list[Any]) -> list[Any]:
        t = self.teacher
        self.batches += 1
        self.prompts += len(prompts)
        if isinstance(key, Sampling):
            return generate_tokens(
                t.model, t.tokenizer, prompts, max_new_tokens=key.max_new_tokens, temperature=key.temperature,
                top_p=key.top_p, top_logprobs=key.top_logprobs, batch_size=t.batch_size, seed=key.seed,
            )
        return prompt_logprobs(t.model, t.tokenizer, prompts, top_logprobs=key, batch_size=t.batch_size)

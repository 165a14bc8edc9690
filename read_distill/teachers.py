"""The run's teachers: a default and, per capability, another teacher (``world.teachers``).

Multi-teacher distillation routes each prompt to its domain's teacher; here the
allocation decides how much each capability, and so each teacher, is asked for. Every
teacher is any backend (in-process transformers, vLLM's engine, an OpenAI-compatible
server); two capabilities that name the same teacher share one instance, so it is loaded
or connected to once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from read_distill.backends.base import Teacher
from read_distill.config import Config, TeacherSpec


class Teachers:
    """Which teacher answers each capability's prompts: ``of(capability)``."""

    def __init__(self, default: Teacher, overrides: Mapping[str, Teacher] | None = None) -> None:
        self.default = default
        self.overrides = dict(overrides or {})

    def of(self, capability: str) -> Teacher:
        """The teacher of ``capability``'s prompts."""
        return self.overrides.get(capability, self.default)

    def distinct(self) -> list[Teacher]:
        """Each teacher once, the default first."""
        out: dict[int, Teacher] = {id(self.default): self.default}
        for t in self.overrides.values():
            out.setdefault(id(t), t)
        return list(out.values())

    def map(self, wrap: Callable[[Teacher], Teacher]) -> Teachers:
        """The same routing with every teacher wrapped once (a shared instance stays shared)."""
        wrapped = {id(t): wrap(t) for t in self.distinct()}
        return Teachers(wrapped[id(self.default)], {c: wrapped[id(t)] for c, t in self.overrides.items()})

    def routes(self) -> dict[str, str]:
        """``default`` and each overridden capability -> its teacher's name."""
        return {"default": self.default.name, **{c: t.name for c, t in self.overrides.items()}}


def load_teacher(spec: TeacherSpec, config: Config, name: str | None, dtype: str, device: str) -> Teacher:
    """One teacher of ``spec``: the server at ``spec.url`` (named by endpoint, API and
    model), else the model at ``spec.path`` through transformers or vLLM, loaded once
    (named ``name``: it keys the teacher-output cache, so it must change with the weights;
    None: the backend's default)."""
    if spec.url is not None:
        from read_distill.backends.openai_api import OpenAITeacher

        return OpenAITeacher.from_spec(spec, seed=config.run.seed)
    if spec.engine == "vllm":
        from read_distill.backends.vllm import VLLMTeacher

        return VLLMTeacher.from_pretrained(
            spec.path, name=name, tensor_parallel_size=spec.tensor_parallel_size,
            gpu_memory_utilization=spec.gpu_memory_utilization, dtype=dtype, max_logprobs=max(20, config.generation.top_logprobs),
            seed=config.run.seed, chat_template=config.world.chat_template,
        )
    from read_distill.backends.hf import HFTeacher

    return HFTeacher.from_pretrained(
        spec.path, name=name, dtype=dtype, device=device, batch_size=config.generation.batch_size, seed=config.run.seed,
        chat_template=config.world.chat_template,
    )


def load_teachers(config: Config, default_dir: str | Path | None, default_name: str, dtype: str, device: str) -> Teachers:
    """The run's teachers from ``world.teacher_specs()``; ``default_dir`` and
    ``default_name`` are the world's own teacher, used where the default gives no path or
    URL (the micro-world's). Capabilities whose specs are equal share one teacher."""
    loaded: dict[str, Teacher] = {}

    def one(spec: TeacherSpec) -> Teacher:
        key = spec.model_dump_json()
        if key not in loaded:
            own = spec.path is None and spec.url is None
            path = default_dir if own else spec.path
            # vLLM's own default name carries its version: its kernels change the outputs.
            name = default_name if own else f"hf:{spec.path}" if spec.engine == "hf" else None
            loaded[key] = load_teacher(spec.model_copy(update={"path": str(path) if path is not None else None}), config, name, dtype, device)
        return loaded[key]

    specs = config.world.teacher_specs()
    default = one(specs.pop("default"))
    return Teachers(default, {c: one(spec) for c, spec in specs.items()})

"""The round loop across processes (``accelerate launch`` or ``torchrun``, N ranks).

Every rank runs the whole loop in lockstep. Rank 0 is the controller: it alone calls the
teacher, writes the run directory (config, ledger, rounds, checkpoints, report, tracker)
and prints; the other ranks receive what it decides (the allocation, the teacher's
outputs) and keep the same in-memory state, so every rank charges the same global
tokens to its ledger copy. Training is data-parallel through accelerate (each rank takes
a strided share of every optimizer batch, DDP averages the gradients; or FSDP2 shards the
student's weights and AdamW across ranks), and the student's generation and scoring for
probes and evaluation are split across ranks and gathered (a sharded student gathers its
weights whole for them, see ``train.TrainState.full_weights``).
One process (no launcher) is the special case where every function here is the
identity. The process group is accelerate's; nothing here is a distributed system of
its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def size() -> int:
    """Number of processes in the launch (``WORLD_SIZE``; 1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def index() -> int:
    """This process's rank (``RANK``; 0 without a launcher)."""
    return int(os.environ.get("RANK", "0"))


def is_controller() -> bool:
    """Whether this process is rank 0, the one that calls the teacher and writes files."""
    return index() == 0


def fsdp_requested() -> bool:
    """Whether the launch asks for a sharded student (``accelerate launch`` with FSDP)."""
    return size() > 1 and os.environ.get("ACCELERATE_USE_FSDP", "").lower() in ("1", "true")


def shards_on(cpu: bool) -> bool:
    """Whether accelerate shards a student with FSDP on this device: on accelerators only
    (accelerate 1.15 reads ``ACCELERATE_USE_FSDP`` there and trains plain data-parallel on
    the CPU whatever the launch asks)."""
    return not cpu


def start(device: str) -> None:
    """Join the launch's process group before the first collective: gloo where the run's
    device (``world.device``) is the CPU, NCCL on GPUs; a no-op in one process.

    Refused first, in one line: FSDP1 (the loop gathers a sharded student's weights with
    FSDP2's ``unshard``; ``fsdp_version: 2`` as in configs/accelerate/fsdp.yaml) and
    DeepSpeed, whose engine owns the backward, the optimizer step and the optimizer's
    checkpoint: untested here (not installed), so a resume could not be shown exact.
    """
    if size() > 1:
        import torch
        from accelerate import PartialState

        from read_distill.config import ConfigError

        if fsdp_requested() and os.environ.get("FSDP_VERSION", "1") != "2":
            raise ConfigError("accelerate launch: FSDP1 is not supported (the student generates between rounds through FSDP2's unshard); set fsdp_version: 2, e.g. --config_file configs/accelerate/fsdp.yaml")
        if os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() in ("1", "true"):
            raise ConfigError("accelerate launch: DeepSpeed is not supported yet (untested: its engine owns the optimizer and its checkpoint); use configs/accelerate/fsdp.yaml or ddp.yaml")
        cpu = device == "cpu" or not torch.cuda.is_available()
        if fsdp_requested() and not shards_on(cpu):
            # Said before the run directory is touched, not after round 0's probes.
            raise ConfigError("accelerate launch: FSDP was asked for, but accelerate shards on GPUs only and would train "
                              "plain data-parallel on the CPU; launch with configs/accelerate/ddp.yaml there")
        PartialState(cpu=cpu)


def share(value: T) -> T:
    """The controller's ``value``, on every rank."""
    if size() == 1:
        return value
    from accelerate.utils import broadcast_object_list

    box = [value if is_controller() else None]
    broadcast_object_list(box, from_process=0)
    return box[0]


def gather(value: T) -> list[T]:
    """Every rank's ``value``, in rank order (``[value]`` in one process)."""
    if size() == 1:
        return [value]
    from accelerate.utils import gather_object

    return gather_object([value])


def split_map(fn: Callable[[list[Any]], list[T]], items: list[Any]) -> list[T]:
    """``fn(items)``, with each rank computing it on a strided share of ``items`` and every
    rank receiving all results in the order of ``items``."""
    if size() == 1:
        return fn(items)
    from accelerate.utils import gather_object

    mine = list(range(index(), len(items), size()))
    local = fn([items[i] for i in mine]) if mine else []
    out: list[Any] = [None] * len(items)
    for i, value in gather_object(list(zip(mine, local, strict=True))):
        out[i] = value
    return out


def shared(teacher: Any) -> Any:
    """``teacher`` as every rank sees it: itself in one process, else a :class:`SharedTeacher`."""
    return SharedTeacher(teacher) if size() > 1 else teacher


class SharedTeacher:
    """A teacher whose outputs come from the controller's call: on the other ranks
    ``generate`` returns what the controller's teacher generated (so the teacher, and a
    served one's cost, is paid once); everything else is the wrapped teacher's."""

    def __init__(self, teacher: Any) -> None:
        self.teacher = teacher

    def generate(self, prompts: list[str], sampling: dict[str, Any]) -> list[Any]:
        return share(self.teacher.generate(prompts, sampling) if is_controller() else None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.teacher, name)

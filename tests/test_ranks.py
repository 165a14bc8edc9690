"""One process is the identity case of the multi-process loop; launches the loop cannot run
are refused in one line (the multi-process runs themselves, DDP and FSDP:
tests/test_read_tiny.py)."""

import pytest

from read_distill import ranks
from read_distill.config import ConfigError


def test_one_process_computes_everything_itself():
    assert (ranks.size(), ranks.index(), ranks.is_controller()) == (1, 0, True)
    assert ranks.share({"w": [0.5, 0.5]}) == {"w": [0.5, 0.5]}
    assert ranks.split_map(lambda xs: [x * x for x in xs], [1, 2, 3]) == [1, 4, 9]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ACCELERATE_USE_FSDP": "true"}, "FSDP1 is not supported"),
        ({"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "1"}, "FSDP1 is not supported"),
        ({"ACCELERATE_USE_DEEPSPEED": "true"}, "DeepSpeed is not supported yet"),
        # FSDP2 asked for on the CPU, where accelerate would train plain data-parallel:
        # refused before the run directory is touched.
        ({"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2"}, "accelerate shards on GPUs only"),
    ],
)
def test_an_unsupported_launch_is_refused_before_joining(monkeypatch, env, message):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("FSDP_VERSION", raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=message) as e:
        ranks.start("cpu")
    assert len(str(e.value).splitlines()) == 1


def test_fsdp_that_accelerate_would_run_as_ddp_is_refused(monkeypatch):
    # accelerate selects FSDP on accelerators only; on the CPU it prepares plain data
    # parallelism, which must not pass for the sharded student the launch asked for.
    import torch

    from read_distill.config import TrainConfig
    from read_distill.train import TrainState

    monkeypatch.setattr(ranks, "fsdp_requested", lambda: True)
    with pytest.raises(ConfigError, match="FSDP was asked for but accelerate prepared") as e:
        TrainState(torch.nn.Linear(2, 2), TrainConfig(), cpu=True)
    assert len(str(e.value).splitlines()) == 1

"""One process is the identity case of the multi-process loop; a sharded launch is refused
in one line (the multi-process run itself: tests/test_read_tiny.py)."""

import pytest

from read_distill import ranks
from read_distill.config import ConfigError


def test_one_process_computes_everything_itself():
    assert (ranks.size(), ranks.index(), ranks.is_controller()) == (1, 0, True)
    assert ranks.share({"w": [0.5, 0.5]}) == {"w": [0.5, 0.5]}
    assert ranks.split_map(lambda xs: [x * x for x in xs], [1, 2, 3]) == [1, 4, 9]


@pytest.mark.parametrize(("var", "name"), [("ACCELERATE_USE_FSDP", "FSDP"), ("ACCELERATE_USE_DEEPSPEED", "DeepSpeed")])
def test_a_sharded_launch_is_refused_before_joining(monkeypatch, var, name):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv(var, "true")
    with pytest.raises(ConfigError, match=f"{name} is not supported yet") as e:
        ranks.start("cpu")
    assert len(str(e.value).splitlines()) == 1

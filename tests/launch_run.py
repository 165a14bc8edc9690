"""A run under a multi-process launch, for tests/test_read_tiny.py:
``torchrun --nproc_per_node N tests/launch_run.py RUN_DIR STOP_AFTER|- resume|fresh OVERRIDE...``.

With ``READ_DISTILL_TEST_FSDP_ON_CPU=1`` (and accelerate's FSDP variables) the student is
sharded with FSDP2 on the CPU: accelerate (1.15) selects FSDP for accelerator devices only
and otherwise falls back to DDP, although torch's FSDP2 runs on the CPU with gloo. The
switch below sets accelerate's state as it does on GPUs, so the run takes accelerate's
FSDP2 path from ``prepare`` on, as under ``accelerate launch`` with an FSDP config.
"""

import os
import sys

from read_distill.config import load_config
from read_distill.runner import run

if os.environ.get("READ_DISTILL_TEST_FSDP_ON_CPU") == "1":
    from accelerate.state import AcceleratorState
    from accelerate.utils import DistributedType

    accelerate_init = AcceleratorState.__init__

    def fsdp_on_cpu(self, *args, fsdp_plugin=None, **kwargs):
        accelerate_init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
        # Every later AcceleratorState() copies PartialState's MULTI_CPU back: flip each time.
        plugin = fsdp_plugin or self.__dict__.get("fsdp_plugin")
        if self.distributed_type == DistributedType.MULTI_CPU and plugin is not None:
            self.distributed_type = DistributedType.FSDP
            self.fsdp_plugin = plugin

    AcceleratorState.__init__ = fsdp_on_cpu
    # And read-distill's own check, which refuses FSDP where accelerate would not shard.
    from read_distill import ranks

    ranks.shards_on = lambda cpu: True

run_dir, stop, mode, *overrides = sys.argv[1:]
run(load_config(None, overrides), run_dir, quiet=True, resume=mode == "resume", stop_after_round=None if stop == "-" else int(stop))

"""Experiment tracking: the run's series mirrored to TensorBoard or Weights & Biases.

``run.report_to`` names the trackers (default none). Per round: the allocation, the
profile with its 95 % interval bounds, the reward's parts, the ledger's spend, the mean
training loss, the dev utility where measured and the policy's numeric terms
(``policy.info``: for ``read`` the chosen candidate's mu and sigma and kappa); per
optimizer step: the training loss and the learning rate. Rounds are logged once
committed, so a resumed run logs each round once.

Both stay offline: TensorBoard writes event files under ``<run_dir>/tensorboard``;
wandb writes under ``<run_dir>/wandb`` in offline mode unless ``WANDB_MODE`` says
otherwise (``wandb sync`` uploads an offline run later). The run dir's JSON files stay the
record; the trackers are views of it.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
from pathlib import Path
from typing import Any

from read_distill.config import Config, ConfigError
from read_distill.ledger import Ledger
from read_distill.types import Profile, TrainStats


def check_trackers(names: tuple[str, ...]) -> None:
    """ConfigError naming the extra to install for the first tracker whose package is missing."""
    for name in names:
        if importlib.util.find_spec(name) is None:
            raise ConfigError(f"run.report_to: {name} is not installed; pip install 'read-distill[{name}]'")


class TensorBoard:
    """Event files under ``<run_dir>/tensorboard`` (torch's SummaryWriter)."""

    def __init__(self, run_dir: Path, config: Config) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(run_dir / "tensorboard"))

    def log(self, values: dict[str, float], axis: str, step: int) -> None:
        """Each value at ``step`` (TensorBoard keeps one step axis per tag)."""
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandB:
    """A wandb run under ``<run_dir>/wandb``, offline unless ``WANDB_MODE`` says otherwise.

    Its id is kept in ``<run_dir>/wandb/run_id``, so a resumed run continues the same wandb
    run; round and step series each get their own step axis (``define_metric``).
    """

    def __init__(self, run_dir: Path, config: Config) -> None:
        import wandb

        id_file = run_dir / "wandb" / "run_id"
        if not id_file.exists():
            id_file.parent.mkdir(parents=True, exist_ok=True)
            id_file.write_text(secrets.token_hex(8))
        self.run = wandb.init(
            dir=str(run_dir), id=id_file.read_text().strip(), resume="allow", name=config.run.name,
            mode=os.environ.get("WANDB_MODE", "offline"), config=config.model_dump(mode="json"),
        )
        self.run.define_metric("round/*", step_metric="round")
        self.run.define_metric("train/*", step_metric="step")

    def log(self, values: dict[str, float], axis: str, step: int) -> None:
        """``values`` with ``step`` as their ``axis`` (``round`` or ``step``)."""
        self.run.log({**values, axis: step})

    def close(self) -> None:
        import wandb

        self.run.finish()
        # finish returns before wandb's service has written the offline run; teardown waits
        # for it, so the run dir is complete when the run returns (a next init restarts it).
        wandb.teardown()


TRACKERS = {"tensorboard": TensorBoard, "wandb": WandB}


class Tracker:
    """The trackers of ``run.report_to``, opened on the first value logged; none logs nothing."""

    def __init__(self, run_dir: Path, config: Config) -> None:
        self.run_dir, self.config = run_dir, config
        self.open: list[Any] | None = None

    def _log(self, values: dict[str, float], axis: str, step: int) -> None:
        if self.open is None:
            self.open = [TRACKERS[name](self.run_dir, self.config) for name in self.config.run.report_to]
        for tracker in self.open:
            tracker.log(values, axis, step)

    def log_round(
        self,
        t: int,
        allocation: dict[str, float],
        profile: Profile,
        reward: dict[str, Any],
        ledger: Ledger,
        policy_info: dict[str, Any],
        stats: TrainStats,
    ) -> None:
        """Round ``t``'s series (``reward`` as ``reward.json`` holds it), then its optimizer steps."""
        if not self.config.run.report_to:
            return
        values = {f"round/allocation/{c}": w for c, w in allocation.items()}
        values |= {f"round/profile/{c}": s for c, s in profile.scores.items()}
        for c, (low, high) in profile.intervals.items():
            values |= {f"round/profile_low/{c}": low, f"round/profile_high/{c}": high}
        values |= {f"round/reward/{k}": reward[k] for k in ("reward", "gain", "spillover", "cost_penalty")}
        values |= {"round/ledger/spent_round": reward["spent_tokens"], "round/ledger/spent": ledger.spent, "round/ledger/remaining": ledger.remaining}
        values["round/loss"] = stats.mean_loss
        if reward["dev_utility"] is not None:
            values["round/dev_utility"] = reward["dev_utility"]
        # Numbers only (flags as 0/1): lists and notes stay in allocation.json.
        values |= {f"round/policy/{k}": float(v) for k, v in policy_info.items() if isinstance(v, int | float)}
        self._log(values, "round", t)
        for step, loss, lr in stats.steps:
            self._log({"train/loss": loss, "train/lr": lr}, "step", step)

    def close(self) -> None:
        """Flush and close the trackers opened."""
        for tracker in self.open or []:
            tracker.close()
        self.open = None

"""The run directory: whether it may be used as asked, and one writer at a time.

A run or resume holds an OS lock (``fcntl.flock``) on ``run.lock`` inside the run
directory for as long as it works there. The kernel releases the lock when the holder
exits, however it exits, so a lock file left by a dead process never blocks a resume; a
second writer is refused with the holder's pid, which the holder writes into the file.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from read_distill.config import Config, ConfigError, dump_config

#: The lock file inside a run directory.
LOCK_FILE = "run.lock"


class RunDirError(ConfigError):
    """The run directory cannot be used as asked (exists without --resume, is foreign, or is in use)."""


def check_run_dir(run_dir: Path, config: Config, resume: bool, overwrite: bool) -> None:
    """Refuse a run directory that cannot be used as asked; reads only, creates nothing."""
    if resume and overwrite:
        raise RunDirError("--resume and --overwrite exclude each other: resume continues the run, overwrite starts it afresh")
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: not a directory; expected a run directory (or a path to create one at)")
    # A lock file alone is what a run that died before writing anything leaves behind, with
    # at most the temporary file of its first write (config.yaml, cut off by the kill).
    used = run_dir.is_dir() and any(p.name != LOCK_FILE and not _temporary(p) for p in run_dir.iterdir())
    has_config = (run_dir / "config.yaml").exists()
    if overwrite and used and not has_config:
        raise RunDirError(f"{run_dir}: not a run directory (no config.yaml); --overwrite only replaces run directories")
    if used and not resume and not overwrite:
        raise RunDirError(
            f"{run_dir}: run directory exists; pass --resume to continue it, --overwrite to replace it, or choose another --run-dir"
        )
    if resume and not has_config:
        raise RunDirError(f"{run_dir}: nothing to resume (no config.yaml)")
    if resume and (field := config_difference(run_dir / "config.yaml", config)) is not None:
        raise RunDirError(f"{run_dir}/config.yaml: {field} differs from the config given; resume with the same config")


def config_difference(path: Path, config: Config) -> str | None:
    """The first dotted field at which the config a run started with (``path``) differs
    from ``config``; None when they are the same: the same text, or the same values once
    read by this version (a run started before a field existed has no line for it, and
    that field's default is what it ran with)."""
    text = path.read_text()
    if text == dump_config(config):
        return None
    try:
        saved = Config.model_validate(yaml.safe_load(text))
    except (ValueError, yaml.YAMLError):  # pydantic's ValidationError is a ValueError
        return "the saved config (unreadable by this version)"
    return _first_difference(saved.model_dump(mode="json"), config.model_dump(mode="json"))


def _first_difference(saved: Any, given: Any, prefix: str = "") -> str | None:
    if isinstance(saved, dict) and isinstance(given, dict):
        for key in list(saved) + [k for k in given if k not in saved]:
            field = f"{prefix}.{key}" if prefix else str(key)
            if key not in saved or key not in given:
                return field
            if (found := _first_difference(saved[key], given[key], field)) is not None:
                return found
        return None
    return None if saved == given else f"{prefix} ({saved!r} there, {given!r} given)"


def _temporary(path: Path) -> bool:
    """A temporary file ``store.write_text`` leaves when killed between writing and renaming."""
    return path.is_file() and path.name.startswith(".") and path.name.endswith(".tmp")


def clear_run_dir(run_dir: Path) -> None:
    """Remove everything in ``run_dir`` but its lock file (which the caller holds)."""
    for p in run_dir.iterdir():
        if p.name == LOCK_FILE:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


@contextmanager
def hold_run_dir(run_dir: Path) -> Iterator[None]:
    """Create ``run_dir`` if needed and hold its lock for the block.

    RunDirError, naming the holder's pid, if another process holds it.
    """
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise RunDirError(f"{run_dir}: cannot create the run directory or its lock: {e.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            # Empty only in the instant between the holder's lock and its write.
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            raise RunDirError(
                f"{run_dir}: in use by process {holder} (another run or resume); wait for it to end or stop it, then try again"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the only descriptor releases the lock

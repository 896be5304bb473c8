"""Checkpoints: a run's whole state in one file, to continue it bit for bit later.

The file is ``torch.save`` of plain types and tensors only (the pending
commands are stored as their ``KEY=VALUE`` text), so ``load_checkpoint`` reads
it with ``torch.load(weights_only=True)``: opening a checkpoint runs no code
from it.
"""
from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Optional

import torch

from ..commands import CommandError, Scheduled, parse_command
from ..config import ConfigError, RunConfig
from ..session.store import Session
from .trainer import Trainer

FORMAT = "gradsim-checkpoint/1"


class CheckpointError(OSError):
    """A checkpoint that cannot be written or read; the message names the file."""


def _plain_state(trainer: Trainer) -> dict[str, Any]:
    state = trainer.state()
    state["schedule"] = {int(step): [cmd.text() for cmd in cmds] for step, cmds in state["schedule"].items()}
    return state


def checkpoint_dict(trainer: Trainer) -> dict[str, Any]:
    """What a checkpoint file holds (only tensors and plain types)."""
    s = trainer.session
    return {
        "format": FORMAT,
        "config": trainer.config.to_dict(),
        "state": _plain_state(trainer),
        "events": [ev.to_dict() for ev in s.events],
        "steps_run": int(s.steps_run),
    }


def save_checkpoint(trainer: Trainer, path: str | Path, overwrite: bool = False) -> Path:
    """Write ``trainer``'s checkpoint to ``path`` atomically (a temp file, then os.replace)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise CheckpointError(f"checkpoint {path} already exists; choose another name or allow overwriting")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a folder; give a file name")
    data = checkpoint_dict(trainer)
    parent = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise CheckpointError(f"cannot write checkpoint {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(data, f)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise CheckpointError(f"cannot write checkpoint {path}: {exc.strerror or exc}") from None
        raise
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict in ``path``; CheckpointError for a missing, corrupt or foreign file."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} is not a file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile, AttributeError, ImportError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint {path} is corrupt or not a gradsim checkpoint ({first[:200]})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        tag = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f"{path} is not a gradsim checkpoint (format {tag!r}; expected {FORMAT!r})")
    missing = [k for k in ("config", "state", "events", "steps_run") if k not in data]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(missing)}: corrupt")
    return data


def trainer_from_checkpoint(data: dict[str, Any], steps: Optional[int] = None, where: str = "checkpoint") -> Trainer:
    """A Trainer in the checkpoint's state (its events copied), to run on to ``steps`` in all."""
    try:
        cfg = RunConfig.from_dict(data["config"], where=f"{where} config")
        at = int(data["state"]["step_index"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{where} is corrupt: {exc}") from None
    if steps is not None:
        if steps < at:
            raise ConfigError(f"--steps {steps}: the checkpoint is already at step {at}; allowed {at} or more", field="steps")
        cfg = cfg.with_changes(steps=steps)
    try:
        state = dict(data["state"])
        state["schedule"] = {int(step): [parse_command(t) for t in texts] for step, texts in state["schedule"].items()}
        session = Session(cfg.n_layers, cfg.to_dict(), cfg.max_memory_mb)
        trainer = Trainer(cfg, session=session)
        trainer.load_state(state)
    except (KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{where} is corrupt: {type(exc).__name__} {exc}") from None
    except (ValueError, CommandError) as exc:
        raise CheckpointError(f"{where} cannot be loaded: {exc}") from None
    # The session holds the run's events so far (not the "start" a new Trainer adds).
    session.events.clear()
    session.diverged_at = None
    for ev in data["events"]:
        session.add_event(int(ev["step"]), str(ev["kind"]), str(ev["value"]))
    session.steps_run = int(data["steps_run"])
    return trainer


def scheduled_of(data: dict[str, Any]) -> list[Scheduled]:
    """The checkpoint's pending commands (not yet applied)."""
    return [Scheduled(int(step), parse_command(t)) for step, texts in data["state"]["schedule"].items() for t in texts]

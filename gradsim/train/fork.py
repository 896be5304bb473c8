"""Fork a run: a second Trainer that continues from the exact state of the first.

Why: "batch norm helps" is only convincing from one starting point. A fork
copies everything the future of a run depends on (weights and batch-norm
buffers, optimizer state such as momentum or Adam moments, the batch order and
position in the epoch, both random generators, pending scheduled commands,
the live settings and the recorded history), so two branches stepped without
any change stay bit-identical, and a toggle on one branch is the only cause
of any difference after it.

State is copied through ``state_dict``/``load_state_dict`` and generator
``get_state``/``set_state`` (never by sharing tensors or reaching into how the
parameters are stored), and the live structure (activation, batch norm, ...)
is rebuilt by replaying the run's own recorded commands, so a new kind of
command forks without a change here.
"""
from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..commands import command_from_event
from ..session.store import Session
from .trainer import Trainer


def copy_session(session: Session) -> Session:
    """An independent copy of a session's rows, events and bookkeeping."""
    out = Session.from_arrays(
        session.steps, session.scalars, session.layers, session.has_stats, copy.deepcopy(session.config),
        max_memory_mb=session.max_memory_mb, record_every=session.record_every,
    )
    out.capacity = max(out.capacity, session.capacity)
    for ev in session.events:
        out.add_event(ev.step, ev.kind, ev.value)
    out.steps_run = session.steps_run
    out.diverged_at = session.diverged_at
    out.meta = copy.deepcopy(session.meta)
    return out


def _copy_optimizer_state(source: Any, target: Any) -> None:
    """Momentum buffers, Adam moments and step counts: copied, never shared between branches."""
    if hasattr(source, "state_dict") and hasattr(target, "load_state_dict"):  # a torch.optim optimizer
        # load_state_dict keeps tensors of the right dtype as they are (shared): copy them first.
        target.load_state_dict(copy.deepcopy(source.state_dict()))
    else:  # GradSim's flat optimizers: state per parameter kind, flat buffers and counters
        target.state = copy.deepcopy(source.state)


def fork_trainer(source: Trainer, note: Optional[str] = None) -> Trainer:
    """A new Trainer in exactly ``source``'s state, with a copy of its session.

    ``note`` (optional) is recorded as a ``note`` event at the fork step in the
    new branch's session only (annotations never change a run).
    """
    branch = Trainer(source.config)
    # The live structure: replay what the run changed (activation, batch norm, optimizer...).
    for ev in source.session.events:
        cmd = command_from_event(ev.kind, ev.value)
        if cmd is not None:
            cmd.apply_to(branch)
    branch.optimizer_name = source.optimizer_name
    branch.clip_mode = source.clip_mode
    branch.clip_threshold = source.clip_threshold
    # Weights and buffers (batch-norm running statistics) are copied into the branch's own tensors.
    branch.net.load_state_dict(source.net.state_dict())
    branch.net.train(source.net.training)
    _copy_optimizer_state(source.optimizer, branch.optimizer)
    branch.set_lr(source.lr)
    branch.init_gen.set_state(source.init_gen.get_state())
    branch.batch_gen.set_state(source.batch_gen.get_state())
    branch._perm = source._perm.clone()  # the batch order is part of the state
    branch._pos = source._pos
    branch._pred_due = source._pred_due
    branch._schedule.clear()
    for step, commands in source._schedule.items():
        branch._schedule[step] = list(commands)  # commands are frozen dataclasses
    branch.step_index = source.step_index
    branch.diverged_at = source.diverged_at
    branch.elapsed_s = source.elapsed_s
    branch.session = copy_session(source.session)
    if note:
        branch.session.add_event(source.step_index, "note", note)
    return branch


# ------------------------------------------------------------------ export of two branches
COMPARISON_HEADER = (
    "step", "loss_A", "loss_B", "accuracy_A", "accuracy_B", "grad_norm_total_A", "grad_norm_total_B",
    "layer1_act_grad_norm_A", "layer1_act_grad_norm_B",
)


def comparison_csv(a: Session, b: Session) -> str:
    """One row per step recorded in both branches: loss, accuracy, total gradient norm and the
    input-side layer's ||dL/dz|| (where vanishing shows first), A next to B."""
    common, ia, ib = np.intersect1d(a.steps, b.steps, return_indices=True)
    cols = []
    for name in ("loss", "accuracy", "grad_norm_total"):
        cols += [a.column(name)[ia], b.column(name)[ib]]
    cols += [a.layer_metric("act_grad_norm")[ia, 0], b.layer_metric("act_grad_norm")[ib, 0]]
    out = io.StringIO()
    out.write(",".join(COMPARISON_HEADER) + "\n")
    for k, step in enumerate(common.tolist()):
        out.write(f"{step}," + ",".join(repr(float(c[k])) for c in cols) + "\n")
    return out.getvalue()


def export_comparison(a: Session, b: Session, path: str | Path, zip_file: bool = False) -> Path:
    """Write a folder holding both branches as sessions (``branch-A``, ``branch-B``; .zip files
    when ``zip_file``) and ``comparison.csv``. Each file is written atomically."""
    from ..session.io import ExportError, export_session, write_atomic

    path = Path(path)
    if path.suffix.lower() == ".zip":
        path = path.with_suffix("")
        zip_file = True
    try:
        if path.exists() and not path.is_dir():
            raise ExportError(f"cannot export the branches to {str(path)!r}: it exists and is not a folder")
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot export the branches to {str(path)!r}: {exc.strerror or exc}") from None
    ext = ".zip" if zip_file else ""
    export_session(a, path / f"branch-A{ext}", zip_file=zip_file)
    export_session(b, path / f"branch-B{ext}", zip_file=zip_file)
    try:
        write_atomic(path / "comparison.csv", comparison_csv(a, b))
    except OSError as exc:
        raise ExportError(f"cannot write {str(path / 'comparison.csv')!r}: {exc.strerror or exc}") from None
    return path

"""Fork a run: a second Trainer that continues from the exact state of the first.

Why: "batch norm helps" is only convincing from one starting point. A fork
copies everything the future of a run depends on (weights and batch-norm
buffers, optimizer state such as momentum or Adam moments, the batch order and
position in the epoch, both random generators, pending scheduled commands,
the live settings and the recorded history), so two branches stepped without
any change stay bit-identical, and a toggle on one branch is the only cause
of any difference after it.

State moves through ``Trainer.state()``/``load_state()``, which copy every
tensor (never share one), so the branches are independent objects.
"""
from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Optional

import numpy as np

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


def fork_trainer(source: Trainer, note: Optional[str] = None) -> Trainer:
    """A new Trainer in exactly ``source``'s state, with a copy of its session.

    ``note`` (optional) is recorded as a ``note`` event at the fork step in the
    new branch's session only (annotations never change a run).
    """
    branch = Trainer(source.config)
    # Everything the future depends on, as copies: structure, weights and buffers,
    # optimizer state, lr and clipping, batch order, generators, pending commands.
    branch.load_state(source.state())
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

"""Replay a submitted session from its session.json and compare it with the submitted CSVs.

A run is a pure function of (config, seed, schedule of commands by step)
(docs/architecture.md#messages), so the grader does not have to trust the numbers a
student hands in: it re-runs the config and events headless and compares
every recorded value. Objectives are then evaluated on the replay, so an
edited CSV can only ever lose marks.

Tolerance (why these numbers)
-----------------------------
* Same build (same gradsim, torch and numpy versions and the same platform
  string, as recorded in session.json ``versions``): bitwise identity,
  ``SAME_BUILD_RTOL`` = 0. Both sides train single-threaded on the same
  seeded generators, and the export writes float64 scalars with ``repr`` and
  float32 layer metrics with 9 significant digits, which round-trip exactly;
  measured: every value of every shipped exercise replays bit for bit
  (benchmarks/replay_drift.py, column "replay"). So any edit, of any size, is
  caught.
* Another build or machine: ``CROSS_BUILD_RTOL`` = 1e-3 relative. Another
  torch or CPU may sum in another order and change a result in its last bit;
  we model that by moving every initial weight one float32 ulp. Measured over
  whole runs (benchmarks/replay_drift.py, table in benchmarks/RESULTS.md): the
  sigmoid and batch-norm exercises drift by at most 5.4e-5, so 1e-3 accepts
  them with a ~18x margin and still catches any edit of 0.1 % or more. The
  ReLU exercises (relu-he-fix, exploding, clipping, init-comparison) are
  chaotic at their learning rates: the same 1-ulp nudge grows to order 1
  (relu-he-fix and clipping pass 1e-2 within 8-30 steps), so no tolerance can
  both accept an honest replay on another build and catch a 1 % edit. Those
  must be graded on the build they were recorded with (the lab's installer);
  the mismatch message names the builds that differ so the instructor knows
  why. ``gradsim check --tolerance`` overrides the choice.
* Exact in both cases: the step list, the number of layers, which rows carry
  activation statistics (an empty cell stays empty), which values are
  non-finite, the commands and where they were applied, the divergence step.
* Not compared: ``elapsed_s`` is wall-clock time, different on every run;
  the grader never uses a submitted elapsed_s (objectives read the replay).
"""
from __future__ import annotations

import math
import platform
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import numpy as np

from ..events import ANNOTATION_KINDS, COMMAND_KINDS, DIVERGED, TRAINER_ANNOTATIONS
from ..metrics import LAYER_METRICS, STEP_METRICS
from ..session.store import Session

SAME_BUILD_RTOL = 0.0
CROSS_BUILD_RTOL = 1e-3
#: Columns that differ on every honest replay and are never compared.
UNCOMPARED = ("elapsed_s",)
#: Columns a session written before them lacks (all NaN when loaded): compared only where present.
LATER_COLUMNS = ("test_accuracy",)
#: Recorded events that the replay regenerates (commands, divergence) and so must agree;
#: the annotations from the window (pause, note) a replay cannot know and carries over as submitted.
ANNOTATIONS = tuple(k for k in ANNOTATION_KINDS if k not in TRAINER_ANNOTATIONS)


class ReplayError(ValueError):
    """The submitted session.json cannot be replayed (bad config, bad event)."""


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    same_build: bool
    note: str  # one line for the grade: which builds were compared and at which tolerance


@dataclass(frozen=True)
class Mismatch:
    """The first place where the submitted data and the replay disagree."""

    what: str  # a metric name, or 'steps', 'layers', 'event', 'steps_run', 'diverged_at'
    submitted: str
    replayed: str
    step: Optional[int] = None
    layer: Optional[int] = None

    def __str__(self) -> str:
        where = []
        if self.step is not None:
            where.append(f"step {self.step}")
        if self.layer is not None:
            where.append(f"layer {self.layer}")
        head = ", ".join(where + [self.what])
        return f"{head}: submitted {self.submitted}, replayed {self.replayed}"


# ------------------------------------------------------------------ builds
def current_versions() -> dict[str, str]:
    import torch

    from .. import __version__

    return {"gradsim": __version__, "torch": torch.__version__, "numpy": np.__version__, "platform": platform.platform()}


def build_key(versions: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """What decides the numbers bit for bit: library versions and the platform (OS, CPU architecture)."""
    return (str(versions.get("gradsim")), str(versions.get("torch")), str(versions.get("numpy")), str(versions.get("platform")))


def tolerance_for(recorded: Any, current: Optional[Mapping[str, Any]] = None, override: Optional[float] = None) -> Tolerance:
    current = current or current_versions()
    same = isinstance(recorded, Mapping) and build_key(recorded) == build_key(current)
    rtol = override if override is not None else (SAME_BUILD_RTOL if same else CROSS_BUILD_RTOL)
    if same:
        note = f"replayed on the same build (torch {current.get('torch')}), " + ("bitwise" if rtol == 0 else f"relative tolerance {rtol:g}")
    else:
        rec = recorded if isinstance(recorded, Mapping) else {}
        diffs = [f"{k} {rec.get(k, '?')} -> {current.get(k)}" for k, a, b in zip(("gradsim", "torch", "numpy", "platform"), build_key(rec), build_key(current)) if a != b]
        note = f"recorded on another build ({'; '.join(diffs) or 'versions not recorded'}), relative tolerance {rtol:g}"
    return Tolerance(rtol, same, note)


# ------------------------------------------------------------------ replay
def replay(meta: Any, where: str = "session.json") -> Session:
    """Re-run an exported session.json's config and events headless; return the new Session.

    Runs exactly the submitted ``steps_run`` steps (a run stopped early in the
    window replays to the same point), single-threaded like the window's worker.
    """
    import torch

    from ..commands import CommandError
    from ..config import ConfigError
    from ..teaching.presets import session_run
    from ..train.trainer import Trainer

    try:
        cfg, schedule = session_run(meta, where)
    except ConfigError as exc:
        raise ReplayError(str(exc)) from None
    steps_run = meta.get("steps_run", cfg.steps)
    if isinstance(steps_run, bool) or not isinstance(steps_run, int) or not 0 <= steps_run <= cfg.steps:
        raise ReplayError(f"{where}: steps_run = {steps_run!r}, expected a whole number 0-{cfg.steps}")
    torch.set_num_threads(1)  # the window's worker and `gradsim run` train on one thread too
    try:
        trainer = Trainer(cfg, schedule, label="replay")
    except CommandError as exc:
        raise ReplayError(f"{where}: {exc}") from None
    trainer.run(steps=steps_run)
    for e in meta.get("events", []):
        if isinstance(e, dict) and e.get("kind") in ANNOTATIONS and isinstance(e.get("step"), int):
            trainer.session.add_event(e["step"], e["kind"], str(e.get("value", "")))
    trainer.session.events.sort(key=lambda ev: ev.step)  # stable: same-step order is kept
    trainer.session.meta["versions"] = current_versions()
    return trainer.session


# ------------------------------------------------------------------ compare
def _close(a: np.ndarray, b: np.ndarray, rtol: float) -> np.ndarray:
    """Element-wise agreement: equal (nan with nan, inf with same inf), or both finite within rtol."""
    a = a.astype(np.float64, copy=False)
    b = b.astype(np.float64, copy=False)
    with np.errstate(invalid="ignore", over="ignore"):
        ok = (a == b) | (np.isnan(a) & np.isnan(b))
        if rtol > 0:
            fin = np.isfinite(a) & np.isfinite(b)
            ok |= fin & (np.abs(a - b) <= rtol * np.maximum(np.abs(a), np.abs(b)))
    return ok


def _show(x: float, single: bool) -> str:
    if not math.isfinite(x):
        return "empty" if math.isnan(x) else str(x)
    return "%.9g" % x if single else repr(float(x))


def _events_key(s: Session) -> list[tuple[int, str, str]]:
    # The divergence event's value quotes the non-finite number: its step and kind are what count.
    return [(e.step, e.kind, e.value if e.kind != DIVERGED else "") for e in s.events if e.kind in COMMAND_KINDS or e.kind == DIVERGED]


def first_mismatch(submitted: Session, replayed: Session, rtol: float) -> Optional[Mismatch]:
    """The earliest disagreement (by step, then step metrics, then layer and metric), or None.

    Generic over the metric columns (gradsim.metrics): a new column is compared
    as soon as it exists; an empty cell (not recorded) must be empty on both sides.
    """
    nu = submitted.n_layers
    # A newer version may append units (a transformer's per-head rows): an older file's
    # units are then the replay's first ones, and only they are compared.
    if nu != replayed.n_layers and not (nu < replayed.n_layers and replayed.units[:nu] == submitted.units):
        return Mismatch("layers", f"{submitted.n_layers} layers", f"{replayed.n_layers} layers")
    s_steps, r_steps = submitted.steps, replayed.steps
    n = min(len(s_steps), len(r_steps))
    diff = np.flatnonzero(s_steps[:n] != r_steps[:n])
    limit = int(diff[0]) if diff.size else n  # rows before this are the same steps: compare their values first
    absent = {m for m in LATER_COLUMNS if np.isnan(submitted.column(m)).all()}
    cols = [i for i, m in enumerate(STEP_METRICS) if m not in UNCOMPARED and m not in absent]
    bad_s = ~_close(submitted.scalars[:limit, cols], replayed.scalars[:limit, cols], rtol)
    bad_l = ~_close(submitted.layers[:limit], replayed.layers[:limit, :nu], rtol)
    rows = np.flatnonzero(bad_s.any(axis=1) | bad_l.any(axis=(1, 2)))
    if rows.size:
        i = int(rows[0])
        step = int(s_steps[i])
        if bad_s[i].any():
            c = cols[int(np.flatnonzero(bad_s[i])[0])]
            return Mismatch(STEP_METRICS[c], _show(submitted.scalars[i, c], False), _show(replayed.scalars[i, c], False), step)
        j, m = (int(v) for v in np.argwhere(bad_l[i])[0])
        return Mismatch(LAYER_METRICS[m], _show(submitted.layers[i, j, m], True), _show(replayed.layers[i, j, m], True), step, j + 1)
    if limit < len(s_steps) or limit < len(r_steps):
        sub = f"step {int(s_steps[limit])}" if limit < len(s_steps) else f"no row after step {int(s_steps[-1]) if len(s_steps) else '-'}"
        rep = f"step {int(r_steps[limit])}" if limit < len(r_steps) else f"no row after step {int(r_steps[-1]) if len(r_steps) else '-'}"
        return Mismatch(f"recorded row {limit + 1}", sub, rep)
    se, re_ = _events_key(submitted), _events_key(replayed)
    for k in range(max(len(se), len(re_))):
        a = se[k] if k < len(se) else None
        b = re_[k] if k < len(re_) else None
        if a != b:
            fmt = lambda e: "none" if e is None else f"{e[1]}{'=' + e[2] if e[2] else ''} at step {e[0]}"
            return Mismatch("event", fmt(a), fmt(b), (a or b)[0])  # type: ignore[index]
    if submitted.steps_run != replayed.steps_run:
        return Mismatch("steps_run", str(submitted.steps_run), str(replayed.steps_run))
    if submitted.diverged_at != replayed.diverged_at:
        return Mismatch("diverged_at", str(submitted.diverged_at), str(replayed.diverged_at))
    return None

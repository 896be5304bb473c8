"""Every message between the window and the engine, both ways: frozen dataclasses, no Qt, no torch.

The window (ui/worker.py) imports only this module of the service: what it
sends, what it gets back. The engine's loop (loop.py) serves the requests and
emits the reports; in a child process (child.py) both travel pickled through
one duplex pipe, in the fallback they pass through a queue and a callback
inside the window's process. docs/architecture.md#the-service describes the
conversation: the life cycle, and how a toggle and a fork travel.

Requests (window -> engine) are the control messages below and the live
changes of gradsim/commands.py (a ``Command`` is sent as it is; for one branch
of a forked run it is wrapped in a ``BranchCommand``). Everything queued is
handled between two steps, in the order sent.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

import numpy as np

from ..commands import Command, Scheduled
from ..config import RunConfig
from ..models.family import Unit
from ..session.store import Rows

#: At most this many snapshots a second (the plots redraw at ~30 Hz anyway).
SNAPSHOT_HZ = 30.0


# ------------------------------------------------------------------ window -> engine
@dataclass(frozen=True)
class ResetRun:
    """Drop the current run; with a config, build a fresh Trainer (paused at step 0)."""

    config: Optional[RunConfig]
    schedule: tuple[Scheduled, ...] = ()
    label: str = ""
    generation: int = 0


@dataclass(frozen=True)
class StartRun:
    """Step continuously until paused or finished."""


@dataclass(frozen=True)
class PauseRun:
    """Stop stepping after the current step."""


@dataclass(frozen=True)
class StepRun:
    """Run ``n`` single steps, then stay paused."""

    n: int = 1


@dataclass(frozen=True)
class ForkRun:
    """Make branch B from the exact state of the (paused) run; from then on both branches step."""


@dataclass(frozen=True)
class BranchCommand:
    """A Command for one branch of a forked run (0 = A, 1 = B)."""

    branch: int
    command: Command


@dataclass(frozen=True)
class ExportRequest:
    """Write the engine's full session with the engine's exporter, between steps."""

    path: str
    zip_file: bool = False


class NoRunError(RuntimeError):
    """A task asked for the run's session or trainer, and there is no run."""


@dataclass(frozen=True)
class Task:
    """Run ``fn(session)`` (or ``fn(trainer)``) in the engine between steps.

    Only the id travels back with the result; the callbacks stay with the
    owner, keyed by it. Through a pipe ``fn`` is pickled: a module-level
    function or a ``functools.partial`` of one. ``fn`` must not keep what it is given.
    """

    id: int
    fn: Callable[[Any], Any]
    on_trainer: bool = False  # pass the Trainer (its live network) instead of its session


@dataclass(frozen=True)
class PreviewRequest:
    """Build a data set and send back 2-D points to preview (off the GUI thread: digits reads a file)."""

    dataset: str
    n_samples: int
    noise: float
    seed: int
    test_fraction: float


@dataclass(frozen=True)
class ReplicationRequest:
    """Run a paper replication (gradsim.replications) into ``out``; a live run is paused
    while it runs, since this is the one place that trains."""

    name: str
    out: str
    mode: str = "default"


@dataclass(frozen=True)
class CancelReplication:
    """Stop a running replication at its next step (what is written so far stays)."""


@dataclass(frozen=True)
class SetSnapshotRate:
    """At most ``hz`` snapshots a second (the window lowers it when plots redraw rarely)."""

    hz: float


@dataclass(frozen=True)
class SetPace:
    """A pace students can follow: at most ``steps_per_s`` steps a second while running (None: full
    speed); pause once step ``pause_at`` is done (None: never); pause when a branch diverges;
    pause after the first step a toggle changed (``pause_on_toggle``: a scheduled one, or one sent
    while running), so the moment of the change can be looked at."""

    steps_per_s: Optional[float] = None
    pause_at: Optional[int] = None
    pause_on_divergence: bool = False
    pause_on_toggle: bool = False

    def __post_init__(self) -> None:
        if self.steps_per_s is not None and not self.steps_per_s > 0:
            raise ValueError(f"steps_per_s={self.steps_per_s!r}: a positive number, or None for full speed")
        if self.pause_at is not None and self.pause_at < 1:
            raise ValueError(f"pause_at={self.pause_at!r}: a step of 1 or more, or None for no pause")


@dataclass(frozen=True)
class WarmUp:
    """Import torch and the trainer now, so the first Run does not wait for them."""


@dataclass(frozen=True)
class Shutdown:
    """End the loop (the owner is closing)."""



# ------------------------------------------------------------------ engine -> window
@dataclass(frozen=True)
class ReplicationResult:
    """What the dialog shows when a replication ends (plain data)."""

    name: str
    reproduced: bool
    verdict: str
    out: str
    figure: str
    csv: str
    sessions: tuple[str, ...]


@dataclass(frozen=True)
class Readouts:
    """Numbers about the run that are no column of its rows, for the window's readouts.

    ``spectral_radius``: the largest |eigenvalue| of the top recurrent layer's W_hh
    (its first gate block for LSTM/GRU), None for a family without one;
    ``clipped_fraction``: the share of the recorded steps whose gradient was clipped.
    ``step``: the step index they describe (the weights before that step trains).
    """

    step: int
    clipped_fraction: float
    spectral_radius: Optional[float] = None


@dataclass
class Snapshot:
    """What the window needs after some steps: new rows (copies) and the run's state."""

    generation: int
    rows: Rows
    step: int  # steps done so far (the next step's index)
    total_steps: int
    steps_per_s: float
    loss: float
    accuracy: float
    running: bool
    finished: bool
    diverged_at: Optional[int]
    failed: bool = False
    #: Which branch the rows belong to: 0 = the run (A), 1 = its fork (B).
    branch: int = 0
    #: The run's units (what each row index is), on a run's first snapshot only.
    units: Optional[tuple[Unit, ...]] = None
    #: Readouts of the run (a few times a second at most; None in between).
    readouts: Optional[Readouts] = None


@dataclass
class Preview:
    """2-D points of a data set to preview (the first two principal components past two inputs)."""

    dataset: str
    points: np.ndarray  # (n, 2) float
    labels: np.ndarray  # (n,) int
    n_inputs: int
    note: str = ""


@dataclass(frozen=True)
class Ready:
    """The engine has imported torch and takes work (the child's first report)."""

    pid: int


@dataclass(frozen=True)
class RunDropped:
    """The run was dropped or replaced (a ResetRun was handled): nothing steps now."""

    generation: int


@dataclass(frozen=True)
class Diverged:
    """The run ended because its loss or gradients became non-finite at ``step``."""

    step: int


@dataclass(frozen=True)
class PacePaused:
    """SetPace's pause at a step or on divergence stopped the run after ``step`` (``why`` says which)."""

    generation: int
    step: int
    why: str


@dataclass(frozen=True)
class Finished:
    """Every branch of the run has finished (its steps are done, or it diverged)."""


@dataclass(frozen=True)
class Failed:
    """An unexpected error: the run stops, its session stays, the loop lives on."""

    message: str


@dataclass(frozen=True)
class CommandFailed:
    """A Command the run refused (its text says why); the run is as it was."""

    message: str


@dataclass(frozen=True)
class ExportFinished:
    path: str


@dataclass(frozen=True)
class ExportFailed:
    """The export did not happen (the message says why); the session is unchanged."""

    message: str


@dataclass(frozen=True)
class Forked:
    """Branch B exists from ``step`` (its first snapshot follows, with the history it copied)."""

    generation: int
    step: int


@dataclass(frozen=True)
class ForkFailed:
    """The engine refused a Fork (the window counted the run as forked when it sent it)."""

    generation: int
    message: str


@dataclass(frozen=True)
class ReplicationProgress:
    done: int
    total: int
    text: str


@dataclass(frozen=True)
class ReplicationFailed:
    """A replication ended without a result: an error, or ``"cancelled"``."""

    message: str


@dataclass(frozen=True)
class TaskDone:
    """A Task ended: ``ok`` and its result, or not ``ok`` and the exception.

    Through a pipe the payload travels as pickled bytes (child.py makes sure it
    can be read back), so that one odd result never breaks the pipe.
    """

    id: int
    ok: bool
    payload: Any


#: What the window may send (a Command for the run, or a control message).
Request = Union[
    Command, ResetRun, StartRun, PauseRun, StepRun, ForkRun, BranchCommand, ExportRequest, Task,
    PreviewRequest, ReplicationRequest, CancelReplication, SetSnapshotRate, SetPace, WarmUp, Shutdown,
]
#: What the engine may send back.
Report = Union[
    Ready, RunDropped, Snapshot, Diverged, PacePaused, Finished, Failed, CommandFailed, ExportFinished, ExportFailed,
    Preview, Forked, ForkFailed, ReplicationProgress, ReplicationResult, ReplicationFailed, TaskDone,
]

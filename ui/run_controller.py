"""The run model: one object owns the run's state, its mirror session and the worker.

Why a model apart from the window (napari's ``ViewerModel``, observed by its
views): the run state used to be a string set from nine places in the window.
Here it is one Enum changed in one method, and every view (status bar, docks,
actions, plots, teaching layer) listens to this object's signals instead of
being told by the window what to do.

Why a *mirror* Session: plots must read a store that only the GUI thread
writes. The worker's snapshots (copies of new rows) are merged into the mirror
here; the redraw pacer (``ui/redraw.py``) draws from it, so redraw speed never
slows training and the trainer's own session is never read from this thread.

The ``generation`` counter tells a snapshot of a run that was reset (still in
the signal queue) from one of the current run: each start and reset bumps it.
"""
from __future__ import annotations

import enum
import logging
import math
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from gradsim.commands import Command, Scheduled
from gradsim.config import ConfigError, RunConfig
from gradsim.models.family import check_units
from gradsim.session.store import Session

from .worker import BranchCommand, ForkRun, Snapshot, TrainingWorker, WarmUp

log = logging.getLogger(__name__)

#: The progress numbers change at most this often while training (repaints cost GUI time).
STATUS_PERIOD_S = 0.25


class RunState(enum.StrEnum):
    """What the run is doing. A StrEnum, so ``state == "running"`` still reads naturally."""

    IDLE = "idle"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    FAILED = "failed"
    #: A saved session is shown, read-only (File > Open session); no run exists.
    VIEWING = "viewing"

    @property
    def live(self) -> bool:
        """A run exists and accepts commands (running or paused)."""
        return self in (RunState.RUNNING, RunState.PAUSED)

    @property
    def has_run(self) -> bool:
        """There is a run's session to export (a run was started and not reset; an opened file is not one)."""
        return self not in (RunState.IDLE, RunState.VIEWING)


@dataclass(frozen=True)
class Progress:
    """The numbers a status bar shows."""

    step: int = 0
    total: Optional[int] = None
    steps_per_s: float = 0.0
    loss: float = math.nan
    accuracy: float = math.nan
    #: (branch A's step, branch B's step) while the run is forked; the other fields then follow
    #: the branch that still trains (B after A diverged, say).
    branch_steps: Optional[tuple[int, int]] = None


def _branch_done(snap: Snapshot) -> bool:
    """This snapshot's branch trains no more (all its steps done, diverged or failed)."""
    return snap.step >= snap.total_steps or snap.diverged_at is not None or snap.failed


@dataclass
class HiddenRun:
    """The run a saved session was opened over: kept (paused) until the viewer closes."""

    generation: int
    state: RunState
    mirror: Session
    branch_mirror: Optional[Session]
    config: Optional[RunConfig]
    progress: Progress
    engine_lost: bool


def session_prefix(session: Session, n: int) -> Session:
    """A new Session holding the first ``n`` rows of ``session`` and the events up to its last step.

    What the run looked like then: scrubbing a saved session draws this, so
    every plot (curves, heatmap, depth profile, bars, markers) agrees on the step.
    """
    n = max(0, min(int(n), len(session)))
    out = Session.from_arrays(
        session.steps[:n], session.scalars[:n], session.layers[:n], session.has_stats[:n],
        session.config, max_memory_mb=session.max_memory_mb, record_every=session.record_every,
    )
    last = int(session.steps[n - 1]) if n else -1
    for ev in session.events:
        if ev.step <= last:
            out.add_event(ev.step, ev.kind, ev.value)
    out.steps_run = last + 1
    out.diverged_at = session.diverged_at if session.diverged_at is not None and session.diverged_at <= last else None
    out.meta = dict(session.meta)
    return out


class RunController(QObject):
    """Owns the run: state, mirror session, generation, the worker; start/pause/step/reset."""

    #: The state changed (a RunState).
    state_changed = Signal(object)
    #: A new run started from this config (views reset and sync to it).
    run_started = Signal(object)
    #: The run was discarded (views clear).
    run_reset = Signal()
    #: A saved session is shown read-only (the Session); views reset and draw it.
    session_opened = Signal(object)
    #: A snapshot was merged into the mirror (its generation).
    mirror_updated = Signal(int)
    #: New events (toggles, scheduled changes, the start) arrived in the mirror: list[Event].
    events_arrived = Signal(list)
    #: New numbers for the status bar (a Progress).
    progress_changed = Signal(object)
    #: The run diverged at this step.
    run_diverged = Signal(int)
    #: New readouts of the run (gradsim.service.protocol.Readouts: W_hh's spectral radius, clipped share).
    readouts_changed = Signal(object)
    #: A command was refused (by the controller or by the trainer): the reason.
    command_refused = Signal(str)
    #: The training thread reported an error; the run stopped (the full message).
    run_failed = Signal(str)
    #: The run was forked at this step: branch B exists (its mirror is ``branch_mirror``).
    run_forked = Signal(int)
    #: New events arrived in branch B's mirror: list[Event].
    branch_events_arrived = Signal(list)
    #: The saved session was closed and the run it was opened over is shown again (its config).
    run_restored = Signal(object)

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.state = RunState.IDLE
        self.generation = 0
        self.mirror: Optional[Session] = None
        #: Branch B of a forked run (a mirror like ``mirror``), None when not forked.
        self.branch_mirror: Optional[Session] = None
        #: Which branches live toggles go to when forked: (0,) = A, (1,) = B, (0, 1) = both.
        self.command_targets: tuple[int, ...] = (1,)
        #: A Fork was sent for this run: from then on toggles go as BranchCommands, in order
        #: behind the Fork, even before B's first snapshot makes ``branch_mirror``.
        self._fork_sent = False
        self.viewed: Optional[Session] = None
        self.viewed_branch: Optional[Session] = None
        #: The run a saved session is shown over (None: there was none, or no session is shown).
        self.hidden: Optional[HiddenRun] = None
        self.config: Optional[RunConfig] = None
        self.progress = Progress()
        #: Each branch's latest numbers and whether it is done (0 = A, 1 = B); the status bar
        #: shows the branch that still trains.
        self._branch_progress: dict[int, tuple[Progress, bool]] = {}
        self._status_at = 0.0
        self._closing = False
        #: The engine process of the current run died: its session is gone, the mirror is what is left.
        self.engine_lost = False
        self.worker = TrainingWorker(self)
        self.worker.engine_lost.connect(self._on_engine_lost)
        self.worker.snapshot.connect(self._on_snapshot)
        self.worker.failed.connect(self._on_worker_failed)
        self.worker.forked.connect(self._on_forked)
        self.worker.fork_failed.connect(self._on_fork_failed)
        self.worker.command_failed.connect(self._on_command_failed)

    # ------------------------------------------------------------ queries
    @property
    def live(self) -> bool:
        return self.state.live

    def live_parts(self) -> Optional[tuple[int, Session, Optional[Session]]]:
        """The run that exists (also behind a saved session), as (generation, mirror, branch B's
        mirror); None when there is none."""
        if self.state is RunState.VIEWING:
            h = self.hidden
            return (h.generation, h.mirror, h.branch_mirror) if h is not None else None
        if self.state.has_run and self.mirror is not None:
            return self.generation, self.mirror, self.branch_mirror
        return None

    @property
    def diverged_at(self) -> Optional[int]:
        return self.mirror.diverged_at if self.mirror is not None else None

    # ------------------------------------------------------------ worker life
    def ensure_worker(self) -> None:
        """Start the background thread if it is not running (never after shutdown)."""
        if not self.worker.isRunning() and not self._closing:
            self.worker.start()

    def warm_up(self) -> None:
        """Start the thread and import torch in it now, so the first Run does not wait."""
        if self._closing:
            return
        self.ensure_worker()
        self.worker.send(WarmUp())

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        """Stop the training thread for good (requestInterruption + wait, never terminate)."""
        self._closing = True
        return self.worker.stop(timeout_ms=timeout_ms)

    # ------------------------------------------------------------ run control
    def start(self, config: RunConfig, schedule: tuple[Scheduled, ...] = (), label: str = "", paused: bool = False) -> None:
        """Start a new run (discarding any other) from a valid config."""
        self.generation += 1
        self.engine_lost = False
        self.viewed = None
        self.viewed_branch = None
        self.hidden = None
        self.branch_mirror = None
        self._fork_sent = False
        self.config = config
        self.mirror = Session(config.n_layers, config.to_dict(), max_memory_mb=config.max_memory_mb)
        self.ensure_worker()
        self.worker.reset_run(config, tuple(schedule), label, self.generation)
        if not paused:
            self.worker.start_run()
        self.run_started.emit(config)
        self._set_progress(Progress(0, config.steps))
        self._set_state(RunState.PAUSED if paused else RunState.RUNNING)

    def pause(self) -> None:
        if self.state is RunState.RUNNING:
            self.worker.pause_run()
            self._set_state(RunState.PAUSED)

    def resume(self) -> None:
        if self.state is RunState.PAUSED:
            self.worker.start_run()
            self._set_state(RunState.RUNNING)

    def toggle_pause(self) -> bool:
        """Pause a running run or resume a paused one; False when no run is live."""
        if self.state is RunState.RUNNING:
            self.pause()
        elif self.state is RunState.PAUSED:
            self.resume()
        else:
            return False
        return True

    def step(self, n: int = 1) -> bool:
        """``n`` optimizer steps of the live run, then paused; False when no run is live."""
        if not self.live:
            return False
        self.pause()
        self.worker.step_run(n)
        return True

    def reset(self) -> None:
        """Discard the run and its mirror; the next start builds fresh weights."""
        self.generation += 1
        self.engine_lost = False
        self.worker.reset_run(None, generation=self.generation)
        self.mirror = None
        self.branch_mirror = None
        self._fork_sent = False
        self.viewed = None
        self.viewed_branch = None
        self.hidden = None
        self.config = None
        self.run_reset.emit()
        self._set_progress(Progress())
        self._set_state(RunState.IDLE)

    def view(self, session: Session, branch: Optional[Session] = None) -> None:
        """Show a saved session read-only: any run is discarded, the session becomes the mirror.

        The caller has loaded and checked the session already, so a bad file
        never gets here and the current run survives it. A run that exists is
        kept behind the session, paused (``hidden``); ``leave_view`` shows it again.
        ``branch``: a forked run's branch B, drawn against ``session`` (A) as a live fork is.
        """
        if self.hidden is None and self.state.has_run and self.mirror is not None:
            if self.state is RunState.RUNNING:
                self.worker.pause_run()
            state = RunState.PAUSED if self.state is RunState.RUNNING else self.state
            self.hidden = HiddenRun(self.generation, state, self.mirror, self.branch_mirror, self.config, self.progress,
                                    self.engine_lost)
        elif self.hidden is None:
            self.worker.reset_run(None, generation=self.generation + 1)
        self.generation += 1
        self.engine_lost = False
        self.branch_mirror = branch
        self._fork_sent = False
        self.mirror = session
        #: The whole opened session; ``mirror`` may hold a prefix of it (the step slider).
        self.viewed = session
        #: An opened fork's whole branch B (``branch_mirror`` may hold a prefix of it).
        self.viewed_branch = branch
        try:
            self.config = RunConfig.from_dict(session.config, where="opened session")
        except ConfigError:  # a config this version cannot run is still worth showing
            self.config = None
        self.session_opened.emit(session)
        last = session.latest()
        self._set_progress(Progress(
            session.steps_run, None, 0.0,
            last.scalar("loss") if last is not None else math.nan,
            last.scalar("accuracy") if last is not None else math.nan,
        ))
        self._set_state(RunState.VIEWING)

    def leave_view(self) -> None:
        """Close the saved session: back to the run it was opened over (paused), or to no run."""
        h = self.hidden
        if self.state is not RunState.VIEWING:
            return
        if h is None:
            self.reset()
            return
        self.hidden = None
        self.viewed = None
        self.viewed_branch = None
        self.generation, self.mirror, self.branch_mirror = h.generation, h.mirror, h.branch_mirror
        self.config, self.engine_lost = h.config, h.engine_lost
        self.run_restored.emit(h.config)
        self._set_progress(h.progress)
        self._set_state(h.state)
        self.mirror_updated.emit(self.generation)

    def _on_hidden_snapshot(self, snap: Snapshot) -> None:
        """Rows of the run behind a saved session (those sent before it paused) go to its mirror."""
        h = self.hidden
        assert h is not None
        target = h.branch_mirror if snap.branch == 1 else h.mirror
        if target is None:
            return
        if snap.units is not None and snap.branch == 0:
            target.units = check_units(list(snap.units), target.n_layers)
        if len(snap.rows) or snap.rows.events:
            target.append_rows(snap.rows)
        target.steps_run = snap.step
        if snap.diverged_at is not None and target.diverged_at is None:
            target.diverged_at = snap.diverged_at
        if snap.branch == 0:
            h.progress = Progress(snap.step, snap.total_steps, 0.0, snap.loss, snap.accuracy)
            if h.state.live and (snap.failed or snap.finished):
                h.state = RunState.FAILED if snap.failed else RunState.FINISHED

    def viewed_grew(self) -> None:
        """The opened session gained rows (a followed watched run): plots and status bar catch up."""
        full = self.viewed
        if full is None or self.state is not RunState.VIEWING:
            return
        last = full.latest()
        self._set_progress(Progress(
            full.steps_run, None, 0.0,
            last.scalar("loss") if last is not None else math.nan,
            last.scalar("accuracy") if last is not None else math.nan,
        ))
        self.mirror_updated.emit(self.generation)

    def view_rows(self, n: int) -> Session:
        """Show the opened session's first ``n`` rows (the step slider); returns the new mirror."""
        full = self.viewed
        if full is None or self.state is not RunState.VIEWING:
            raise RuntimeError("no saved session is open")
        n = max(1, min(int(n), len(full)))
        self.mirror = full if n >= len(full) else session_prefix(full, n)
        b = self.viewed_branch
        if b is not None:  # branch B up to the same step as A
            k = int(np.searchsorted(b.steps, full.steps[n - 1], side="right"))
            self.branch_mirror = b if k >= len(b) else session_prefix(b, k) if k > 0 else None
        # The status bar shows the step the slider shows (steps done, as for a live run).
        last = self.mirror.latest()
        if last is not None:
            done = full.steps_run if n >= len(full) else int(full.steps[n - 1]) + 1
            self._set_progress(Progress(done, full.steps_run, 0.0, last.scalar("loss"), last.scalar("accuracy")))
        return self.mirror

    def send_command(self, command: Command) -> None:
        """Queue a live change; the worker applies it at the next step boundary."""
        if self.state is RunState.VIEWING:
            self.command_refused.emit(f"{command.text()}: an opened session is read-only; press Re-run to train it again")
            return
        if not self.live:
            self.command_refused.emit(f"{command.text()}: no run is active; press Run first")
            return
        if self.forked:
            for branch in self.command_targets:
                self.worker.send(BranchCommand(branch, command))
            return
        self.worker.send(command)

    # ------------------------------------------------------------ fork
    @property
    def forked(self) -> bool:
        """A Fork was sent (the engine handles it before any toggle sent after it) or B exists."""
        return self._fork_sent or self.branch_mirror is not None

    def can_fork(self) -> bool:
        """A fork is made from a paused run that is not forked yet (the step is exact then)."""
        return self.state is RunState.PAUSED and not self.forked and self.mirror is not None

    def fork(self) -> bool:
        """Ask the worker for branch B from the run's exact state; ``run_forked`` follows."""
        if not self.can_fork():
            why = "pause the run first" if self.state is RunState.RUNNING else (
                "the run is already forked" if self.forked else "start a run and pause it first")
            self.command_refused.emit(f"Fork: {why}")
            return False
        self.worker.send(ForkRun())
        self._fork_sent = True
        return True

    def set_command_targets(self, targets: tuple[int, ...]) -> None:
        """Which branches the live toggles change (A, B or both)."""
        if not targets or any(t not in (0, 1) for t in targets):
            raise ValueError(f"targets {targets!r}: a non-empty subset of (0, 1)")
        self.command_targets = tuple(targets)

    @Slot(int, int)
    def _on_forked(self, generation: int, step: int) -> None:
        if generation != self.generation or self.mirror is None:
            return
        self.run_forked.emit(step)

    @Slot(int, str)
    def _on_fork_failed(self, generation: int, message: str) -> None:
        if generation != self.generation:
            return
        self._fork_sent = False  # toggles go to the one run again (those sent meanwhile were refused)
        self.command_refused.emit(message)

    def _set_state(self, state: RunState) -> None:
        self.state = state
        self.state_changed.emit(state)

    def _set_progress(self, progress: Progress) -> None:
        if progress.branch_steps is None:  # a new run, a reset, an opened session
            self._branch_progress.clear()
        self.progress = progress
        self.progress_changed.emit(progress)

    # ------------------------------------------------------------ worker -> model
    @Slot(object)
    def _on_snapshot(self, snap: Snapshot) -> None:
        if self.hidden is not None and snap.generation == self.hidden.generation:
            self._on_hidden_snapshot(snap)
            return
        if snap.generation != self.generation or self.mirror is None:
            return  # from a run that was reset
        if snap.branch == 1:
            self._on_branch_snapshot(snap, self.mirror)
            return
        if snap.units is not None:  # the engine's names for the rows replace those the config describes
            self.mirror.units = check_units(list(snap.units), self.mirror.n_layers)
        rows = snap.rows
        if len(rows) or rows.events:
            self.mirror.append_rows(rows)
        self.mirror.steps_run = snap.step
        self._note_progress(snap)
        if snap.readouts is not None:
            self.readouts_changed.emit(snap.readouts)
        if snap.diverged_at is not None and self.mirror.diverged_at is None:
            self.mirror.diverged_at = snap.diverged_at
            self.run_diverged.emit(int(snap.diverged_at))
        if rows.events:
            self.events_arrived.emit(list(rows.events))
        if snap.failed and self.live:
            self._set_state(RunState.FAILED)
        elif snap.finished and self.live:
            self._set_state(RunState.FINISHED)
        self.mirror_updated.emit(snap.generation)

    def _note_progress(self, snap: Snapshot) -> None:
        """The status bar's numbers: A's alone, or, when forked, those of the branch still
        training, with both branches' steps (A may end long before B)."""
        progress = Progress(snap.step, snap.total_steps, snap.steps_per_s, snap.loss, snap.accuracy)
        self._branch_progress[snap.branch] = (progress, _branch_done(snap))
        now = time.perf_counter()
        if snap.running and now - self._status_at < STATUS_PERIOD_S:
            return
        self._status_at = now
        a, b = self._branch_progress.get(0), self._branch_progress.get(1)
        if a is None:
            return
        if b is None:
            self.progress = a[0]
        else:
            (pa, a_done), (pb, b_done) = a, b
            lead = pb if a_done and not b_done else pa
            self.progress = Progress(lead.step, lead.total, lead.steps_per_s, lead.loss, lead.accuracy,
                                     branch_steps=(pa.step, pb.step))
        self.progress_changed.emit(self.progress)

    def _on_branch_snapshot(self, snap: Snapshot, mirror: Session) -> None:
        """Branch B's rows: the first snapshot after a fork holds its whole history."""
        rows = snap.rows
        if self.branch_mirror is None:
            self.branch_mirror = Session(mirror.n_layers, dict(mirror.config), max_memory_mb=mirror.max_memory_mb,
                                         units=list(mirror.units))
        b = self.branch_mirror
        if len(rows) or rows.events:
            b.append_rows(rows)
        b.steps_run = snap.step
        self._note_progress(snap)
        if snap.diverged_at is not None and b.diverged_at is None:
            b.diverged_at = snap.diverged_at
        if rows.events:
            self.branch_events_arrived.emit(list(rows.events))
        self.mirror_updated.emit(snap.generation)

    @Slot(str)
    def _on_command_failed(self, message: str) -> None:
        self.command_refused.emit(message)

    def export(self, path: str, zip_file: bool = False) -> None:
        """Write the run's session: the engine's full one, or, when its engine died, the window's mirror of it."""
        h = self.hidden if self.state is RunState.VIEWING else None
        lost, mirror, branch = (h.engine_lost, h.mirror, h.branch_mirror) if h else (self.engine_lost, self.mirror, self.branch_mirror)
        if lost and mirror is not None:
            self.worker.export_mirror(mirror, branch, path, zip_file)
        else:
            self.worker.export_session(path, zip_file=zip_file)

    @Slot(str)
    def _on_engine_lost(self, _message: str) -> None:
        # ``failed`` follows with the same message (state and dialog); here only: the run's
        # session is gone with its process, so an export writes the mirror.
        self.engine_lost = self.mirror is not None and self.state is not RunState.VIEWING
        if self.hidden is not None:  # the run behind an opened session lost its engine
            self.hidden.engine_lost = True
            if self.hidden.state.live:
                self.hidden.state = RunState.FAILED

    @Slot(str)
    def _on_worker_failed(self, message: str) -> None:
        log.error("training stopped: %s", message)
        if self.live:
            self._set_state(RunState.FAILED)
        self.run_failed.emit(message)

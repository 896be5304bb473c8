"""The engine's serving loop: one Trainer driven by plain-data messages. No Qt.

Why a loop of its own, apart from the window: pyqtgraph paints from Python, so
every frame the window draws holds the interpreter lock that a training
thread in the same process needs (benchmarks/RESULTS.md 4.6). Served from a
*child process* (:func:`serve`, started by :func:`start_engine_process`),
training and painting share nothing but a core: the window sends messages
down a pipe and gets every result back through it. The same loop also runs in
a thread of the window's process (the fallback when no child can be started),
so both paths behave alike and are tested alike.

The loop talks to its owner through two small interfaces only:

- an *inbox* with ``get(timeout)`` / ``get_nowait()`` that raise
  ``queue.Empty`` when nothing waits and ``EOFError`` when the owner is gone;
- an ``emit(report)`` callable taking one tuple ``(kind, *args)`` (kinds
  below), so nothing here knows about Qt signals or pipes.

Commands are applied only between steps (a toggle applies at the next step);
snapshots carry copies of the new rows at most ``snapshot_hz`` times a second.
"""
from __future__ import annotations

import logging
import os
import pickle
import queue
import signal
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from ..commands import Command, CommandError, Scheduled
from ..config import ConfigError, RunConfig
from ..models.family import Unit
from ..session.store import Rows

log = logging.getLogger(__name__)

#: At most this many snapshots a second (the plots redraw at ~30 Hz anyway).
SNAPSHOT_HZ = 30.0
#: How long an idle loop blocks on its inbox before looking again.
IDLE_POLL_S = 0.05

# Report kinds (the first item of every tuple the loop emits).
SNAPSHOT = "snapshot"  # (Snapshot,)
DIVERGED = "diverged"  # (step,)
FINISHED = "finished"  # ()
FAILED = "failed"  # (message,) an unexpected error: the run stops, the loop lives on
COMMAND_FAILED = "command_failed"  # (message,)
EXPORT_FINISHED = "export_finished"  # (path,)
EXPORT_FAILED = "export_failed"  # (message,)
PREVIEW = "preview"  # (Preview,)
FORKED = "forked"  # (generation, step)
REPLICATION_PROGRESS = "replication_progress"  # (done, total, text)
REPLICATION_FINISHED = "replication_finished"  # (ReplicationResult,)
REPLICATION_FAILED = "replication_failed"  # (message,)
TASK = "task"  # (task id, ok, result or exception; pickled bytes when sent through a pipe)
READY = "ready"  # (pid,) torch is imported: the engine takes work
RESET = "reset"  # (generation,) the run was dropped (or replaced): nothing steps now
PACE_PAUSED = "pace_paused"  # (generation, step, why) SetPace's pause at a step or on divergence stopped the run


# ------------------------------------------------------------------ messages in
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
    speed); pause once step ``pause_at`` is done (None: never); pause when a branch diverges."""

    steps_per_s: Optional[float] = None
    pause_at: Optional[int] = None
    pause_on_divergence: bool = False

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


# ------------------------------------------------------------------ reports out
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


@dataclass
class Preview:
    dataset: str
    points: np.ndarray  # (n, 2) float
    labels: np.ndarray  # (n,) int
    n_inputs: int
    note: str = ""


@dataclass
class RateMeter:
    """Steps per second over the last second or so."""

    marks: deque = field(default_factory=lambda: deque(maxlen=256))

    def mark(self, step: int) -> None:
        self.marks.append((time.perf_counter(), step))

    def rate(self) -> float:
        if len(self.marks) < 2:
            return 0.0
        now = self.marks[-1][0]
        while len(self.marks) > 2 and now - self.marks[0][0] > 1.0:
            self.marks.popleft()
        (t0, s0), (t1, s1) = self.marks[0], self.marks[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else 0.0

    def clear(self) -> None:
        self.marks.clear()


class _Stop(Exception):
    """The owner asked the loop to end (Shutdown) or went away (EOF)."""


def warm_up() -> None:
    """Import torch and the trainer, one torch thread (docs/architecture.md#pitfalls-measured-here)."""
    import torch

    torch.set_num_threads(1)
    # No torch.optim here: GradSim's optimizers (gradsim/train/optimizers.py) never
    # construct one, so torch._dynamo (~2.4 s) is never imported.
    from ..train import trainer as _trainer  # noqa: F401


# ------------------------------------------------------------------ the loop
class EngineLoop:
    """Owns one Trainer (and a fork's branch B) and serves messages between steps."""

    def __init__(self, inbox: Any, emit: Callable[[tuple], None], snapshot_hz: float = SNAPSHOT_HZ) -> None:
        self._inbox = inbox
        self._emit_report = emit
        self._min_interval = 1.0 / snapshot_hz
        #: Messages read while a replication looked for a cancel; handled after it, in order.
        self._deferred: deque = deque()
        self._stopping = False
        self._running = False
        self._trainer: Any = None
        #: Branch B of a forked run (None until Fork); it steps right after the run.
        self._fork: Any = None
        self._fork_sent = (-1, 0)  # (last step, events) of branch B sent
        self._broken = False
        self._generation = 0
        self._pending_steps = 0
        self._sent_step = -1
        self._sent_events = 0
        self._units_sent = False
        self._last_emit = 0.0
        self._rate = RateMeter()
        self._pace = SetPace()
        self._next_step_at = 0.0
        #: (step index, perf_counter) at the start of each recent step: what a pace is measured by.
        self.step_times: deque = deque(maxlen=4096)
        self._torch_ready = False
        self._cancel_replication = False
        #: Control message type -> handler (Commands apply themselves to the trainer).
        self._handlers: dict[type, Callable[[Any], None]] = {
            ResetRun: self._reset,
            StartRun: self._start,
            PauseRun: self._pause,
            StepRun: self._step_request,
            ExportRequest: self._export,
            ForkRun: self._fork_run,
            BranchCommand: self._branch_command,
            Task: self._task,
            PreviewRequest: self._preview,
            ReplicationRequest: self._replicate,
            CancelReplication: lambda _: None,  # no replication is running: nothing to cancel
            SetSnapshotRate: self._set_rate,
            SetPace: self._set_pace,
            WarmUp: lambda _: self._warm_up(),
            Shutdown: self._shutdown,
        }

    # ------------------------------------------------------ serving
    def run(self) -> None:
        """Serve until Shutdown or until the owner goes away."""
        try:
            while not self._stopping:
                wait = self._pace_wait()  # > 0: the next step is not due yet; messages are served meanwhile
                self._drain(block=not self._wants_step() or wait > 0, timeout=min(wait, IDLE_POLL_S) if wait > 0 else IDLE_POLL_S)
                if self._stopping:
                    break
                if self._wants_step() and self._pace_wait() <= 0:
                    self._step_once()
                self._maybe_emit()
        except _Stop:
            pass

    def _next(self, block: bool, timeout: float = IDLE_POLL_S) -> Any:
        """The next message (deferred ones first); raises queue.Empty or _Stop."""
        if self._deferred:
            return self._deferred.popleft()
        try:
            return self._inbox.get(timeout) if block else self._inbox.get_nowait()
        except (EOFError, OSError):
            raise _Stop from None

    def _drain(self, block: bool, timeout: float = IDLE_POLL_S) -> None:
        try:
            self._handle(self._next(block, timeout))
        except queue.Empty:
            return
        while not self._stopping:
            try:
                msg = self._next(False)
            except queue.Empty:
                return
            self._handle(msg)

    def _wants_step(self) -> bool:
        t = self._trainer
        if t is None or self._broken or self._all_finished():
            return False
        return self._running or self._pending_steps > 0

    def _handle(self, msg: Any) -> None:
        """Apply one message: a Command goes to the trainer, a control message to its handler."""
        try:
            if isinstance(msg, Command):
                self._apply(msg)
            else:
                self._handlers[type(msg)](msg)
        except _Stop:
            raise
        except ConfigError as exc:  # a config the engine refuses: its message says why
            self._fail(f"The configuration cannot run: {exc}")
        except Exception:  # report, keep the loop and the session
            log.exception("error while handling %s", type(msg).__name__)
            self._fail("Error while handling " + type(msg).__name__ + ":\n" + traceback.format_exc(limit=8))

    def add_handler(self, kind: type, handler: Callable[[Any], None]) -> None:
        """Serve one more message type (the owner's own, e.g. an export of its copy)."""
        self._handlers[kind] = handler

    def emit(self, *report: Any) -> None:
        self._emit_report(report)

    # ------------------------------------------------------ control
    def _shutdown(self, _: Shutdown) -> None:
        self._stopping = True
        self._running = False

    def _set_rate(self, msg: SetSnapshotRate) -> None:
        self._min_interval = 1.0 / max(1.0, min(float(msg.hz), SNAPSHOT_HZ))

    def _set_pace(self, msg: SetPace) -> None:
        self._pace = msg  # checked when it was built
        self._next_step_at = 0.0

    def _pace_wait(self) -> float:
        """Seconds until the next paced step is due (0: step now, or not paced)."""
        if self._pace.steps_per_s is None or not self._running or self._pending_steps > 0:
            return 0.0
        return max(0.0, self._next_step_at - time.perf_counter())

    def _pace_pause(self, diverged_before: tuple) -> str:
        """Why SetPace stops the run after this step ("" to go on). A run that is not forked
        ends where it diverges; a forked one goes on with the other branch, unless asked to pause."""
        t, b = self._trainer, self._fork
        if self._pace.pause_at is not None and t.step_index == self._pace.pause_at:
            return f"paused at step {t.step_index:,} as asked"
        if self._pace.pause_on_divergence and b is not None:
            for name, x, before in (("A", t, diverged_before[0]), ("B", b, diverged_before[1])):
                if before is None and x.diverged_at is not None:
                    return f"branch {name} diverged at step {x.diverged_at:,}"
        return ""

    def _start(self, _: StartRun) -> None:
        t = self._trainer
        if t is not None and not self._broken and not self._all_finished():
            self._running = True
            self._rate.clear()
            self._rate.mark(t.step_index)
        self._emit(force=True)

    def _pause(self, _: PauseRun) -> None:
        t = self._trainer
        if self._running and t is not None and not t.finished:
            # An annotation (events.csv kind "pause"); a replay ignores it.
            t.session.add_event(t.step_index, "pause", "paused in the window")
        self._running = False
        self._pending_steps = 0
        self._emit(force=True)

    def _step_request(self, msg: StepRun) -> None:
        self._running = False
        self._pending_steps += max(0, int(msg.n))

    def _warm_up(self) -> None:
        if not self._torch_ready:
            warm_up()
            self._torch_ready = True

    def _reset(self, msg: ResetRun) -> None:
        self._running = False
        self._pending_steps = 0
        self._trainer = None
        self._fork = None
        self._fork_sent = (-1, 0)
        self._broken = False
        self._generation = msg.generation
        self._sent_step = -1
        self._sent_events = 0
        self._units_sent = False
        self._rate.clear()
        self.emit(RESET, self._generation)
        if msg.config is None:
            return
        self._warm_up()
        from ..train import trainer as trainer_module

        self._trainer = trainer_module.Trainer(msg.config, msg.schedule, label=msg.label)
        self._rate.mark(0)
        self._emit(force=True)

    def _all_finished(self) -> bool:
        t = self._trainer
        return t is None or (t.finished and (self._fork is None or self._fork.finished))

    def _fork_run(self, _: ForkRun) -> None:
        t = self._trainer
        if t is None or self._broken:
            self.emit(COMMAND_FAILED, "Fork: no run is active; press Run first")
            return
        if self._fork is not None:
            self.emit(COMMAND_FAILED, "Fork: the run is already forked into branches A and B")
            return
        if t.finished:
            self.emit(COMMAND_FAILED, "Fork: the run has finished; fork a paused run")
            return
        from ..train.fork import fork_trainer

        self._running = False
        self._pending_steps = 0
        step = int(t.step_index)
        self._fork = fork_trainer(t, note=f"fork of branch A at step {step}")
        t.session.add_event(step, "note", f"fork at step {step} (branch B starts here)")
        self._fork_sent = (-1, 0)
        self._emit(force=True)
        self.emit(FORKED, self._generation, step)

    def _branch_command(self, msg: BranchCommand) -> None:
        if msg.branch == 0:
            self._apply(msg.command)
            return
        b = self._fork
        if b is None:
            self.emit(COMMAND_FAILED, f"{msg.command.text()}: there is no branch B; press Fork first")
            return
        if b.finished:
            self.emit(COMMAND_FAILED, f"{msg.command.text()}: branch B has finished")
            return
        try:
            b.apply(msg.command)
        except CommandError as exc:
            self.emit(COMMAND_FAILED, f"branch B: {exc}")
            return
        self._emit(force=True)

    def _apply(self, command: Command) -> None:
        t = self._trainer
        if t is None or self._broken:
            self.emit(COMMAND_FAILED, f"{command.text()}: no run is active; press Run first")
            return
        if t.finished:
            self.emit(COMMAND_FAILED, f"{command.text()}: the run has finished; reset to start a new one")
            return
        try:
            t.apply(command)
        except CommandError as exc:
            self.emit(COMMAND_FAILED, str(exc))
            return
        self._emit(force=True)

    # ------------------------------------------------------ stepping
    def _step_once(self) -> None:
        t = self._trainer
        b = self._fork
        now = time.perf_counter()
        self.step_times.append((int(t.step_index), now))
        diverged_before = (t.diverged_at, b.diverged_at if b is not None else None)
        if self._pace.steps_per_s is not None:
            self._next_step_at = now + 1.0 / self._pace.steps_per_s
        try:
            # A forked run steps its branches alternately, in this one loop: A, then B.
            if not t.finished:
                t.step()
            if b is not None and not b.finished:
                b.step()
        except Exception as exc:  # the run stops, the loop and the session stay
            log.exception("training step %d failed", t.step_index)
            self._fail(f"Training step {t.step_index} failed: {type(exc).__name__}: {exc}\n\n" + traceback.format_exc(limit=8))
            return
        if self._pending_steps > 0:
            self._pending_steps -= 1
            if self._pending_steps == 0:
                self._emit(force=True)
        self._rate.mark(t.step_index)
        why = self._pace_pause(diverged_before) if self._running and not self._all_finished() else ""
        if why:
            self._running = False
            t.session.add_event(t.step_index, "pause", why)  # an annotation, as a pause in the window
            self._emit(force=True)
            self.emit(PACE_PAUSED, self._generation, int(t.step_index), why)
        if self._all_finished():
            self._running = False
            self._pending_steps = 0
            self._emit(force=True)
            if t.diverged_at is not None:
                self.emit(DIVERGED, int(t.diverged_at))
            self.emit(FINISHED)

    def _fail(self, message: str) -> None:
        self._running = False
        self._pending_steps = 0
        if self._trainer is not None:
            self._broken = True  # keep the session: it can still be exported
            self._emit(force=True)
        self.emit(FAILED, message)

    # ------------------------------------------------------ snapshots
    def _maybe_emit(self) -> None:
        if time.perf_counter() - self._last_emit >= self._min_interval:
            self._emit(force=False)

    def _emit(self, force: bool) -> None:
        self._emit_branch(force)
        if self._fork is not None:
            self._emit_fork(force)

    def _emit_fork(self, force: bool) -> None:
        """Branch B's new rows, as a snapshot with ``branch=1``."""
        b = self._fork
        session = b.session
        n_events = len(session.events)
        last_step = int(session.steps[-1]) if len(session) else -1
        sent_step, sent_events = self._fork_sent
        if not force and last_step == sent_step and n_events == sent_events:
            return
        rows = session.rows_after(sent_step, sent_events)
        self._fork_sent = (int(rows.steps[-1]) if len(rows) else sent_step, n_events)
        last = session.last()
        running = self._running and not b.finished and not self._broken
        self.emit(SNAPSHOT, Snapshot(
            generation=self._generation,
            rows=rows,
            step=int(b.step_index),
            total_steps=int(b.config.steps),
            steps_per_s=self._rate.rate() if running else 0.0,
            loss=last.scalar("loss") if last is not None else float("nan"),
            accuracy=last.scalar("accuracy") if last is not None else float("nan"),
            running=running,
            finished=bool(b.finished),
            diverged_at=b.diverged_at,
            failed=self._broken,
            branch=1,
        ))

    def _emit_branch(self, force: bool) -> None:
        t = self._trainer
        if t is None:
            return
        session = t.session
        n_events = len(session.events)
        last_step = int(session.steps[-1]) if len(session) else -1
        if not force and last_step == self._sent_step and n_events == self._sent_events:
            return
        rows = session.rows_after(self._sent_step, self._sent_events)
        if len(rows):
            self._sent_step = int(rows.steps[-1])
        self._sent_events = n_events
        last = session.last()
        self._last_emit = time.perf_counter()
        running = self._running and not self._all_finished() and not self._broken
        units = None if self._units_sent else tuple(session.units)
        self._units_sent = True
        self.emit(SNAPSHOT, Snapshot(
            generation=self._generation,
            rows=rows,
            step=int(t.step_index),
            total_steps=int(t.config.steps),
            steps_per_s=self._rate.rate() if running else 0.0,
            loss=last.scalar("loss") if last is not None else float("nan"),
            accuracy=last.scalar("accuracy") if last is not None else float("nan"),
            running=running,
            finished=bool(self._all_finished()),
            diverged_at=t.diverged_at,
            failed=self._broken,
            units=units,
        ))

    # ------------------------------------------------------ work on request
    def _export(self, msg: ExportRequest) -> None:
        t = self._trainer
        if t is None:
            self.emit(EXPORT_FAILED, "There is no session to export yet: press Run first.")
            return
        from ..session.io import ExportError, export_session

        try:
            if self._fork is not None:
                from ..train.fork import export_comparison

                path = export_comparison(t.session, self._fork.session, msg.path, zip_file=msg.zip_file)
            else:
                path = export_session(t.session, msg.path, zip_file=msg.zip_file)
        except ExportError as exc:
            self.emit(EXPORT_FAILED, str(exc))
            return
        except Exception as exc:  # the session stays; the user may retry
            log.exception("export to %r failed", msg.path)
            self.emit(EXPORT_FAILED, f"cannot export session to {msg.path!r}: {exc}")
            return
        self.emit(EXPORT_FINISHED, str(path))

    def _task(self, msg: Task) -> None:
        t = self._trainer
        if t is None:
            self.emit(TASK, msg.id, False, NoRunError("There is no session yet: press Run first."))
            return
        try:
            result = msg.fn(t if msg.on_trainer else t.session)
        except Exception as exc:  # the caller's on_error shows it; the session is unchanged
            log.info("background task %d failed", msg.id, exc_info=True)
            self.emit(TASK, msg.id, False, exc)
            return
        self.emit(TASK, msg.id, True, result)

    def _should_stop_replication(self) -> bool:
        """Look at the inbox without blocking: a cancel (or shutdown) stops the replication;
        anything else waits until it is over, in order."""
        while True:
            try:
                msg = self._inbox.get_nowait()
            except queue.Empty:
                break
            except (EOFError, OSError):
                self._stopping = True
                break
            if isinstance(msg, CancelReplication):
                self._cancel_replication = True
            elif isinstance(msg, Shutdown):
                self._shutdown(msg)
            else:
                self._deferred.append(msg)
        return self._cancel_replication or self._stopping

    def _replicate(self, msg: ReplicationRequest) -> None:
        """Many short runs of their own, each a standard session folder: the live run
        (if any) is paused first and stays as it was."""
        if self._running:
            self._pause(PauseRun())
        self._warm_up()
        self._cancel_replication = False
        from ..replications import Cancelled, ReplicationError, get_replication, run_replication

        last = [0.0]

        def progress(done: int, total: int, text: str) -> None:
            now = time.perf_counter()
            if now - last[0] >= 0.1 or done >= total:  # at most ~10 updates a second
                last[0] = now
                self.emit(REPLICATION_PROGRESS, int(done), int(total), str(text))

        try:
            report = run_replication(get_replication(msg.name), msg.out, msg.mode, progress, self._should_stop_replication)
        except Cancelled:
            self.emit(REPLICATION_FAILED, "cancelled")
            return
        except (ReplicationError, ConfigError, OSError) as exc:
            self.emit(REPLICATION_FAILED, str(exc))
            return
        except Exception as exc:  # report it; the loop and the live run stay
            log.exception("replication %s failed", msg.name)
            self.emit(REPLICATION_FAILED, f"{type(exc).__name__}: {exc}")
            return
        finally:
            self._cancel_replication = False
        self.emit(REPLICATION_FINISHED, ReplicationResult(
            report.name, bool(report.reproduced), report.verdict, str(report.out), str(report.figure),
            str(report.csv), tuple(str(p) for p in report.sessions)))

    def _preview(self, msg: PreviewRequest) -> None:
        from ..data.datasets import make_dataset

        data = make_dataset(msg.dataset, msg.n_samples, msg.noise, msg.seed, msg.test_fraction)
        x = np.asarray(data.x_train, np.float64)
        note = ""
        if x.shape[1] > 2:
            # First two principal components: a faithful 2-D shadow of the 64-D digits.
            xc = x - x.mean(axis=0)
            _, _, vt = np.linalg.svd(xc, full_matrices=False)
            x = xc @ vt[:2].T
            note = f"{data.n_inputs}-D inputs; shown: first 2 principal components"
        self.emit(PREVIEW, Preview(msg.dataset, x.astype(np.float32), np.asarray(data.y_train), data.n_inputs, note))


# ------------------------------------------------------------------ the child process
class QueueInbox:
    """An inbox over a ``queue.SimpleQueue`` (the in-thread engine)."""

    def __init__(self, q: "queue.SimpleQueue[Any]") -> None:
        self._q = q

    def get(self, timeout: float) -> Any:
        return self._q.get(timeout=timeout)

    def get_nowait(self) -> Any:
        return self._q.get_nowait()


class PipeInbox:
    """An inbox over a ``multiprocessing`` Connection; EOF (the owner died) ends the loop."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def get(self, timeout: float) -> Any:
        if not self._conn.poll(timeout):
            raise queue.Empty
        return self._conn.recv()

    def get_nowait(self) -> Any:
        if not self._conn.poll():
            raise queue.Empty
        return self._conn.recv()


def encode_task_payload(payload: Any, ok: bool) -> bytes:
    """Pickle a task's result or exception so the owner can always read it back.

    An exception that does not survive a round trip (a custom ``__init__``)
    becomes a RuntimeError naming it; a result that cannot be pickled becomes
    an error for the caller instead of a lost reply.
    """
    try:
        blob = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
        if not ok:
            pickle.loads(blob)  # exceptions are small: check they can be rebuilt on the other side
        return blob
    except Exception as exc:  # the reply must arrive, whatever it holds
        log.info("a task's %s cannot travel as it is; sending an error that names it", "result" if ok else "exception", exc_info=True)
        if ok:
            err: BaseException = TypeError(f"the task's result ({type(payload).__name__}) cannot be sent back: {exc}")
        else:
            err = RuntimeError(f"{type(payload).__name__}: {payload}")
        return pickle.dumps(err, protocol=pickle.HIGHEST_PROTOCOL)


class PipeOutbox:
    """Reports to the owner through a Connection, written by a sender thread of their own.

    Why a thread: a report waits in the pipe until the owner reads it, and the
    owner is a window whose reader thread needs that process's interpreter
    lock, which painting holds for milliseconds at a time. Written from the
    training loop, a full pipe would stall training on the window's paint, the
    very coupling the child process exists to remove. The sender blocks in
    ``write`` (the lock released), training goes on. Reports keep their order;
    task payloads are pickled here, in the loop, so a reply always arrives readable.
    """

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._queue: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self._broken = False
        self._thread = threading.Thread(target=self._send_all, name="gradsim-engine-sender", daemon=True)
        self._thread.start()

    def __call__(self, report: tuple) -> None:
        if self._broken:
            raise _Stop  # the owner is gone: nobody to serve
        if report[0] == TASK:
            task_id, ok, payload = report[1:]
            report = (TASK, task_id, ok, encode_task_payload(payload, ok))
        self._queue.put(report)

    def _send_all(self) -> None:
        while True:
            report = self._queue.get()
            if report is None:
                return
            try:
                self._conn.send(report)
            except (BrokenPipeError, EOFError, ConnectionResetError, OSError):
                self._broken = True
                return
            except Exception:  # one report that cannot be pickled: say so, send the rest
                log.exception("a %r report could not be sent to the window", report[0])

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued, then stop the sender thread."""
        self._queue.put(None)
        self._thread.join(timeout)


def own_session() -> None:
    """Make this process a session of its own (POSIX), so the scheduler sees the engine as
    its own job, not as a thread of the window.

    Why: Linux's autogroup scheduling (on where tasks sit in the root cgroup) shares
    the CPU between *sessions* first. In the window's session the engine would share
    one share with the window's painting: every millisecond of paint would be a
    millisecond less training on a busy machine, and the window would wait behind
    the always-busy engine for its turn (GUI timer latency). As a session of its own
    it gets its own share, as ``gradsim run`` started elsewhere would. Nothing else
    changes: it still ends when the window's end of the pipe closes, and the
    terminal's Ctrl+C reaches the window, which ends it.
    """
    if hasattr(os, "setsid"):
        try:
            os.setsid()
        except OSError:  # already a group leader (never when started by start_engine_process)
            log.debug("the engine process could not start a session of its own", exc_info=True)


def serve(conn: Any, snapshot_hz: float = SNAPSHOT_HZ) -> None:
    """The child process's entry point: warm up, say READY, serve until Shutdown or EOF.

    Ctrl+C in a terminal reaches the whole process group; the window handles it
    and stops this process itself, so the child ignores SIGINT.
    """
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except (ValueError, OSError):  # pragma: no cover - not the main thread
        pass
    own_session()
    outbox = PipeOutbox(conn)
    try:
        warm_up()
        outbox((READY, os.getpid()))
        EngineLoop(PipeInbox(conn), outbox, snapshot_hz).run()
    except _Stop:
        pass
    finally:
        outbox.close()
        try:
            conn.close()
        except OSError:
            pass


# ------------------------------------------------------------------ starting one
#: Modules the forkserver imports once; every engine forked from it starts with torch loaded.
PRELOAD = ["torch", "gradsim.train.trainer", "gradsim.service.loop"]


def start_method() -> str:
    """How engine processes start: ``GRADSIM_START_METHOD`` if set, else forkserver where it exists.

    Never a plain fork of the window's process (Qt's threads and locks do not
    survive a fork). The forkserver is a fresh interpreter that imports torch
    once (``PRELOAD``); each engine is then forked from it in milliseconds, so
    a Reset after a crash, or a test suite's many windows, do not pay torch's
    import again. ``spawn`` (Windows, or by choice) pays it per engine.
    """
    import multiprocessing as mp

    chosen = os.environ.get("GRADSIM_START_METHOD", "").strip()
    methods = mp.get_all_start_methods()
    if chosen:
        if chosen not in methods or chosen == "fork":
            raise ValueError(f"GRADSIM_START_METHOD={chosen!r}: use one of {[m for m in methods if m != 'fork']}")
        return chosen
    return "forkserver" if "forkserver" in methods else "spawn"


def start_engine_process(snapshot_hz: float = SNAPSHOT_HZ) -> tuple[Any, Any]:
    """Start a child serving :func:`serve`; returns (process, parent's end of the duplex pipe).

    The caller waits for the READY report (torch imported) before counting on it;
    it must close the connection and join the process when done.
    """
    import multiprocessing as mp

    ctx = mp.get_context(start_method())
    if ctx.get_start_method() == "forkserver":
        ctx.set_forkserver_preload(PRELOAD)
    parent, child = ctx.Pipe(duplex=True)
    proc = ctx.Process(target=serve, args=(child, snapshot_hz), name="gradsim-engine", daemon=True)
    try:
        proc.start()
    finally:
        child.close()  # the child holds its own copy; ours must go so EOF reaches the parent
    return proc, parent


def describe_exit(exitcode: Optional[int]) -> str:
    """Words for a process's exit code (negative: the signal that ended it)."""
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"killed by {name}"
    return f"exit status {exitcode}"


if __name__ == "__main__":  # pragma: no cover - not a script
    sys.exit("gradsim.service.loop is started by the window (ui/worker.py), not run directly")

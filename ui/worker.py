"""The one background thread: it owns the Trainer and talks to the window through signals.

Why this shape (DESIGN.md section 6): the GUI thread never runs a training
step, so the window stays responsive at any depth; the GUI reaches the run
only through a ``queue.SimpleQueue`` of plain-data messages drained between
steps (a second toggle never overwrites the first); the worker reaches the GUI
only through signals that carry copies, at most ~30 snapshots a second, so
training speed is decoupled from redraw speed. torch is imported here, inside
``run()``, so the first window paints before the ~2.4 s ``import torch``.
"""
from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

from gradsim.commands import Command, CommandError, Scheduled
from gradsim.config import ConfigError, RunConfig

log = logging.getLogger(__name__)

#: At most this many snapshots a second (the plots redraw at ~30 Hz anyway).
SNAPSHOT_HZ = 30.0
#: How long an idle worker blocks on its queue before checking for a stop request.
IDLE_POLL_S = 0.05


# ------------------------------------------------------------------ messages
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
    """Write the worker's full session with the engine's exporter, between steps."""

    path: str
    zip_file: bool = False


class NoRunError(RuntimeError):
    """A task asked for the run's session or trainer, and there is no run."""


@dataclass(frozen=True)
class Task:
    """Run ``fn(session)`` (or ``fn(trainer)``) in the worker between steps.

    Only the id travels back; the callbacks stay in the GUI thread, keyed by it
    (see ``TrainingWorker.submit``). ``fn`` must not keep what it is given.
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
    while it runs, since this is the one thread that trains."""

    name: str
    out: str
    mode: str = "default"


@dataclass(frozen=True)
class ReplicationResult:
    """What the dialog shows when a replication ends (plain data, copied across threads)."""

    name: str
    reproduced: bool
    verdict: str
    out: str
    figure: str
    csv: str
    sessions: tuple[str, ...]


@dataclass(frozen=True)
class WarmUp:
    """Import torch and its optimizers now, so the first Run does not wait for them."""


@dataclass(frozen=True)
class _Wake:
    """Only wakes a blocked queue read (e.g. after a stop request)."""


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


@dataclass
class Preview:
    dataset: str
    points: np.ndarray  # (n, 2) float
    labels: np.ndarray  # (n,) int
    n_inputs: int
    note: str = ""


@dataclass
class _RateMeter:
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


class TrainingWorker(QThread):
    """Owns one Trainer at a time; every public method is safe to call from the GUI thread."""

    snapshot = Signal(object)  # Snapshot
    run_diverged = Signal(int)  # step at which the run diverged
    run_finished = Signal()
    failed = Signal(str)  # an unexpected error: the run is stopped, the thread lives on
    command_failed = Signal(str)  # a Command the trainer refused (CommandError text)
    export_finished = Signal(str)  # path written
    export_failed = Signal(str)  # ExportError text; the session is unchanged
    preview_ready = Signal(object)  # Preview
    forked = Signal(int, int)  # (generation, step): branch B exists from this step
    replication_progress = Signal(int, int, str)  # steps done, steps in all, which run
    replication_finished = Signal(object)  # ReplicationResult
    replication_failed = Signal(str)  # an error, or "cancelled"
    #: A Task ended: (task id, True and its result | False and the exception). Private:
    #: ``submit`` routes it to the callbacks of the caller that asked.
    _task_finished = Signal(int, bool, object)

    def __init__(self, parent: Optional[QObject] = None, snapshot_hz: float = SNAPSHOT_HZ) -> None:
        super().__init__(parent)
        self.setObjectName("TrainingWorker")
        self._queue: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self._min_interval = 1.0 / snapshot_hz
        #: Set while the worker steps continuously; only the worker thread changes it.
        self._running = threading.Event()
        self._trainer: Any = None
        #: Branch B of a forked run (None until Fork); it steps right after the run, in this thread.
        self._fork: Any = None
        self._fork_sent = (-1, 0)  # (last step, events) of branch B sent to the GUI
        self._broken = False
        self._generation = 0
        self._pending_steps = 0
        self._sent_step = -1
        self._sent_events = 0
        self._last_emit = 0.0
        self._rate = _RateMeter()
        self._torch_ready = False
        #: Task id -> (on_done, on_error); touched by the GUI thread only.
        self._callbacks: dict[int, tuple[Optional[Callable[[Any], None]], Optional[Callable[[BaseException], None]]]] = {}
        self._task_ids = itertools.count(1)
        #: Set from the GUI thread to stop a replication between two steps.
        self._cancel_replication = threading.Event()
        self._task_finished.connect(self._on_task_finished)
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
            WarmUp: lambda _: self._warm_up(),
            _Wake: lambda _: None,
        }

    # ------------------------------------------------------ GUI-thread API
    def send(self, message: Any) -> None:
        """Queue a Command or a control message; it is handled before the next step."""
        self._queue.put(message)

    def reset_run(self, config: Optional[RunConfig], schedule: tuple[Scheduled, ...] = (), label: str = "", generation: int = 0) -> None:
        self.send(ResetRun(config, tuple(schedule), label, generation))

    def start_run(self) -> None:
        self.send(StartRun())

    def pause_run(self) -> None:
        self.send(PauseRun())

    def step_run(self, n: int = 1) -> None:
        self.send(StepRun(n))

    def export_session(self, path: str, zip_file: bool = False) -> None:
        self.send(ExportRequest(str(path), zip_file))

    def submit(
        self,
        fn: Callable[[Any], Any],
        on_done: Optional[Callable[[Any], None]] = None,
        on_error: Optional[Callable[[BaseException], None]] = None,
        *,
        on_trainer: bool = False,
    ) -> int:
        """Run ``fn(session)`` in the worker between steps; ``on_done(result)`` or
        ``on_error(exception)`` is then called in the GUI thread.

        With ``on_trainer=True``, ``fn`` gets the Trainer instead (read the live
        weights: theory, Jacobian) and must not change the run. Each task brings
        its own callbacks (Orange's ``concurrent.py`` does the same), so nothing
        dispatches results on a tag. Returns the task's id.
        """
        task_id = next(self._task_ids)
        self._callbacks[task_id] = (on_done, on_error)
        self.send(Task(task_id, fn, on_trainer))
        return task_id

    @Slot(int, bool, object)
    def _on_task_finished(self, task_id: int, ok: bool, payload: object) -> None:
        on_done, on_error = self._callbacks.pop(task_id, (None, None))
        callback = on_done if ok else on_error
        if callback is not None:
            callback(payload)
        elif not ok:
            log.error("background task %d failed and nobody handles it", task_id, exc_info=payload)  # type: ignore[arg-type]

    def request_preview(self, config: RunConfig) -> None:
        self.send(PreviewRequest(config.dataset, config.n_samples, config.noise, config.seed, config.test_fraction))

    def replicate(self, name: str, out: str, mode: str = "default") -> None:
        """Run replication ``name`` in this thread; progress and the result come back as signals."""
        self._cancel_replication.clear()
        self.send(ReplicationRequest(name, str(out), mode))

    def cancel_replication(self) -> None:
        """Stop a running replication at its next step (what is written so far stays)."""
        self._cancel_replication.set()

    def set_snapshot_hz(self, hz: float) -> None:
        """At most ``hz`` snapshots a second (the window lowers it when plots redraw rarely)."""
        self._min_interval = 1.0 / max(1.0, min(float(hz), SNAPSHOT_HZ))

    def is_running(self) -> bool:
        return self._running.is_set()

    def stop(self, timeout_ms: int = 5000) -> bool:
        """Ask the loop to end and wait for it (never ``terminate()``); True when it ended."""
        if not self.isRunning():
            return True
        self.requestInterruption()
        self._running.clear()
        self._cancel_replication.set()
        self._queue.put(_Wake())
        return self.wait(timeout_ms)

    # ------------------------------------------------------ worker thread
    def run(self) -> None:  # noqa: D401 - QThread API
        try:
            self._loop()
        except BaseException:  # noqa: BLE001 - never let an error kill the thread silently
            log.exception("the training thread stopped unexpectedly")
            self._running.clear()
            self.failed.emit("The training thread stopped unexpectedly:\n" + traceback.format_exc(limit=8))

    def _loop(self) -> None:
        while not self.isInterruptionRequested():
            self._drain(block=not self._wants_step())
            if self.isInterruptionRequested():
                break
            if self._wants_step():
                self._step_once()
            self._maybe_emit()

    def _wants_step(self) -> bool:
        t = self._trainer
        if t is None or self._broken or (t.finished and (self._fork is None or self._fork.finished)):
            return False
        return self._running.is_set() or self._pending_steps > 0

    def _drain(self, block: bool) -> None:
        if block:
            try:
                self._handle(self._queue.get(timeout=IDLE_POLL_S))
            except queue.Empty:
                return
        while not self.isInterruptionRequested():
            try:
                msg = self._queue.get_nowait()
            except queue.Empty:
                return
            self._handle(msg)

    def _handle(self, msg: Any) -> None:
        """Apply one message: a Command goes to the trainer, a control message to its handler."""
        try:
            if isinstance(msg, Command):
                self._apply(msg)
            else:
                self._handlers[type(msg)](msg)
        except ConfigError as exc:  # a config the engine refuses: its message says why
            self._fail(f"The configuration cannot run: {exc}")
        except Exception:  # noqa: BLE001 - report, keep the thread and the session
            log.exception("error while handling %s", type(msg).__name__)
            self._fail("Error while handling " + type(msg).__name__ + ":\n" + traceback.format_exc(limit=8))

    def _start(self, _: StartRun) -> None:
        t = self._trainer
        if t is not None and not self._broken and not self._all_finished():
            self._running.set()
            self._rate.clear()
            self._rate.mark(t.step_index)
        self._emit(force=True)

    def _pause(self, _: PauseRun) -> None:
        t = self._trainer
        if self._running.is_set() and t is not None and not t.finished:
            # An annotation (events.csv kind "pause"); a replay ignores it.
            t.session.add_event(t.step_index, "pause", "paused in the window")
        self._running.clear()
        self._pending_steps = 0
        self._emit(force=True)

    def _step_request(self, msg: StepRun) -> None:
        self._running.clear()
        self._pending_steps += max(0, int(msg.n))

    def _warm_up(self) -> None:
        if self._torch_ready:
            return
        import torch

        torch.set_num_threads(1)
        # No torch.optim here: GradSim's optimizers (gradsim/optimizers.py) never
        # construct one, so torch._dynamo (~2.4 s, imported by the first
        # torch.optim constructor) is never imported.
        from gradsim import trainer as _trainer  # noqa: F401

        self._torch_ready = True

    def _reset(self, msg: ResetRun) -> None:
        self._running.clear()
        self._pending_steps = 0
        self._trainer = None
        self._fork = None
        self._fork_sent = (-1, 0)
        self._broken = False
        self._generation = msg.generation
        self._sent_step = -1
        self._sent_events = 0
        self._rate.clear()
        if msg.config is None:
            return
        self._warm_up()
        from gradsim import trainer as trainer_module

        self._trainer = trainer_module.Trainer(msg.config, msg.schedule, label=msg.label)
        self._rate.mark(0)
        self._emit(force=True)

    def _all_finished(self) -> bool:
        t = self._trainer
        return t is None or (t.finished and (self._fork is None or self._fork.finished))

    def _fork_run(self, _: ForkRun) -> None:
        t = self._trainer
        if t is None or self._broken:
            self.command_failed.emit("Fork: no run is active; press Run first")
            return
        if self._fork is not None:
            self.command_failed.emit("Fork: the run is already forked into branches A and B")
            return
        if t.finished:
            self.command_failed.emit("Fork: the run has finished; fork a paused run")
            return
        from gradsim.fork import fork_trainer

        self._running.clear()
        self._pending_steps = 0
        step = int(t.step_index)
        self._fork = fork_trainer(t, note=f"fork of branch A at step {step}")
        t.session.add_event(step, "note", f"fork at step {step} (branch B starts here)")
        self._fork_sent = (-1, 0)
        self._emit(force=True)
        self.forked.emit(self._generation, step)

    def _branch_command(self, msg: BranchCommand) -> None:
        if msg.branch == 0:
            self._apply(msg.command)
            return
        b = self._fork
        if b is None:
            self.command_failed.emit(f"{msg.command.text()}: there is no branch B; press Fork first")
            return
        if b.finished:
            self.command_failed.emit(f"{msg.command.text()}: branch B has finished")
            return
        try:
            b.apply(msg.command)
        except CommandError as exc:
            self.command_failed.emit(f"branch B: {exc}")
            return
        self._emit(force=True)

    def _apply(self, command: Command) -> None:
        t = self._trainer
        if t is None or self._broken:
            self.command_failed.emit(f"{command.text()}: no run is active; press Run first")
            return
        if t.finished:
            self.command_failed.emit(f"{command.text()}: the run has finished; reset to start a new one")
            return
        try:
            t.apply(command)
        except CommandError as exc:
            self.command_failed.emit(str(exc))
            return
        self._emit(force=True)

    def _step_once(self) -> None:
        t = self._trainer
        b = self._fork
        try:
            # A forked run steps its branches alternately, in this one thread: A, then B.
            if not t.finished:
                t.step()
            if b is not None and not b.finished:
                b.step()
        except Exception as exc:  # noqa: BLE001 - the run stops, the thread and the session stay
            log.exception("training step %d failed", t.step_index)
            self._fail(f"Training step {t.step_index} failed: {type(exc).__name__}: {exc}\n\n" + traceback.format_exc(limit=8))
            return
        if self._pending_steps > 0:
            self._pending_steps -= 1
            if self._pending_steps == 0:
                self._emit(force=True)
        self._rate.mark(t.step_index)
        if self._all_finished():
            self._running.clear()
            self._pending_steps = 0
            self._emit(force=True)
            if t.diverged_at is not None:
                self.run_diverged.emit(int(t.diverged_at))
            self.run_finished.emit()

    def _fail(self, message: str) -> None:
        self._running.clear()
        self._pending_steps = 0
        if self._trainer is not None:
            self._broken = True  # keep the session: it can still be exported
            self._emit(force=True)
        self.failed.emit(message)

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
        running = self._running.is_set() and not b.finished and not self._broken
        self.snapshot.emit(
            Snapshot(
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
            )
        )

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
        loss = last.scalar("loss") if last is not None else float("nan")
        acc = last.scalar("accuracy") if last is not None else float("nan")
        self._last_emit = time.perf_counter()
        running = self._running.is_set() and not self._all_finished() and not self._broken
        self.snapshot.emit(
            Snapshot(
                generation=self._generation,
                rows=rows,
                step=int(t.step_index),
                total_steps=int(t.config.steps),
                steps_per_s=self._rate.rate() if running else 0.0,
                loss=loss,
                accuracy=acc,
                running=running,
                finished=bool(self._all_finished()),
                diverged_at=t.diverged_at,
                failed=self._broken,
            )
        )

    def _export(self, msg: ExportRequest) -> None:
        t = self._trainer
        if t is None:
            self.export_failed.emit("There is no session to export yet: press Run first.")
            return
        from gradsim.session_io import ExportError, export_session

        try:
            if self._fork is not None:
                from gradsim.fork import export_comparison

                path = export_comparison(t.session, self._fork.session, msg.path, zip_file=msg.zip_file)
            else:
                path = export_session(t.session, msg.path, zip_file=msg.zip_file)
        except ExportError as exc:
            self.export_failed.emit(str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - the session stays; the user may retry
            log.exception("export to %r failed", msg.path)
            self.export_failed.emit(f"cannot export session to {msg.path!r}: {exc}")
            return
        self.export_finished.emit(str(path))

    def _task(self, msg: Task) -> None:
        t = self._trainer
        if t is None:
            self._task_finished.emit(msg.id, False, NoRunError("There is no session yet: press Run first."))
            return
        try:
            result = msg.fn(t if msg.on_trainer else t.session)
        except Exception as exc:  # noqa: BLE001 - the caller's on_error shows it; the session is unchanged
            log.info("background task %d failed", msg.id, exc_info=True)
            self._task_finished.emit(msg.id, False, exc)
            return
        self._task_finished.emit(msg.id, True, result)

    def _replicate(self, msg: ReplicationRequest) -> None:
        """Many short runs of their own, each a standard session folder: the live run
        (if any) is paused first and stays as it was."""
        if self._running.is_set():
            self._pause(PauseRun())
        self._warm_up()
        from gradsim.replications import Cancelled, ReplicationError, get_replication, run_replication

        last = [0.0]

        def progress(done: int, total: int, text: str) -> None:
            now = time.perf_counter()
            if now - last[0] >= 0.1 or done >= total:  # at most ~10 updates a second
                last[0] = now
                self.replication_progress.emit(int(done), int(total), str(text))

        def should_stop() -> bool:
            return self._cancel_replication.is_set() or self.isInterruptionRequested()

        try:
            report = run_replication(get_replication(msg.name), msg.out, msg.mode, progress, should_stop)
        except Cancelled:
            self.replication_failed.emit("cancelled")
            return
        except (ReplicationError, ConfigError, OSError) as exc:
            self.replication_failed.emit(str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - report it; the thread and the live run stay
            log.exception("replication %s failed", msg.name)
            self.replication_failed.emit(f"{type(exc).__name__}: {exc}")
            return
        self.replication_finished.emit(
            ReplicationResult(report.name, bool(report.reproduced), report.verdict, str(report.out), str(report.figure),
                              str(report.csv), tuple(str(p) for p in report.sessions))
        )

    def _preview(self, msg: PreviewRequest) -> None:
        from gradsim.datasets import make_dataset

        data = make_dataset(msg.dataset, msg.n_samples, msg.noise, msg.seed, msg.test_fraction)
        x = np.asarray(data.x_train, np.float64)
        note = ""
        if x.shape[1] > 2:
            # First two principal components: a faithful 2-D shadow of the 64-D digits.
            xc = x - x.mean(axis=0)
            _, _, vt = np.linalg.svd(xc, full_matrices=False)
            x = xc @ vt[:2].T
            note = f"{data.n_inputs}-D inputs; shown: first 2 principal components"
        self.preview_ready.emit(Preview(msg.dataset, x.astype(np.float32), np.asarray(data.y_train), data.n_inputs, note))


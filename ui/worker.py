"""The one background thread: it owns the run for the window and relays it as Qt signals.

Why this shape: pyqtgraph paints from Python, so a training thread in the
window's process waits for the interpreter lock whenever a plot redraws
(benchmarks/RESULTS.md 4.6). So the torch work runs in a *child process*
(``gradsim.service.child`` serving ``gradsim.service.loop``, Qt-free): this
QThread starts it, sends it the window's requests down a pipe (the typed
messages of ``gradsim.service.protocol``) and turns every report that comes back
(snapshots, export done/failed, previews, fork, replication progress, task
results, divergence, the end, failures) into the same signals as before, so
RunController and the panels keep their API and painting never competes with
training for the lock, only for a core.

The rest of docs/architecture.md (processes and threads) holds as before: the GUI thread never runs a
training step; GUI -> engine through a ``queue.SimpleQueue`` of plain-data
messages applied between steps (a second toggle never overwrites the first);
engine -> GUI only through signals carrying copies, at most ~30 snapshots a second.

If no child process can be started (a locked-down machine, a broken frozen
build), the same loop runs in this thread instead, as it did before; the
window says so (``engine_notice``). If the child dies, the window gets one
clear message (``failed`` and ``engine_lost``), keeps what it shows, and the
next message (Reset / Run) starts a new child.
"""
from __future__ import annotations

import itertools
import logging
import os
import pickle
import queue
import threading
import traceback
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Optional

from PySide6.QtCore import QObject, QThread, Signal, Slot

from gradsim.commands import Scheduled
from gradsim.config import DATASETS, RunConfig
# Only the messages at module level: the loop and the child's start-up are imported by the
# relay thread when it needs them (the fallback, a new engine), never by the window's modules.
from gradsim.service.protocol import (  # noqa: F401 - the message types, re-exported for the window's modules
    SNAPSHOT_HZ, BranchCommand, CancelReplication, CommandFailed, Diverged, ExportFailed, ExportFinished,
    ExportRequest, Failed, Finished, Forked, ForkFailed, ForkRun, NoRunError, PauseRun, Preview, PreviewRequest,
    Ready, ReplicationFailed, ReplicationProgress, ReplicationRequest, ReplicationResult, Report, Request,
    PacePaused, ResetRun, RunDropped, SetPace, SetSnapshotRate, Shutdown, Snapshot, StartRun, StepRun, Task, TaskDone, WarmUp,
)
from gradsim.session.store import Session

log = logging.getLogger(__name__)

#: Where the engine runs: "process" (a child process; the default) or "thread" (in this
#: thread, sharing the interpreter lock with the plots). GRADSIM_ENGINE overrides it.
ENGINE_ENV = "GRADSIM_ENGINE"
#: How long a closing window waits for the engine to end by itself before ending it.
CHILD_EXIT_S = 3.0


class EngineLostError(RuntimeError):
    """The engine process ended while a task was waiting for it."""


@dataclass(frozen=True)
class ExportMirror:
    """Export the window's mirror of a run whose engine died (handled in the relay thread:
    the mirror is what is left of that run, and nothing writes to it any more)."""

    session: Session
    branch: Optional[Session]
    path: str
    zip_file: bool = False


def engine_mode_wanted() -> str:
    mode = os.environ.get(ENGINE_ENV, "process").strip().lower() or "process"
    if mode not in ("process", "thread"):
        log.warning("%s=%r: use 'process' or 'thread'; using 'process'", ENGINE_ENV, mode)
        return "process"
    return mode


class TrainingWorker(QThread):
    """Owns the run's engine; every public method is safe to call from the GUI thread."""

    snapshot = Signal(object)  # Snapshot
    run_diverged = Signal(int)  # step at which the run diverged
    run_finished = Signal()
    failed = Signal(str)  # an unexpected error: the run is stopped, the thread lives on
    command_failed = Signal(str)  # a Command the trainer refused (CommandError text)
    export_finished = Signal(str)  # path written
    export_failed = Signal(str)  # ExportError text; the session is unchanged
    preview_ready = Signal(object)  # Preview
    forked = Signal(int, int)  # (generation, step): branch B exists from this step
    fork_failed = Signal(int, str)  # (generation, why): the engine refused a Fork; nothing changed
    replication_progress = Signal(int, int, str)  # steps done, steps in all, which run
    replication_finished = Signal(object)  # ReplicationResult
    replication_failed = Signal(str)  # an error, or "cancelled"
    paced_pause = Signal(int, int, str)  # (generation, step, why): SetPace's pause stopped the run
    #: The engine is ready (torch imported): its process id (this process's in thread mode).
    engine_ready = Signal(int)
    #: Something the user should know about where training runs (e.g. the in-thread fallback).
    engine_notice = Signal(str)
    #: The engine process ended unexpectedly (the message also goes out as ``failed``).
    engine_lost = Signal(str)
    #: A Task ended: (task id, True and its result | False and the exception). Private:
    #: ``submit`` routes it to the callbacks of the caller that asked.
    _task_finished = Signal(int, bool, object)

    def __init__(self, parent: Optional[QObject] = None, snapshot_hz: float = SNAPSHOT_HZ, mode: Optional[str] = None) -> None:
        super().__init__(parent)
        self.setObjectName("TrainingWorker")
        self._queue: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self._min_interval = 1.0 / snapshot_hz
        self._mode_wanted = mode or engine_mode_wanted()
        #: "process" or "thread" once the engine runs ("" before).
        self.engine_mode = ""
        #: The engine process's id while one runs (None otherwise).
        self.engine_pid: Optional[int] = None
        #: How many engine processes this worker started (a restart after a crash adds one).
        self.engines_started = 0
        self._ready = threading.Event()
        self._proc: Any = None
        self._conn: Any = None
        import multiprocessing as mp

        # A pipe only to wake the relay's wait() when the GUI queues a message.
        self._wake_r, self._wake_w = mp.Pipe(duplex=False)
        self._backlog: deque = deque()
        #: The engine's last reported running state (its snapshots say; read by the GUI thread).
        self._running_seen = False
        #: Task id -> (on_done, on_error); touched by the GUI thread only.
        self._callbacks: dict[int, tuple[Optional[Callable[[Any], None]], Optional[Callable[[BaseException], None]]]] = {}
        #: Ids of tasks sent and not answered (the relay answers them itself if the engine dies).
        self._outstanding: set[int] = set()
        self._outstanding_lock = threading.Lock()
        self._task_ids = itertools.count(1)
        self._task_finished.connect(self._on_task_finished)

    # ------------------------------------------------------ GUI-thread API
    def send(self, message: Any) -> None:
        """Queue a Command or a control message; it is handled before the next step."""
        self._queue.put(message)
        if self.engine_mode != "thread":  # the in-thread loop reads the queue itself
            try:
                self._wake_w.send_bytes(b"w")
            except OSError:  # closed at shutdown: nobody is listening any more
                pass

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

    def export_mirror(self, session: Session, branch: Optional[Session], path: str, zip_file: bool = False) -> None:
        """Export what the window holds of a run whose engine died (``export_finished``/``export_failed`` follow)."""
        self.send(ExportMirror(session, branch, str(path), zip_file))

    def submit(
        self,
        fn: Callable[[Any], Any],
        on_done: Optional[Callable[[Any], None]] = None,
        on_error: Optional[Callable[[BaseException], None]] = None,
        *,
        on_trainer: bool = False,
    ) -> int:
        """Run ``fn(session)`` in the engine between steps; ``on_done(result)`` or
        ``on_error(exception)`` is then called in the GUI thread.

        ``fn`` travels to the engine process by pickle: a module-level function
        (of a Qt-free module: ``gradsim.service.tasks``) or a ``functools.partial``
        of one; a lambda or a bound method raises TypeError here. With
        ``on_trainer=True``, ``fn`` gets the Trainer instead (read the live
        weights: Jacobian, what the network learns) and must not change the run.
        The result comes back pickled. Returns the task's id.
        """
        try:
            pickle.dumps(fn)
        except Exception as exc:  # any pickling error means the same thing
            raise TypeError(f"a task for the engine must be picklable (a module-level function or a functools.partial of one): {fn!r}: {exc}") from None
        task_id = next(self._task_ids)
        self._callbacks[task_id] = (on_done, on_error)
        with self._outstanding_lock:
            self._outstanding.add(task_id)
        self.send(Task(task_id, fn, on_trainer))
        return task_id

    @Slot(int, bool, object)
    def _on_task_finished(self, task_id: int, ok: bool, payload: object) -> None:
        on_done, on_error = self._callbacks.pop(task_id, (None, None))
        if ok:
            if on_done is not None:
                on_done(payload)
            return
        error = payload if isinstance(payload, BaseException) else RuntimeError(f"the task failed: {payload!r}")
        if on_error is not None:
            on_error(error)
        else:
            log.error("background task %d failed and nobody handles it", task_id, exc_info=error)

    def request_preview(self, config: RunConfig) -> None:
        if config.dataset not in DATASETS:
            return  # a sequence task has no 2-D points to preview (the builder describes it in words)
        self.send(PreviewRequest(config.dataset, config.n_samples, config.noise, config.seed, config.test_fraction))

    def replicate(self, name: str, out: str, mode: str = "default") -> None:
        """Run replication ``name`` in the engine; progress and the result come back as signals."""
        self.send(ReplicationRequest(name, str(out), mode))

    def cancel_replication(self) -> None:
        """Stop a running replication at its next step (what is written so far stays)."""
        self.send(CancelReplication())

    def set_snapshot_hz(self, hz: float) -> None:
        """At most ``hz`` snapshots a second (the window lowers it when plots redraw rarely)."""
        self._min_interval = 1.0 / max(1.0, min(float(hz), SNAPSHOT_HZ))
        self.send(SetSnapshotRate(hz))

    def is_running(self) -> bool:
        """The engine steps continuously (as its last snapshot said)."""
        return self._running_seen

    @property
    def ready(self) -> bool:
        """The engine has imported torch and takes work."""
        return self._ready.is_set()

    @property
    def shares_interpreter(self) -> bool:
        """Training runs in this process (the fallback): plots and training share the interpreter lock."""
        return self.engine_mode == "thread"

    def stop(self, timeout_ms: int = 5000) -> bool:
        """End the engine and this thread and wait for both (never ``QThread.terminate()``);
        True when they ended. A child that does not end by itself is ended."""
        if not self.isRunning():
            return True
        self.requestInterruption()
        self.send(Shutdown())
        return self.wait(timeout_ms)

    # ------------------------------------------------------ relay thread
    def run(self) -> None:  # QThread API
        try:
            if self._mode_wanted == "process" and self._start_child(first=True):
                self._relay()
            elif not self.isInterruptionRequested():
                self._serve_here()
        except BaseException:  # never let an error kill the thread silently
            log.exception("the training thread stopped unexpectedly")
            self._running_seen = False
            self.failed.emit("The training thread stopped unexpectedly:\n" + traceback.format_exc(limit=8))
        finally:
            self._end_child()
            self._ready.clear()

    def _serve_here(self) -> None:
        """The fallback: the engine loop in this thread, reading the GUI's queue directly."""
        self.engine_mode = "thread"
        self.engine_pid = os.getpid()
        from gradsim.service.loop import EngineLoop, warm_up

        warm_up()
        self._ready.set()
        self.engine_ready.emit(os.getpid())
        loop = EngineLoop(_BacklogInbox(self._backlog, self._queue), self._dispatch, 1.0 / self._min_interval)
        loop.add_handler(ExportMirror, self._export_mirror)
        loop.run()

    def _start_child(self, first: bool = False) -> bool:
        """Start an engine process and wait for its READY; False (logged, said) when none starts."""
        from gradsim.service import child as engine_child

        try:
            proc, conn = engine_child.start_engine_process(1.0 / self._min_interval)
        except Exception as exc:  # any failure to start means the fallback
            log.warning("starting the engine process failed", exc_info=True)
            return self._no_child(f"{type(exc).__name__}: {exc}", first)
        self.engines_started += 1
        from multiprocessing.connection import wait

        report: Any = None
        while report is None:
            if self.isInterruptionRequested():
                self._proc, self._conn = proc, conn  # run() ends it
                return False
            ready = wait([conn, proc.sentinel], timeout=0.2)
            try:
                if conn in ready or (proc.sentinel in ready and conn.poll()):
                    report = conn.recv()
                    if not isinstance(report, Ready):
                        raise EOFError(f"it said {type(report).__name__} before it was ready")
                elif proc.sentinel in ready:
                    raise EOFError("it ended")
            except (EOFError, OSError) as exc:
                proc.join(1.0)
                conn.close()
                why = f"{exc}; " if str(exc) else ""
                return self._no_child(f"{why}{engine_child.describe_exit(proc.exitcode)} before it was ready", first)
        self._proc, self._conn = proc, conn
        self.engine_mode = "process"
        self.engine_pid = int(report.pid)
        self._ready.set()
        log.info("training engine process %d started (%s)", self.engine_pid, engine_child.start_method())
        self.engine_ready.emit(self.engine_pid)
        return True

    def _no_child(self, why: str, first: bool) -> bool:
        text = (f"The training engine could not start as a separate process ({why}); training runs inside the "
                "window's process instead, and plots redraw less often while it trains.")
        log.warning("%s", text)
        if first:
            self.engine_notice.emit(text)
        return False

    def _relay(self) -> None:
        """Wait on the child's pipe, its exit and the GUI's wake-ups; relay both ways."""
        from multiprocessing.connection import wait

        while not self.isInterruptionRequested():
            waitables = [self._wake_r]
            if self._conn is not None:
                waitables += [self._conn, self._proc.sentinel]
            ready = wait(waitables, timeout=0.5)
            if self._wake_r in ready:
                while self._wake_r.poll():
                    self._wake_r.recv_bytes()
            if self._conn is not None and (self._conn in ready or self._proc.sentinel in ready):
                self._receive()
            if self.isInterruptionRequested():
                break
            if not self._forward():
                # No new engine could be started: serve the rest of the session here.
                self._serve_here()
                return
        # Closing: tell the engine (the Shutdown is in the queue or the backlog).
        self._forward(closing=True)

    def _receive(self) -> None:
        """Every report the child has written; its end (EOF or exit) -> ``_child_died``."""
        conn = self._conn
        while conn is not None:
            try:
                if not conn.poll():
                    break
                report = conn.recv()
            except (EOFError, OSError):
                self._child_died()
                return
            except Exception:  # a report that cannot be read: say so, keep relaying
                log.exception("a report from the engine could not be read")
                continue
            self._dispatch(report)
        if conn is not None and self._proc is not None and not self._proc.is_alive():
            self._child_died()

    def _forward(self, closing: bool = False) -> bool:
        """GUI messages -> the engine, in order; a new engine first if the last one died.

        False: no engine could be started (the caller falls back to this thread).
        """
        while True:
            if self._backlog:
                msg = self._backlog.popleft()
            else:
                try:
                    msg = self._queue.get_nowait()
                except queue.Empty:
                    return True
            if isinstance(msg, ExportMirror):
                self._export_mirror(msg)
                continue
            if self._conn is None:
                if closing or isinstance(msg, (Shutdown, CancelReplication, SetSnapshotRate, WarmUp)):
                    continue  # nothing to tell a dead engine; a new one starts with the current rate
                if not self._start_child():
                    self._backlog.appendleft(msg)
                    return False
            try:
                self._conn.send(msg)
            except (BrokenPipeError, ConnectionResetError, EOFError):
                self._receive()  # what it said last, then its end
                if self._conn is not None:
                    self._child_died()
                self._answer_task(msg, EngineLostError("the training engine ended before it got this task"))
            except Exception as exc:  # cannot be pickled: tell whoever asked
                log.exception("cannot send %s to the engine", type(msg).__name__)
                if not self._answer_task(msg, exc):
                    self.failed.emit(f"{type(msg).__name__} could not be sent to the training engine: {exc}")

    def _answer_task(self, msg: Any, exc: BaseException) -> bool:
        if not isinstance(msg, Task):
            return False
        with self._outstanding_lock:
            self._outstanding.discard(msg.id)
        self._task_finished.emit(msg.id, False, exc)
        return True

    def _child_died(self) -> None:
        """The engine process ended without being asked: one clear message; waiting tasks get an error."""
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        self._ready.clear()
        self._running_seen = False
        self.engine_pid = None
        if conn is not None:
            conn.close()
        if proc is not None:
            proc.join(1.0)
        from gradsim.service.child import describe_exit

        how = describe_exit(proc.exitcode if proc is not None else None)
        log.error("the training engine process ended unexpectedly (%s)", how)
        message = (f"The training engine stopped unexpectedly ({how}). What the window shows is kept and can be "
                   "exported; press Run to start again in a new engine.")
        with self._outstanding_lock:
            waiting, self._outstanding = sorted(self._outstanding), set()
        for task_id in waiting:
            self._task_finished.emit(task_id, False, EngineLostError(message))
        self.engine_lost.emit(message)
        self.failed.emit(message)

    def _end_child(self) -> None:
        """Ask the engine to end, then end it if it does not (no orphan processes)."""
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        self.engine_pid = None
        if proc is None:
            return
        try:
            if conn is not None:
                conn.send(Shutdown())
        except (OSError, EOFError, ValueError):
            pass
        proc.join(CHILD_EXIT_S)
        if proc.is_alive():
            log.warning("the training engine did not end within %.0f s; ending it", CHILD_EXIT_S)
            proc.terminate()
            proc.join(2.0)
        if proc.is_alive():
            proc.kill()
            proc.join(2.0)
        if conn is not None:
            conn.close()
        try:
            proc.close()
        except ValueError:  # still running after kill(): nothing more this process can do
            log.error("the training engine process %s could not be ended", proc.pid)

    def _dispatch(self, report: Report) -> None:
        """One report of the engine -> the matching signal (in this thread; Qt queues it to the GUI)."""
        match report:
            case Snapshot():
                if report.branch == 0:
                    self._running_seen = bool(report.running)
                self.snapshot.emit(report)
            case TaskDone(task_id, ok, payload):
                if self.engine_mode == "process":
                    try:
                        payload = pickle.loads(payload)
                    except Exception as exc:  # the caller still gets an answer
                        log.exception("the result of task %d could not be read", task_id)
                        ok, payload = False, RuntimeError(f"the task's result could not be read: {exc}")
                with self._outstanding_lock:
                    self._outstanding.discard(task_id)
                self._task_finished.emit(task_id, ok, payload)
            case RunDropped():
                self._running_seen = False
            case Finished():
                self._running_seen = False
                self.run_finished.emit()
            case Diverged(step):
                self.run_diverged.emit(step)
            case Failed(message):
                self.failed.emit(message)
            case CommandFailed(message):
                self.command_failed.emit(message)
            case ExportFinished(path):
                self.export_finished.emit(path)
            case ExportFailed(message):
                self.export_failed.emit(message)
            case Preview():
                self.preview_ready.emit(report)
            case Forked(generation, step):
                self.forked.emit(generation, step)
            case ForkFailed(generation, message):
                self.fork_failed.emit(generation, message)
            case ReplicationProgress(done, total, text):
                self.replication_progress.emit(done, total, text)
            case ReplicationResult():
                self.replication_finished.emit(report)
            case ReplicationFailed(message):
                self.replication_failed.emit(message)
            case PacePaused(generation, step, why):
                self.paced_pause.emit(generation, step, why)
            case _:
                log.warning("unknown report from the engine: %r", type(report).__name__)

    def _export_mirror(self, msg: ExportMirror) -> None:
        from gradsim.session.io import ExportError, export_session

        try:
            if msg.branch is not None:
                from gradsim.train.fork import export_comparison

                path = export_comparison(msg.session, msg.branch, msg.path, zip_file=msg.zip_file)
            else:
                path = export_session(msg.session, msg.path, zip_file=msg.zip_file)
        except ExportError as exc:
            self.export_failed.emit(str(exc))
            return
        except Exception as exc:  # the mirror stays; the user may retry
            log.exception("export of the window's copy to %r failed", msg.path)
            self.export_failed.emit(f"cannot export session to {msg.path!r}: {exc}")
            return
        self.export_finished.emit(str(path))



class _BacklogInbox:
    """The fallback's inbox (gradsim.service.loop.Inbox): messages the relay had not yet sent
    anywhere come first, then the GUI's queue."""

    def __init__(self, backlog: deque, q: "queue.SimpleQueue[Any]") -> None:
        self._backlog = backlog
        self._q = q

    def get(self, timeout: float) -> Any:
        return self._backlog.popleft() if self._backlog else self._q.get(timeout=timeout)

    def get_nowait(self) -> Any:
        return self._backlog.popleft() if self._backlog else self._q.get_nowait()

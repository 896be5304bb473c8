"""The engine's serving loop: one Trainer (two after a fork) driven by typed messages. No Qt.

Why a loop of its own, apart from the window: pyqtgraph paints from Python, so
every frame the window draws holds the interpreter lock that a training
thread in the same process needs (benchmarks/RESULTS.md 4.6). Served from a
*child process* (child.py), training and painting share nothing but a core:
the window sends requests down a pipe and gets every report back through it.
The same loop also runs in a thread of the window's process (the fallback
when no child can be started), so both paths behave alike and are tested alike.

The loop talks to its owner through two small interfaces only:

- an *inbox* (:class:`Inbox`) with ``get(timeout)`` / ``get_nowait()`` that
  raise ``queue.Empty`` when nothing waits and ``EOFError`` when the owner is gone;
- an ``emit(report)`` callable taking one report of protocol.py, so nothing
  here knows about Qt signals or pipes.

Requests are handled only between steps (a toggle applies at the next step);
snapshots carry copies of the new rows at most ``snapshot_hz`` times a second.
See docs/architecture.md#the-service.
"""
from __future__ import annotations

import logging
import queue
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol

import numpy as np

from ..commands import COMMAND_KINDS, Annotate, Command, CommandError
from ..config import ConfigError
from .protocol import (
    SNAPSHOT_HZ, BranchCommand, CancelReplication, CommandFailed, Diverged, ExportFailed, ExportFinished,
    ExportRequest, Failed, Finished, Forked, ForkFailed, ForkRun, NoRunError, PauseRun, PreviewRequest,
    Readouts, ReplicationFailed, ReplicationProgress, ReplicationRequest, ReplicationResult, Report, ResetRun, RunDropped,
    PacePaused, SetPace, SetSnapshotRate, Shutdown, Snapshot, StartRun, StepRun, Task, TaskDone, WarmUp,
)

log = logging.getLogger(__name__)

#: How long an idle loop blocks on its inbox before looking again.
IDLE_POLL_S = 0.05
#: Readouts (an eigenvalue solve of W_hh among them) are sent at most this often.
READOUT_PERIOD_S = 0.5


class Inbox(Protocol):
    """Where the loop reads its requests (a queue in the fallback, the pipe in the child)."""

    def get(self, timeout: float) -> Any: ...

    def get_nowait(self) -> Any: ...


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


class OwnerGone(Exception):
    """The owner asked the loop to end (Shutdown) or went away (EOF); raised by an inbox or an outbox to end the loop."""


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

    def __init__(self, inbox: Inbox, emit: Callable[[Report], None], snapshot_hz: float = SNAPSHOT_HZ) -> None:
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
        self._fork_sent = (-1, 0, -1)  # (last row's step, events, step index) of branch B sent
        self._broken = False
        self._generation = 0
        self._pending_steps = 0
        self._sent_step = -1
        self._sent_events = 0
        #: The step index the last snapshot reported: once the store thins, most steps add no
        #: row, and the step and loss the window shows must move on all the same.
        self._sent_index = -1
        self._units_sent = False
        self._last_emit = 0.0
        #: When readouts were last sent and for which step: an eigenvalue solve is not for every snapshot.
        self._readouts_at: tuple[float, tuple[int, int]] = (-1.0, (-1, -1))
        self._rate = RateMeter()
        #: Branch B's own meter: after A ends (diverged, say) B goes on, and its speed is what trains.
        self._fork_rate = RateMeter()
        self._pace = SetPace()
        #: A toggle was applied between steps since the last step (pause_on_toggle pauses after the next one).
        self._toggled = False
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
        except OwnerGone:
            pass

    def _next(self, block: bool, timeout: float = IDLE_POLL_S) -> Any:
        """The next message (deferred ones first); raises queue.Empty or OwnerGone."""
        if self._deferred:
            return self._deferred.popleft()
        try:
            return self._inbox.get(timeout) if block else self._inbox.get_nowait()
        except (EOFError, OSError):
            raise OwnerGone from None

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
        except OwnerGone:
            raise
        except ConfigError as exc:  # a config the engine refuses: its message says why
            self._fail(f"The configuration cannot run: {exc}")
        except Exception:  # report, keep the loop and the session
            log.exception("error while handling %s", type(msg).__name__)
            self._fail("Error while handling " + type(msg).__name__ + ":\n" + traceback.format_exc(limit=8))

    def add_handler(self, kind: type, handler: Callable[[Any], None]) -> None:
        """Serve one more message type (the owner's own, e.g. an export of its copy)."""
        self._handlers[kind] = handler

    def emit(self, report: Report) -> None:
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

    def _pace_pause(self, diverged_before: tuple, toggles_before: int) -> str:
        """Why SetPace stops the run after this step ("" to go on). A run that is not forked
        ends where it diverges; a forked one goes on with the other branch, unless asked to pause."""
        t, b = self._trainer, self._fork
        if self._pace.pause_at is not None and t.step_index == self._pace.pause_at:
            return f"paused at step {t.step_index:,} as asked"
        if self._pace.pause_on_divergence and b is not None:
            for name, x, before in (("A", t, diverged_before[0]), ("B", b, diverged_before[1])):
                if before is None and x.diverged_at is not None:
                    return f"branch {name} diverged at step {x.diverged_at:,}"
        toggled, self._toggled = self._toggled, False
        if self._pace.pause_on_toggle and (toggled or len(self._command_events()) > toggles_before):
            last = self._command_events()[-1]
            return f"{last.kind} = {last.value} applied at step {last.step:,}"
        return ""

    def _command_events(self) -> list:
        """The changes (toggles, scheduled events) recorded so far in every branch, in order."""
        out = []
        for x in (self._trainer, self._fork):
            if x is not None:
                out += [e for e in x.session.events if e.kind in COMMAND_KINDS]
        return out

    def _start(self, _: StartRun) -> None:
        t = self._trainer
        if t is not None and not self._broken and not self._all_finished():
            self._running = True
            self._rate.clear()
            self._rate.mark(t.step_index)
            self._fork_rate.clear()
            if self._fork is not None:
                self._fork_rate.mark(self._fork.step_index)
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
        self._fork_sent = (-1, 0, -1)
        self._broken = False
        self._toggled = False
        self._generation = msg.generation
        self._sent_step = -1
        self._sent_events = 0
        self._sent_index = -1
        self._units_sent = False
        self._readouts_at = (-1.0, (-1, -1))
        self._rate.clear()
        self._fork_rate.clear()
        self.emit(RunDropped(self._generation))
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
            self.emit(ForkFailed(self._generation, "Fork: no run is active; press Run first"))
            return
        if self._fork is not None:
            self.emit(ForkFailed(self._generation, "Fork: the run is already forked into branches A and B"))
            return
        if t.finished:
            self.emit(ForkFailed(self._generation, "Fork: the run has finished; fork a paused run"))
            return
        from ..train.fork import fork_trainer

        self._running = False
        self._pending_steps = 0
        step = int(t.step_index)
        self._fork = fork_trainer(t, note=f"fork of branch A at step {step}")
        t.session.add_event(step, "note", f"fork at step {step} (branch B starts here)")
        self._fork_sent = (-1, 0, -1)
        self._fork_rate.clear()
        self._fork_rate.mark(step)
        self._emit(force=True)
        self.emit(Forked(self._generation, step))

    def _branch_command(self, msg: BranchCommand) -> None:
        if msg.branch == 0:
            self._apply(msg.command)
            return
        b = self._fork
        if b is None:
            self.emit(CommandFailed(f"{msg.command.text()}: there is no branch B; press Fork first"))
            return
        if b.finished:
            self.emit(CommandFailed(f"{msg.command.text()}: branch B has finished"))
            return
        try:
            b.apply(msg.command)
        except CommandError as exc:
            self.emit(CommandFailed(f"branch B: {exc}"))
            return
        self._toggled = self._toggled or not isinstance(msg.command, Annotate)  # a prediction changes nothing
        self._emit(force=True)

    def _apply(self, command: Command) -> None:
        t = self._trainer
        if t is None or self._broken:
            self.emit(CommandFailed(f"{command.text()}: no run is active; press Run first"))
            return
        if t.finished:
            self.emit(CommandFailed(f"{command.text()}: the run has finished; reset to start a new one"))
            return
        try:
            t.apply(command)
        except CommandError as exc:
            self.emit(CommandFailed(str(exc)))
            return
        self._toggled = self._toggled or not isinstance(command, Annotate)  # a prediction changes nothing
        self._emit(force=True)

    # ------------------------------------------------------ stepping
    def _step_once(self) -> None:
        t = self._trainer
        b = self._fork
        now = time.perf_counter()
        self.step_times.append((int(t.step_index), now))
        diverged_before = (t.diverged_at, b.diverged_at if b is not None else None)
        toggles_before = len(self._command_events()) if self._pace.pause_on_toggle else 0
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
        if b is not None:
            self._fork_rate.mark(b.step_index)
        why = self._pace_pause(diverged_before, toggles_before) if self._running and not self._all_finished() else ""
        if why:
            self._running = False
            t.session.add_event(t.step_index, "pause", why)  # an annotation, as a pause in the window
            self._emit(force=True)
            self.emit(PacePaused(self._generation, int(t.step_index), why))
        if self._all_finished():
            self._running = False
            self._pending_steps = 0
            self._emit(force=True)
            if t.diverged_at is not None:
                self.emit(Diverged(int(t.diverged_at)))
            self.emit(Finished())

    def _fail(self, message: str) -> None:
        self._running = False
        self._pending_steps = 0
        if self._trainer is not None:
            self._broken = True  # keep the session: it can still be exported
            self._emit(force=True)
        self.emit(Failed(message))

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
        index = int(b.step_index)
        sent_step, sent_events, sent_index = self._fork_sent
        if not force and index == sent_index and n_events == sent_events:
            return
        rows = session.rows_after(sent_step, sent_events)
        self._fork_sent = (int(rows.steps[-1]) if len(rows) else sent_step, n_events, index)
        last = session.latest()  # the last step trained, even where thinning kept no row of it
        running = self._running and not b.finished and not self._broken
        self.emit(Snapshot(
            generation=self._generation,
            rows=rows,
            step=int(b.step_index),
            total_steps=int(b.config.steps),
            steps_per_s=self._fork_rate.rate() if running else 0.0,
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
        index = int(t.step_index)
        if not force and index == self._sent_index and n_events == self._sent_events:
            return
        rows = session.rows_after(self._sent_step, self._sent_events)
        if len(rows):
            self._sent_step = int(rows.steps[-1])
        self._sent_events = n_events
        self._sent_index = index
        last = session.latest()  # the last step trained, even where thinning kept no row of it
        self._last_emit = time.perf_counter()
        running = self._running and not self._all_finished() and not self._broken
        units = None if self._units_sent else tuple(session.units)
        self._units_sent = True
        readouts = self._readouts(t, force)
        self.emit(Snapshot(
            generation=self._generation,
            rows=rows,
            step=int(t.step_index),
            total_steps=int(t.config.steps),
            steps_per_s=self._rate.rate() if running and not t.finished else 0.0,
            loss=last.scalar("loss") if last is not None else float("nan"),
            accuracy=last.scalar("accuracy") if last is not None else float("nan"),
            running=running,
            finished=bool(self._all_finished()),
            diverged_at=t.diverged_at,
            failed=self._broken,
            units=units,
            readouts=readouts,
        ))

    def _readouts(self, t: Any, force: bool) -> Optional[Readouts]:
        """The run's readouts, at most every READOUT_PERIOD_S (and when forced), after a step or an event only."""
        at, key = self._readouts_at
        now = time.perf_counter()
        index = int(t.step_index)
        if (index, len(t.session.events)) == key or (not force and now - at < READOUT_PERIOD_S):
            return None  # nothing trained or changed since (a command changes weights without a step)
        self._readouts_at = (now, (index, len(t.session.events)))
        clipped = t.session.column("clipped")
        radius = getattr(t.net, "spectral_radius", None)
        return Readouts(
            step=index,
            clipped_fraction=float(np.mean(clipped)) if len(clipped) else float("nan"),
            spectral_radius=float(radius()) if callable(radius) else None,
        )

    # ------------------------------------------------------ work on request
    def _export(self, msg: ExportRequest) -> None:
        t = self._trainer
        if t is None:
            self.emit(ExportFailed("There is no session to export yet: press Run first."))
            return
        from ..session.io import ExportError, export_session

        try:
            if self._fork is not None:
                from ..train.fork import export_comparison

                path = export_comparison(t.session, self._fork.session, msg.path, zip_file=msg.zip_file)
            else:
                path = export_session(t.session, msg.path, zip_file=msg.zip_file)
        except ExportError as exc:
            self.emit(ExportFailed(str(exc)))
            return
        except Exception as exc:  # the session stays; the user may retry
            log.exception("export to %r failed", msg.path)
            self.emit(ExportFailed(f"cannot export session to {msg.path!r}: {exc}"))
            return
        self.emit(ExportFinished(str(path)))

    def _task(self, msg: Task) -> None:
        t = self._trainer
        if t is None:
            self.emit(TaskDone(msg.id, False, NoRunError("There is no session yet: press Run first.")))
            return
        try:
            result = msg.fn(t if msg.on_trainer else t.session)
        except Exception as exc:  # the caller's on_error shows it; the session is unchanged
            log.info("background task %d failed", msg.id, exc_info=True)
            self.emit(TaskDone(msg.id, False, exc))
            return
        self.emit(TaskDone(msg.id, True, result))

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
                self.emit(ReplicationProgress(int(done), int(total), str(text)))

        try:
            report = run_replication(get_replication(msg.name), msg.out, msg.mode, progress, self._should_stop_replication)
        except Cancelled:
            self.emit(ReplicationFailed("cancelled"))
            return
        except (ReplicationError, ConfigError, OSError) as exc:
            self.emit(ReplicationFailed(str(exc)))
            return
        except Exception as exc:  # report it; the loop and the live run stay
            log.exception("replication %s failed", msg.name)
            self.emit(ReplicationFailed(f"{type(exc).__name__}: {exc}"))
            return
        finally:
            self._cancel_replication = False
        self.emit(ReplicationResult(
            report.name, bool(report.reproduced), report.verdict, str(report.out), str(report.figure),
            str(report.csv), tuple(str(p) for p in report.sessions)))

    def _preview(self, msg: PreviewRequest) -> None:
        from .tasks import preview

        self.emit(preview(msg))


# ------------------------------------------------------------------ the in-thread inbox
class QueueInbox:
    """An inbox over a ``queue.SimpleQueue`` (the in-thread engine)."""

    def __init__(self, q: "queue.SimpleQueue[Any]") -> None:
        self._q = q

    def get(self, timeout: float) -> Any:
        return self._q.get(timeout=timeout)

    def get_nowait(self) -> Any:
        return self._q.get_nowait()

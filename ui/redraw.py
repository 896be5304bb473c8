"""Redraw pacing: when the plots redraw from the mirror session while a run trains.

Why a module of its own: pacing is a policy (how the GUI thread shares the
machine with training), not a part of the window or of the run model. It
watches the RunController and tells the plot panel when to refresh.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

from PySide6.QtCore import QObject, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu

from .run_controller import RunController, RunState

#: Fastest plot redraw period (ms): ~30 Hz, independent of the training speed.
REDRAW_MS = 33
#: After an event (a toggle, a scheduled change, the start) the plots redraw this soon,
#: so its effect shows within a second even when frames are spaced further apart.
EVENT_FRAME_DELAY_S = 0.4


@dataclass(frozen=True)
class RedrawMode:
    """How plots share the machine with training (View > Plot updates while training).

    While a run goes on, the next redraw waits until the GUI thread's CPU time
    since the last one is at most ``budget`` of the wall time passed, but never
    longer than ``max_gap_s``: expensive frames are spaced out, cheap ones come
    up to ~30 a second. Paused or finished, plots redraw at full speed.

    Two sets of numbers, because what a frame costs training depends on where
    training runs. Normally it runs in its own process (ui/worker.py), so a
    frame costs it only a share of a core: the budget is the GUI's own core and
    ``max_gap_s`` keeps plots live (>= 10 redraws a second). In the fallback,
    training runs in a thread of this process, and every millisecond the GUI
    thread paints from Python holds the interpreter lock training needs: the
    ``shared_*`` numbers keep the GUI's share small there.
    """

    key: str
    label: str
    tip: str
    budget: float  # fraction of the GUI thread's time; 1.0 = no limit
    max_gap_s: float
    snapshot_hz: float
    shared_budget: float  # the same, when training shares this process's interpreter lock
    shared_max_gap_s: float
    shared_snapshot_hz: float

    def pacing(self, shared: bool) -> tuple[float, float, float]:
        """(budget, max gap, snapshots per second) for training in a child process or, ``shared``, in this one."""
        if shared:
            return self.shared_budget, self.shared_max_gap_s, self.shared_snapshot_hz
        return self.budget, self.max_gap_s, self.snapshot_hz


# max_gap_s 0.06 = two 33 ms timer ticks: at least ~15 redraws a second whatever a frame costs.
REDRAW_MODES: dict[str, RedrawMode] = {
    m.key: m
    for m in (
        RedrawMode("fast", "Fastest training (plots 15 or more a second)",
                   "Training runs in its own process; plots redraw 15 to 30 times a second, using at most about a "
                   "quarter of one core, so training keeps its headless speed. (If training had to run inside the "
                   "window's process, the event log says so and plots redraw every few seconds instead.)",
                   0.25, 0.06, 20.0, 0.05, 4.0, 10.0),
        RedrawMode("balanced", "Balanced (plots up to 30 a second)",
                   "Plots redraw up to 30 times a second, using up to about half of one core; on a busy machine "
                   "training may slow down a little.",
                   0.5, 0.06, 30.0, 0.2, 1.0, 20.0),
        RedrawMode("smooth", "Smoothest plots (30 a second)",
                   "Plots redraw 30 times a second whatever they cost; on a small or busy machine training slows down.",
                   1.0, 0.033, 30.0, 0.45, 0.5, 30.0),
    )
}
DEFAULT_REDRAW_MODE = "fast"


class RedrawPacer(QObject):
    """Redraws ``refresh(mirror, force)`` from the run's mirror on a ~30 Hz timer, paced by a RedrawMode."""

    #: The plots were redrawn from the mirror.
    frame_drawn = Signal()
    #: The redraw mode changed (its key).
    mode_changed = Signal(str)

    def __init__(self, run: RunController, refresh: Callable[..., object], visible: Callable[[], bool], parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.run = run
        self._refresh = refresh
        self._visible = visible
        self.mode = REDRAW_MODES[DEFAULT_REDRAW_MODE]
        self.frames = 0
        #: GUI-thread CPU seconds between the last two frames (the frame and all else meanwhile).
        self.frame_cost_s = 0.0
        self._dirty = False
        self._frame_wall = 0.0
        self._frame_cpu = 0.0
        self._event_frame_at = 0.0
        self._seen = (0, 0)  # (rows, events) of the mirror when last marked dirty
        run.mirror_updated.connect(self._on_mirror_updated)
        run.events_arrived.connect(self._on_events_arrived)
        run.run_started.connect(self._on_run_started)
        run.worker.engine_ready.connect(self._on_engine_ready)
        self._budget, self._max_gap_s, _ = self.mode.pacing(False)
        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self._on_timer)
        self._timer.start()

    def set_mode(self, key: str) -> RedrawMode:
        """Choose how often plots redraw while training; the worker sends snapshots to match."""
        self.mode = REDRAW_MODES[key]
        self._apply_pacing()
        self._frame_wall = 0.0  # the next frame may come at once
        self.mode_changed.emit(key)
        return self.mode

    def _apply_pacing(self) -> None:
        self._budget, self._max_gap_s, hz = self.mode.pacing(self.run.worker.shares_interpreter)
        self.run.worker.set_snapshot_hz(hz)

    @Slot(int)
    def _on_engine_ready(self, _pid: int) -> None:
        # Where training runs is known now (its own process, or this one: the fallback).
        self._apply_pacing()

    def stop(self) -> None:
        self._timer.stop()

    def refresh_now(self) -> None:
        """Redraw at once, whatever the pacing (headless screenshots, tests, Save PNG)."""
        if self.run.mirror is not None:
            self._refresh(self.run.mirror, force=True)
            self._dirty = False
            self.frame_drawn.emit()

    @Slot(int)
    def _on_mirror_updated(self, _generation: int) -> None:
        mirror = self.run.mirror
        seen = (len(mirror), len(mirror.events)) if mirror is not None else (0, 0)
        if seen != self._seen:  # new rows or events: a frame is worth drawing
            self._seen = seen
            self._dirty = True

    @Slot(list)
    def _on_events_arrived(self, _events: list) -> None:
        # A change to the run: show its effect soon, whatever the pacing says
        # (events are rare, so this costs little).
        if self._event_frame_at == 0.0:
            self._event_frame_at = time.perf_counter() + EVENT_FRAME_DELAY_S

    @Slot(object)
    def _on_run_started(self, _config: object) -> None:
        self._seen = (0, 0)
        self._dirty = True

    @Slot()
    def _on_timer(self) -> None:
        mirror = self.run.mirror
        if not self._dirty or mirror is None or len(mirror) == 0 or not self._visible():
            return  # nothing new, or no step recorded yet (plots were reset when the run started)
        now = time.perf_counter()
        cpu = time.thread_time()
        event_due = self._event_frame_at > 0.0 and now >= self._event_frame_at
        if self.run.state is RunState.RUNNING and not event_due:
            # Everything this thread spent since the last frame began (that frame's
            # refresh and paint, snapshots, status, other panels) must be paid for at
            # the mode's budget before the next frame (unless max_gap_s has passed):
            # the GUI's share of a core (or, in the fallback, of the interpreter
            # lock) stays under it, whatever a frame happens to cost.
            spent = cpu - self._frame_cpu
            if now - self._frame_wall < min(self._max_gap_s, spent / self._budget):
                return
        self.frame_cost_s = cpu - self._frame_cpu if self._frame_wall else 0.0
        self._event_frame_at = 0.0
        self._dirty = False
        self._frame_wall = now
        self._frame_cpu = cpu
        self._refresh(mirror)
        self.frames += 1
        self.frame_drawn.emit()


def add_redraw_menu(menu: QMenu, pacer: RedrawPacer) -> dict[str, QAction]:
    """View > Plot updates while training: one checkable action per mode, following the pacer."""
    sub = menu.addMenu("Plot updates while training")
    sub.setToolTipsVisible(True)
    group = QActionGroup(sub)
    actions: dict[str, QAction] = {}
    for mode in REDRAW_MODES.values():
        a = QAction(mode.label, sub, checkable=True)
        a.setToolTip(mode.tip)
        a.setStatusTip(mode.tip)
        a.triggered.connect(lambda _checked=False, key=mode.key: pacer.set_mode(key))
        group.addAction(a)
        sub.addAction(a)
        actions[mode.key] = a
    actions[pacer.mode.key].setChecked(True)
    pacer.mode_changed.connect(lambda key: actions[key].setChecked(True))
    return actions

"""The "What the network learns" dock: built on first use, fed by the worker at a pace training can afford.

Why the pacing: the grid's forward pass (40 x 40 points) costs about as much
as a few training steps. It runs in the engine between steps (through
``worker.submit``, as ``gradsim.service.tasks.learned``), only while the dock is visible, and the next one is asked
for no sooner than ``cost / MAX_SHARE`` after the last, so it takes at most
``MAX_SHARE`` of the training thread whatever the net's size (the issue's
budget is 5 %; benchmarks/boundary_overhead.py measured more than the share
alone on a loaded machine, hence the margin).
"""
from __future__ import annotations

import logging
import time
from typing import Any, Optional

from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QMainWindow

from gradsim.service import tasks as engine_tasks

from .host import DockHost
from .run_controller import RunState

log = logging.getLogger(__name__)

#: Largest share of the training thread's time the panel may use.
MAX_SHARE = 0.02
#: And never more often than this (the plots' own pace in the balanced mode).
MIN_PERIOD_S = 0.5


class LearnedController(QObject):
    """View > What the network learns: the dock, its requests to the worker and their pacing.

    ``window`` holds the dock; ``host`` adds it and gives the run (see ui/host.py).
    """

    def __init__(self, window: QMainWindow, host: DockHost) -> None:
        super().__init__(window)
        self._window = window
        self.host = host
        self.run = host.run
        self.dock: Optional[QDockWidget] = None
        self.panel: Any = None
        self.pending = False
        self.next_at = 0.0
        #: Worker seconds the last computation took (for the pacing and the benchmark).
        self.last_cost_s = 0.0
        self.done_at = 0.0
        self.requests = 0
        self.action = QAction("What the network &learns", window, checkable=True)
        tip = ("Show what the network has learned: class regions over the input plane with the training points "
               "(2-D data), or a confusion matrix (digits).")
        self.action.setToolTip(tip)
        self.action.setStatusTip(tip)
        self.action.toggled.connect(self._on_action_toggled)
        self.run.mirror_updated.connect(self._on_mirror_updated)
        self.run.state_changed.connect(self._on_state_changed)
        self.run.run_started.connect(self._on_cleared)
        self.run.run_reset.connect(self._on_cleared)
        self.run.session_opened.connect(self._on_session_opened)

    # ------------------------------------------------------------ dock on demand
    def ensure_dock(self) -> QDockWidget:
        """Build the panel and its dock the first time they are wanted (not at start-up)."""
        if self.dock is None:
            from .plots.learned import LearnedPanel

            self.panel = LearnedPanel()
            self.dock = self.host.add_dock("What the network learns", "learnedDock", self.panel, Qt.DockWidgetArea.RightDockWidgetArea,
                                         listed=False)  # the View menu lists self.action, which shows it
            self.dock.visibilityChanged.connect(self._on_visibility_changed)
            # A side panel, not the main view: the plots keep most of the width.
            self._window.resizeDocks([self.dock], [max(260, self._window.width() // 5)], Qt.Orientation.Horizontal)
            self.dock.toggleViewAction().toggled.connect(self._sync_action)
        return self.dock

    def show(self) -> None:
        dock = self.ensure_dock()
        dock.show()
        dock.raise_()
        self.action.setChecked(True)
        self.request()

    @property
    def visible(self) -> bool:
        return self.dock is not None and self.dock.isVisible()

    # ------------------------------------------------------------ requests
    def request(self) -> bool:
        """Ask the worker for a fresh grid or matrix now (False when none can be made)."""
        if self.pending or not self.visible or self.run.mirror is None or not self.run.state.has_run:
            return False
        self.pending = True
        self.requests += 1
        generation = self.run.generation
        self.run.worker.submit(engine_tasks.learned, lambda r: self._on_result(generation, r),
                               lambda e: self._on_failed(generation, e), on_trainer=True)
        return True

    def _on_result(self, generation: int, result: tuple[Any, float]) -> None:
        self.pending = False
        data, cost = result
        self.last_cost_s = cost
        self.done_at = time.monotonic()
        self.next_at = self.done_at + max(MIN_PERIOD_S, cost / MAX_SHARE)
        if generation != self.run.generation or self.panel is None:
            return
        from gradsim.teaching.learned import BoundaryGrid

        if isinstance(data, BoundaryGrid):
            self.panel.set_grid(data)
        else:
            self.panel.set_confusion(data)

    def _on_failed(self, generation: int, exc: BaseException) -> None:
        self.pending = False
        self.next_at = time.monotonic() + MIN_PERIOD_S
        if generation == self.run.generation and self.panel is not None:
            log.info("what-the-network-learns failed: %s", exc)
            self.panel.reset(f"Not available: {exc}")

    # ------------------------------------------------------------ slots
    @Slot(int)
    def _on_mirror_updated(self, _generation: int) -> None:
        if self.visible and not self.pending and time.monotonic() >= self.next_at:
            self.request()

    @Slot(object)
    def _on_state_changed(self, state: RunState) -> None:
        if state in (RunState.PAUSED, RunState.FINISHED) and self.visible:
            self.next_at = 0.0
            self.request()  # the final weights, whatever the pace

    @Slot(object)
    def _on_cleared(self, *_: object) -> None:
        self.next_at = 0.0
        if self.panel is not None:
            self.panel.reset()

    @Slot(object)
    def _on_session_opened(self, _session: object) -> None:
        if self.panel is not None:
            self.panel.reset("A saved session holds no weights: press Re-run to train it again and watch what it learns.")

    @Slot(bool)
    def _on_action_toggled(self, on: bool) -> None:
        if on:
            self.show()
        elif self.dock is not None:
            self.dock.hide()

    @Slot(bool)
    def _sync_action(self, on: bool) -> None:
        if self.action.isChecked() != on:
            self.action.blockSignals(True)
            self.action.setChecked(on)
            self.action.blockSignals(False)

    @Slot(bool)
    def _on_visibility_changed(self, visible: bool) -> None:
        if visible:
            self.request()

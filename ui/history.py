"""Step back through the recorded history while paused: the plots show an earlier step; the run is untouched.

Why a view, not a rewind: a student who paused right after a toggle wants to
look at the steps just before it, then go on training from where the run is.
So this only chooses how many of the recorded rows the plots draw (the same
prefix the saved-session slider draws, branch B cut at the same step); the
run, its mirror and the engine never change, and Resume (or a new step)
returns the plots to the latest step.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
from PySide6.QtCore import QObject, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget

from gradsim.session.store import Session

from .host import StatusSink
from .run_controller import Progress, RunController, RunState, session_prefix

#: States in which the plots may show an earlier step (a run that does not train now).
STILL = (RunState.PAUSED, RunState.FINISHED, RunState.FAILED)


class HistoryScrubber(QObject):
    """Step back / forward / back to the latest (Run menu; Alt+Left, Alt+Right, Alt+End)."""

    def __init__(self, parent: QWidget, run: RunController, status: StatusSink, refresh: Callable[[], None]) -> None:
        super().__init__(parent)
        self.run = run
        self._status = status
        self._refresh = refresh
        #: How many recorded rows the plots draw (None: all, the latest step).
        self.rows: Optional[int] = None
        self._cache: Optional[tuple[tuple, Session, Optional[Session]]] = None
        self.back_action = QAction("Step &back (history)", parent)
        self.back_action.setShortcut(QKeySequence("Alt+Left"))
        self.back_action.setToolTip("While paused: show the plots one recorded step earlier (the run is not changed). (Alt+Left)")
        self.back_action.triggered.connect(lambda: self.back(1))
        self.forward_action = QAction("Step f&orward (history)", parent)
        self.forward_action.setShortcut(QKeySequence("Alt+Right"))
        self.forward_action.setToolTip("While looking back: show one recorded step later. (Alt+Right)")
        self.forward_action.triggered.connect(lambda: self.forward(1))
        self.latest_action = QAction("Back to the &latest step", parent)
        self.latest_action.setShortcut(QKeySequence("Alt+End"))
        self.latest_action.setToolTip("Show the run's latest step again. (Alt+End)")
        self.latest_action.triggered.connect(self.latest)
        self.actions = [self.back_action, self.forward_action, self.latest_action]
        run.state_changed.connect(self._on_state_changed)
        run.progress_changed.connect(self._on_progress_changed)
        self._step_seen = -1
        self._on_state_changed(run.state)

    # ------------------------------------------------------------ moving
    def _can(self) -> bool:
        return self.run.state in STILL and self.run.mirror is not None and len(self.run.mirror) > 0

    def back(self, k: int = 1) -> bool:
        """Show ``k`` recorded steps earlier (False: nothing to go back to, or the run trains)."""
        if not self._can():
            self._status.showMessage("Step back works while the run is paused: press Pause (Space) first.", 5000)
            return False
        n = len(self.run.mirror)  # type: ignore[arg-type]
        cur = self.rows if self.rows is not None else n
        if cur <= 1:
            return False
        self.rows = max(1, cur - k)
        self._show()
        return True

    def forward(self, k: int = 1) -> bool:
        if self.rows is None or not self._can():
            return False
        self.rows += k
        if self.rows >= len(self.run.mirror):  # type: ignore[arg-type]
            self.rows = None
        self._show()
        return True

    @Slot()
    def latest(self) -> None:
        if self.rows is not None:
            self.rows = None
            self._show()

    def _show(self) -> None:
        self._refresh()
        mirror = self.run.mirror
        if mirror is None:
            return
        if self.rows is None:
            self._status.showMessage(f"Showing the latest step ({mirror.steps_run:,} steps done).", 5000)
        else:
            step = int(mirror.steps[self.rows - 1])
            self._status.showMessage(
                f"Looking back: the plots show step {step:,} of {int(mirror.steps[-1]):,}; the run is unchanged. "
                "Alt+Right goes forward, Alt+End to the latest, Resume trains on from the latest.", 15000)

    # ------------------------------------------------------------ what the plots draw
    def apply(self, mirror: Session, branch: Optional[Session]) -> tuple[Session, Optional[Session]]:
        """The sessions the plots draw: the run's, or their prefixes while looking back."""
        n = self.rows
        if n is None or self.run.state not in STILL or n >= len(mirror):
            return mirror, branch
        key = (id(mirror), len(mirror), id(branch), len(branch) if branch is not None else 0, n)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1], self._cache[2]
        a = session_prefix(mirror, n)
        b = branch
        if branch is not None:
            k = int(np.searchsorted(branch.steps, mirror.steps[n - 1], side="right"))
            b = session_prefix(branch, k) if 0 < k < len(branch) else (branch if k >= len(branch) else None)
        self._cache = (key, a, b)
        return a, b

    # ------------------------------------------------------------ following the run
    @Slot(object)
    def _on_state_changed(self, state: RunState) -> None:
        still = state in STILL
        for a in self.actions:
            a.setEnabled(still)
        if not still and self.rows is not None:
            self.rows = None  # training again (or a saved session opened): the latest step
            self._cache = None

    @Slot(object)
    def _on_progress_changed(self, p: Progress) -> None:
        if p.step != self._step_seen:
            self._step_seen = p.step
            if self.rows is not None:  # a new step was trained (Step): show it
                self.rows = None
                self._cache = None

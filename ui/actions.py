"""The window's actions: a helper that makes one, and the Run/Step/Reset trio that follows the run.

Why the trio has a class: whether Run reads "Run", "Pause" or "Resume", and
whether Run and Step are enabled, depends on the run's state and on the
builder's validity. ``RunActions`` listens to both, so no other code sets them.
"""
from __future__ import annotations

from typing import Callable, Optional

from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QStyle, QWidget

from .panels.tips import TIPS
from .run_controller import RunController, RunState


def make_action(parent: QWidget, text: str, tip_key: str, slot: Callable[[], object], shortcut: Optional[str] = None,
                icon: Optional[QStyle.StandardPixmap] = None) -> QAction:
    """An action with the tooltip of ``TIPS[tip_key]`` (naming its shortcut) and a status tip."""
    a = QAction(text, parent)
    if icon is not None:
        a.setIcon(parent.style().standardIcon(icon))
    if shortcut:
        a.setShortcut(QKeySequence(shortcut))
    tip = TIPS[tip_key]
    a.setToolTip(f"{tip} ({shortcut})" if shortcut and f"({shortcut})" not in tip else tip)
    a.setStatusTip(tip)
    a.triggered.connect(slot)
    return a


class RunActions(QObject):
    """Run/Pause, Step and Reset, kept in step with the RunController and the builder."""

    def __init__(self, parent: QWidget, run: RunController, is_valid: Callable[[], bool],
                 toggle: Callable[[], object], step: Callable[[], object], reset: Callable[[], object]) -> None:
        super().__init__(parent)
        self.run = run
        self._widget = parent
        self._is_valid = is_valid
        sp = QStyle.StandardPixmap
        self.run_action = make_action(parent, "&Run", "run", toggle, "Space", sp.SP_MediaPlay)
        self.step_action = make_action(parent, "&Step", "step", step, "S", sp.SP_MediaSeekForward)
        self.reset_action = make_action(parent, "R&eset", "reset", reset, "R", sp.SP_BrowserReload)
        for a in self.actions():
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        run.state_changed.connect(self._on_state_changed)

    def actions(self) -> list[QAction]:
        return [self.run_action, self.step_action, self.reset_action]

    @Slot(object)
    def _on_state_changed(self, state: RunState) -> None:
        valid = self._is_valid()
        running = state is RunState.RUNNING
        self.step_action.setEnabled(state.live or valid)
        self.run_action.setText("&Pause" if running else "&Resume" if state is RunState.PAUSED else "&Run")
        sp = QStyle.StandardPixmap
        self.run_action.setIcon(self._widget.style().standardIcon(sp.SP_MediaPause if running else sp.SP_MediaPlay))
        self.run_action.setEnabled(state.live or valid)

    @Slot(bool)
    def on_validity_changed(self, valid: bool) -> None:
        """The builder's config became valid or invalid: a new run can (not) start."""
        if not self.run.live:
            self.run_action.setEnabled(valid)
            self.step_action.setEnabled(valid)

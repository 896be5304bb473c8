"""The window's status bar: run state, step, speed, loss and accuracy, from the RunController.

A view of the run model: it listens to the controller's signals and never
changes the run. Widths fit typical texts, so a changing number does not
re-lay out the window; styles change only when the state's look changes
(restyling costs a re-polish).

Messages (``showMessage``) go to a label that fills the space the permanent
labels leave and elides what does not fit, with the whole text on hover:
QStatusBar's own message is cut off mid-word under the permanent labels at
1280 x 720 (a followed session's "Following DIR: step N, training…").
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QStatusBar, QWidget

from .pace_controls import rate_text
from .run_controller import Progress, RunController, RunState

#: How many of the last rows the held-out read-out looks through (more than any stats interval's rows).
HELD_OUT_LOOKBACK = 20_000
_DIVERGED_STYLE = "QLabel { color: white; background: #d32f2f; font-weight: bold; padding: 0 6px; border-radius: 3px; }"
_STATE_STYLE = "QLabel { font-weight: bold; padding: 0 6px; }"
_STATE_TEXT = {
    RunState.IDLE: "ready",
    RunState.RUNNING: "running",
    RunState.PAUSED: "paused",
    RunState.FINISHED: "finished",
    RunState.FAILED: "stopped by an error",
    RunState.VIEWING: "saved session (read-only)",
}


#: A run that needs more than this many seconds to finish gets a time estimate.
ETA_FROM_S = 20.0


def eta_text(steps_left: int, steps_per_s: float) -> str:
    """'~3 min left' for a slow run ('' when it ends within ETA_FROM_S or the rate is unknown)."""
    if steps_left <= 0 or not steps_per_s > 0:
        return ""
    s = steps_left / steps_per_s
    if s < ETA_FROM_S:
        return ""
    if s < 90:
        return f"~{s:.0f} s left"
    if s < 90 * 60:
        return f"~{s / 60:.0f} min left"
    h, m = divmod(round(s / 60), 60)
    return f"~{h} h {m} min left" if m else f"~{h} h left"


class ElidedLabel(QLabel):
    """One line of text, elided at the right to the label's width; the whole text on hover when cut."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self._full = ""
        # Ignored: the label takes the width the layout gives it, never asks for its text's.
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(40)
        self.setTextFormat(Qt.TextFormat.PlainText)

    def full_text(self) -> str:
        return self._full

    def set_full_text(self, text: str) -> None:
        self._full = text
        self._elide()

    def is_elided(self) -> bool:
        return super().text() != self._full

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        room = max(0, self.contentsRect().width())
        shown = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, room) if self._full else ""
        if super().text() != shown:
            self.setText(shown)
        self.setToolTip(self._full if shown != self._full else "")


class RunStatusBar(QStatusBar):
    """Status bar with permanent labels that follow a RunController."""

    def __init__(self, run: RunController, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.run = run
        self._state_style = ""
        self.state_label = QLabel()
        self.step_label = QLabel("step –")
        self.rate_label = QLabel("– steps/s")
        self.loss_label = QLabel("loss –")
        self.acc_label = QLabel("batch accuracy –")
        self.held_label = QLabel("held-out –")
        self.state_label.setToolTip("What the run is doing; turns red when the gradients became non-finite (diverged).")
        self.step_label.setToolTip("Optimizer steps done so far, of the run's maximum.")
        self.rate_label.setToolTip("Training speed in the background thread (plots redraw at ~30 Hz regardless).")
        self.loss_label.setToolTip("Training loss of the latest step's batch.")
        self.acc_label.setToolTip("Training accuracy of the latest step's batch (the examples it trained on).")
        self.held_label.setToolTip("Accuracy on the held-out split (examples never trained on), measured every "
                                   "stats interval: the number that says whether the network generalizes.")
        self.message_label = ElidedLabel()
        self._message = ""
        self._message_timer = QTimer(self)
        self._message_timer.setSingleShot(True)
        self._message_timer.timeout.connect(self.clearMessage)
        self.addWidget(self.message_label, 1)
        fm = self.fontMetrics()
        samples = ("step 100,000 / 100,000", "10,000 steps/s, ~59 min left", "loss 0.00001234", "batch accuracy 100.0%", "held-out 100.0%")
        for w, sample in zip((self.step_label, self.rate_label, self.loss_label, self.acc_label, self.held_label), samples):
            w.setMinimumWidth(fm.horizontalAdvance(sample) + 12)
            self.addPermanentWidget(w)
        self.addPermanentWidget(self.state_label)
        run.state_changed.connect(self._on_state_changed)
        run.progress_changed.connect(self._on_progress_changed)
        run.run_diverged.connect(self._on_run_diverged)
        run.session_opened.connect(self._on_session_opened)
        self._show_state()

    def add_button(self, widget: QWidget) -> None:
        """A permanent widget left of the step label (e.g. a button the message asks for)."""
        self.insertPermanentWidget(1, widget)  # index 0 is the message label

    # ------------------------------------------------------------ messages
    def showMessage(self, text: str, timeout: Optional[int] = 0) -> None:
        """Show ``text`` (for ``timeout`` ms; 0: until the next message), elided to the room left."""
        super().clearMessage()  # a status tip Qt showed itself would hide the label
        self._message = text
        self.message_label.set_full_text(text)
        if timeout is not None and timeout > 0:
            self._message_timer.start(timeout)
        else:
            self._message_timer.stop()
        self.messageChanged.emit(text)

    @Slot()
    def clearMessage(self) -> None:
        super().clearMessage()
        self._message_timer.stop()
        if self._message:
            self._message = ""
            self.message_label.set_full_text("")
            self.messageChanged.emit("")

    def currentMessage(self) -> str:
        """The message shown: a status tip Qt shows itself (a hovered menu item), else the last showMessage's."""
        return super().currentMessage() or self._message

    @Slot(object)
    def _on_state_changed(self, _state: object) -> None:
        self._show_state()

    @Slot(object)
    def _on_session_opened(self, _session: object) -> None:
        self._show_state()

    @Slot(int)
    def _on_run_diverged(self, _step: int) -> None:
        self._show_state()

    @Slot(object)
    def _on_progress_changed(self, p: Progress) -> None:
        steps = f"step {p.step:,}" if p.branch_steps is None else f"A step {p.branch_steps[0]:,}, B step {p.branch_steps[1]:,}"
        self.step_label.setText(steps + (f" / {p.total:,}" if p.total else ""))
        rate = rate_text(p.steps_per_s) if p.steps_per_s > 0 else "– steps/s"
        left = eta_text(p.total - p.step, p.steps_per_s) if p.total else ""
        self.rate_label.setText(rate + (f", {left}" if left else ""))
        self.loss_label.setText(f"loss {p.loss:.4g}" if not math.isnan(p.loss) else "loss –")
        self.acc_label.setText(f"batch accuracy {p.accuracy:.1%}" if math.isfinite(p.accuracy) else "batch accuracy –")
        held = self.held_out()
        self.held_label.setText(f"held-out {held:.1%}" if math.isfinite(held) else "held-out –")

    def held_out(self) -> float:
        """The latest held-out accuracy of the run shown (NaN: none measured yet)."""
        mirror = self.run.mirror
        if mirror is None or len(mirror) == 0:
            return math.nan
        col = mirror.column("test_accuracy")
        tail = col[-HELD_OUT_LOOKBACK:]  # measured every stats interval: almost always near the end
        finite = np.flatnonzero(np.isfinite(tail))
        if not len(finite):
            tail = col
            finite = np.flatnonzero(np.isfinite(col))
        return float(tail[finite[-1]]) if len(finite) else math.nan

    def _show_state(self) -> None:
        # A watched session has no training speed here and no held-out split: their labels
        # would only say "–" and take the room its messages need.
        viewed = self.run.viewed if self.run.state is RunState.VIEWING else None
        watched = viewed is not None and viewed.model == "watched"
        self.rate_label.setVisible(not watched)
        self.held_label.setVisible(not watched)
        diverged = self.run.diverged_at
        if diverged is not None:
            style, text = _DIVERGED_STYLE, f"diverged at step {diverged}"
        else:
            style, text = _STATE_STYLE, _STATE_TEXT[self.run.state]
        if style != self._state_style:
            self._state_style = style
            self.state_label.setStyleSheet(style)
        if self.state_label.text() != text:
            self.state_label.setText(text)

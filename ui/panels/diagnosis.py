"""View > Diagnosis: what the shown session says (vanishing, exploding, dead units, ...) and the fixes.

The panel shows exactly what ``gradsim diagnose`` prints for the session on
screen (a live run, an opened session, a followed watched run), so a student
reads the same verdict in the window and in a terminal. It refreshes at a low
rate (every REFRESH_MS, and only when the session gained rows or events and the
panel is visible): the diagnosis reads the whole session, which costs more
than a frame, and a verdict does not change from one step to the next.
"""
from __future__ import annotations

import logging
from typing import Any, Optional

from PySide6.QtCore import QObject, Qt, QTimer, Slot
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QDockWidget, QLabel, QPlainTextEdit, QVBoxLayout, QWidget

from gradsim.session.store import Session
from gradsim.teaching.diagnose import HEALTHY, Diagnosis, diagnose

log = logging.getLogger(__name__)

#: The panel recomputes the diagnosis at most this often.
REFRESH_MS = 2000
#: What the panel says before any step is recorded.
EMPTY_TEXT = "No session yet: start a run, open a session or follow a running one (File menu)."


class DiagnosisPanel(QWidget):
    """The verdict in one line, then the findings, units, numbers and fixes (``diagnose().text()``)."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.verdict = QLabel("")
        self.verdict.setWordWrap(True)
        self.verdict.setTextFormat(Qt.TextFormat.RichText)
        self.verdict.setToolTip("What the session shows now (the same rules as `gradsim diagnose`; docs/watch.md).")
        self.body = QPlainTextEdit()
        self.body.setReadOnly(True)
        self.body.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.body.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.body.setToolTip("Each finding with its units and numbers, when it started, and the fixes in the order to try them.")
        layout.addWidget(self.verdict)
        layout.addWidget(self.body, 1)
        #: The diagnosis shown (None: no session).
        self.diagnosis: Optional[Diagnosis] = None
        self.show_diagnosis(None)

    def show_diagnosis(self, d: Optional[Diagnosis]) -> None:
        self.diagnosis = d
        if d is None:
            self.verdict.setText("")
            self.body.setPlainText(EMPTY_TEXT)
            return
        colour = "#2e7d32" if d.verdict == [HEALTHY] else "#c62828"
        self.verdict.setText(f"<b style='color:{colour}'>{', '.join(d.verdict)}</b>"
                             f" <span style='color:gray'>(steps {d.window[0]:,}-{d.window[1]:,})</span>")
        if self.body.toPlainText() != d.text():
            self.body.setPlainText(d.text())

    def text(self) -> str:
        """What the panel says (``diagnose(session).text()`` when a session is shown)."""
        return self.body.toPlainText()


class DiagnosisController(QObject):
    """The Diagnosis dock (tabbed with the event log), listed in the View menu, refreshed on new data."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self._window = window
        self.run = window.run
        self.panel = DiagnosisPanel()
        self.dock: QDockWidget = window.add_dock("Diagnosis", "diagnosisDock", self.panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        window.tabifyDockWidget(window.event_dock, self.dock)
        window.event_dock.raise_()
        self._seen: tuple = ()
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self._on_timer)
        self.timer.start()
        self.dock.visibilityChanged.connect(self._on_visibility)
        self.run.session_opened.connect(self._on_session_opened)
        self.run.run_reset.connect(self.refresh_now)

    def _key(self, s: Optional[Session]) -> tuple:
        if s is None:
            return (None,)
        return (id(s), len(s), len(s.events), int(s.steps[-1]) if len(s) else -1)

    def refresh_now(self) -> None:
        """Diagnose the session on screen now (tests, the panel coming into view)."""
        mirror = self.run.mirror
        self._seen = self._key(mirror)
        if mirror is None or len(mirror) == 0:
            self.panel.show_diagnosis(None)
            return
        try:
            self.panel.show_diagnosis(diagnose(mirror))
        except Exception:  # a diagnosis bug must never take the window down; say so in the panel
            log.exception("diagnosing the session failed")
            self.panel.show_diagnosis(None)
            self.panel.body.setPlainText("The diagnosis failed on this session (see the log file).")

    @Slot()
    def _on_timer(self) -> None:
        if self.dock.isVisible() and not self.panel.visibleRegion().isEmpty() and self._key(self.run.mirror) != self._seen:
            self.refresh_now()

    @Slot(bool)
    def _on_visibility(self, visible: bool) -> None:
        if visible:
            self.refresh_now()

    @Slot(object)
    def _on_session_opened(self, session: Session) -> None:
        # A watched run is what a student opens to ask "what is wrong with my model": show the answer.
        if session.model == "watched":
            self.dock.show()
            self.dock.raise_()
        self.refresh_now()

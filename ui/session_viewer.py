"""File > Open session: show an exported session read-only, scrub it, re-run it.

Why a module of its own: opening is a second way to fill the plots (besides a
live run) with its own life cycle: a background load (a long session's CSVs
take seconds to parse), a clear message when the file is not a session (the
current run is untouched, because nothing changes until the load succeeded),
a step slider, and "Re-run" that turns the file back into a live run from its
config and events. The run model shows the file through
``RunController.view``; this object only loads, scrubs and asks. A session
folder or .zip dropped on the window opens the same way (the window's drag
events are handed here).
"""
from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Optional

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow, QSlider, QToolBar, QToolButton

from gradsim.commands import Scheduled
from gradsim.config import ConfigError, RunConfig
from gradsim.session.ops import SessionOpenError, load_saved_run, one_line, session_schedule
from gradsim.session.store import Session

from .host import ViewerHost
from .panels.builder import watched_text
from .run_controller import RunState

log = logging.getLogger(__name__)

#: Shown where Re-run would be for a session that cannot be trained again.
NOT_REPLAYABLE = "not replayable (gradsim.watch)"


def replayable(session: Session) -> bool:
    """Whether Re-run can train ``session`` again: a watched run's model lives in the user's script."""
    return session.meta.get("replayable", True) is not False and session.model != "watched"

#: The slider redraws at most this often while dragged (a prefix of a long session costs a few ms).
SCRUB_MS = 60


def dropped_path(event: Any) -> Optional[str]:
    """The one local file or folder a drag carries, or None (several, or not local)."""
    mime = event.mimeData()
    if mime is None or not mime.hasUrls():
        return None
    urls = [u for u in mime.urls() if u.isLocalFile()]
    if len(urls) != 1:
        return None
    return urls[0].toLocalFile()


class _LoadDone(QObject):
    """Carries a background load's result to the GUI thread (a queued signal)."""

    finished = Signal(str, object, str)  # path, Session or None, error text


class SessionViewer(QObject):
    """Open action, drag-and-drop target, step slider and Re-run for a saved session.

    ``window`` holds the bar and takes the drops; ``host`` is what of the window
    this uses (see ui/host.py).
    """

    #: A session was opened and is shown (its path).
    opened = Signal(str)
    #: Opening failed; nothing changed (the one-line reason).
    open_failed = Signal(str)

    def __init__(self, window: QMainWindow, host: ViewerHost) -> None:
        super().__init__(window)
        self._window = window
        self.host = host
        self.run = host.run
        self.path = ""
        self.loading = ""
        self._builder_before: tuple[Optional[RunConfig], tuple[Scheduled, ...]] = (None, ())
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gradsim-open")
        self._done = _LoadDone()
        self._done.finished.connect(self._on_loaded)

        self.open_action = QAction("&Open session…", window)
        self.open_action.setShortcut(QKeySequence.StandardKey.Open)
        tip = "Show an exported session (a folder or a .zip) in every plot, read-only, with a step slider. (Ctrl+O)"
        self.open_action.setToolTip(tip)
        self.open_action.setStatusTip(tip)
        self.open_action.triggered.connect(self.ask_and_open)

        self.bar = QToolBar("Saved session", window)
        self.bar.setObjectName("savedSessionToolBar")
        self.title = QLabel("")
        self.title.setToolTip("The saved session shown (read-only).")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setMinimumWidth(240)
        self.slider.setToolTip("Scrub through the saved session: every plot shows the run as it was at this step (Left/Right, PgUp/PgDn, Home/End).")
        self.step_label = QLabel("")
        self.step_label.setMinimumWidth(self.step_label.fontMetrics().horizontalAdvance("step 100,000 of 100,000") + 8)
        self.rerun_action = QAction("Re-run", window)
        self.rerun_action.setToolTip("Start a new live run from this session's configuration and its events (toggles replayed at their steps).")
        self.rerun_action.triggered.connect(self.rerun)
        self.replayable = True
        self.no_rerun = QLabel(NOT_REPLAYABLE)
        self.no_rerun.setToolTip("Not replayable: this session was recorded by gradsim.watch from a training script GradSim does not have, so it "
                                 "cannot be re-run here: run the script again to record a new one.")
        self.close_action = QAction("Close", window)
        self.close_action.setToolTip("Close the saved session and return to the run it was opened over (paused), "
                                     "or to an empty window if there was none.")
        self.close_action.triggered.connect(self.close_session)
        self.bar.addWidget(self.title)
        self.bar.addSeparator()
        self.bar.addWidget(self.slider)
        self.bar.addWidget(self.step_label)
        self.bar.addSeparator()
        self.no_rerun_action = self.bar.addWidget(self.no_rerun)
        self.no_rerun_action.setVisible(False)
        for a in (self.rerun_action, self.close_action):
            self.bar.addAction(a)
            btn = self.bar.widgetForAction(a)
            if isinstance(btn, QToolButton):
                btn.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        window.addToolBarBreak(Qt.ToolBarArea.TopToolBarArea)
        window.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.bar)
        self.bar.setVisible(False)

        self._scrub = QTimer(self)
        self._scrub.setSingleShot(True)
        self._scrub.setInterval(SCRUB_MS)
        self._scrub.timeout.connect(self._apply_slider)
        self.slider.valueChanged.connect(self._on_slider_moved)
        self.run.state_changed.connect(self._on_state_changed)
        window.setAcceptDrops(True)  # a session folder or .zip dropped on the window opens it

    # ------------------------------------------------------------ opening
    @Slot()
    def ask_and_open(self) -> None:
        """File > Open session: a folder or a .zip (the dialog offers both)."""
        dialog = QFileDialog(self._window, "Open session (a session folder, or a .zip of one)", self.host.export_dir)
        dialog.setFileMode(QFileDialog.FileMode.AnyFile)
        dialog.setNameFilters(["Session .zip or folder (*.zip session.json)", "All files (*)"])
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)  # the native one cannot pick "a folder or a file"
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptOpen)
        dialog.fileSelected.connect(self._on_file_selected)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    @Slot(str)
    def _on_file_selected(self, path: str) -> None:
        if path:
            p = Path(path)
            self.open_path(str(p.parent if p.name == "session.json" else p))

    def open_path(self, path: str | Path) -> None:
        """Load ``path`` in the background; show it when loaded, or say why not (the window keeps its state)."""
        path = str(path)
        if self.loading:
            self.host.status.showMessage(f"Still opening {self.loading}…", 5000)
            return
        self.loading = path
        self.host.status.showMessage(f"Opening {path}…")
        future = self._pool.submit(load_saved_run, path)
        future.add_done_callback(lambda f: self._emit_loaded(path, f))

    def _emit_loaded(self, path: str, future: Future) -> None:
        """In the loader thread: hand the result to the GUI thread."""
        exc = future.exception()
        if exc is None:
            self._done.finished.emit(path, future.result(), "")
        else:
            if not isinstance(exc, SessionOpenError):
                log.error("opening %s failed", path, exc_info=exc)
            self._done.finished.emit(path, None, str(exc) if isinstance(exc, SessionOpenError) else f"{path}: {type(exc).__name__}: {exc}")

    @Slot(str, object, str)
    def _on_loaded(self, path: str, loaded: Optional[tuple[Session, Optional[Session]]], error: str) -> None:
        self.loading = ""
        if loaded is None:
            self.host.status.showMessage("Not opened: " + error, 10000)
            self.host.show_error("Cannot open session", f"{error}\n\nA session is a folder (or .zip) exported by GradSim, "
                              "holding session.json, steps.csv, layers.csv and events.csv. Nothing in the window changed.")
            self.open_failed.emit(error)
            return
        self.show_session(loaded[0], path, branch=loaded[1])

    def show_session(self, session: Session, path: str | Path, branch: Optional[Session] = None) -> None:
        """Show an already loaded session (``--open`` loads it before the window exists);
        ``branch``: branch B of a forked run's export folder, drawn against ``session`` (A)."""
        if self.run.state is not RunState.VIEWING:
            # What the builder showed, given back when the session is closed over a kept run.
            self._builder_before = (self.host.builder.config(), self.host.builder.schedule())
        self.path = str(path)
        self.replayable = replayable(session)
        self.run.view(session, branch)
        self.rerun_action.setVisible(self.replayable)
        self.rerun_action.setEnabled(self.replayable)
        self.no_rerun_action.setVisible(not self.replayable)
        self.title.setText(f"<b>{Path(self.path).name}</b>")
        self.title.setToolTip(self.path)
        n = len(session)
        self.slider.blockSignals(True)
        self.slider.setRange(0, n - 1)
        self.slider.setPageStep(max(1, n // 20))
        self.slider.setValue(n - 1)
        self.slider.blockSignals(False)
        self._show_step_label(n - 1)
        self.bar.setVisible(True)
        self.host.refresh_plots_now()
        forked = "" if branch is None else f" (forked: A and B, {branch.steps_run:,} steps in B)"
        again = "Re-run trains it again." if self.replayable else "it cannot be re-run (a watched run of your own script)."
        self.host.status.showMessage(f"Opened {self.path}{forked}: {session.steps_run:,} steps, read-only; {again}", 10000)
        self.opened.emit(self.path)

    def session_grew(self) -> None:
        """The shown session gained rows (a followed run): the slider reaches them, and
        follows the newest step unless the user scrubbed back."""
        full = self.run.viewed
        if full is None or self.run.state is not RunState.VIEWING or len(full) == 0:
            return
        at_end = self.slider.value() >= self.slider.maximum()
        n = len(full)
        self.slider.blockSignals(True)
        self.slider.setRange(0, n - 1)
        self.slider.setPageStep(max(1, n // 20))
        if at_end:
            self.slider.setValue(n - 1)
        self.slider.blockSignals(False)
        if at_end:
            self.run.view_rows(n)
        self._show_step_label(self.slider.value())
        self.run.viewed_grew()

    def close(self) -> None:
        """Stop the loader thread (window close)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def sync_builder(self, session: Session) -> None:
        """The builder shows what the opened run was (and what Re-run will train); for a
        watched session, what it is instead of a form it was not built from."""
        if session.model == "watched":
            self.host.builder.show_watched(watched_text(session, self.path))
            return
        self.host.builder.show_watched(None)
        if self.run.config is None:
            return  # nothing opened: the builder keeps what it shows
        self.host.builder.set_config(self.run.config)
        try:
            self.host.builder.set_schedule(session_schedule(session))
        except SessionOpenError as exc:
            self.host.status.showMessage(str(exc), 10000)

    # ------------------------------------------------------------ drag and drop (the window's events)
    def drag_enter(self, event: Any) -> None:
        """Accept a drag that carries one local file or folder."""
        if dropped_path(event) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def drop(self, event: Any) -> None:
        """Open the dropped file or folder; several, or non-local ones, are refused without a change."""
        path = dropped_path(event)
        if path is None:
            event.ignore()
            return
        event.acceptProposedAction()
        self.open_path(path)

    # ------------------------------------------------------------ scrubbing
    def show_row(self, row: int) -> None:
        """Show the session as it was at its ``row``-th recorded step (the slider calls this)."""
        if self.run.state is not RunState.VIEWING:
            return
        self.slider.blockSignals(True)
        self.slider.setValue(row)
        self.slider.blockSignals(False)
        self._scrub.stop()
        self._apply_slider()

    @Slot(int)
    def _on_slider_moved(self, row: int) -> None:
        self._show_step_label(row)
        if not self._scrub.isActive():
            self._scrub.start()

    @Slot()
    def _apply_slider(self) -> None:
        if self.run.state is not RunState.VIEWING:
            return
        row = self.slider.value()
        self.run.view_rows(row + 1)  # the status bar follows (RunController.view_rows)
        self._show_step_label(row)
        self.host.refresh_plots_now()

    def _show_step_label(self, row: int) -> None:
        full = self.run.viewed
        if full is None or len(full) == 0:
            self.step_label.setText("")
            return
        row = max(0, min(row, len(full) - 1))
        # Steps done, as the status bar and the live run count them (the row of step s ends step s + 1).
        self.step_label.setText(f"step {int(full.steps[row]) + 1:,} of {full.steps_run:,}")

    # ------------------------------------------------------------ re-run, close
    @Slot()
    def rerun(self) -> bool:
        """A new live run from the session's config and events (the builder shows them)."""
        full = self.run.viewed
        if full is None:
            return False
        if not self.replayable:
            self.host.status.showMessage(f"{Path(self.path).name}: {NOT_REPLAYABLE}", 10000)
            return False
        try:
            config = RunConfig.from_dict(full.config, where=Path(self.path).name or "session")
            schedule = session_schedule(full)
        except (ConfigError, SessionOpenError) as exc:
            self.host.show_error("Cannot re-run this session", one_line(str(exc)))
            return False
        self.host.builder.set_config(config)
        self.host.builder.set_schedule(schedule)
        return bool(self.host.start_run())

    @Slot()
    def close_session(self) -> None:
        """Back to the run the session was opened over (paused, as it was), or to an empty window."""
        if self.run.state is not RunState.VIEWING:
            return
        kept = self.run.hidden is not None
        self.run.leave_view()
        config, schedule = self._builder_before
        if kept and config is not None:
            self.host.builder.set_config(config)
            self.host.builder.set_schedule(schedule)

    @Slot(object)
    def _on_state_changed(self, state: RunState) -> None:
        viewing = state is RunState.VIEWING
        if not viewing:
            self.host.builder.show_watched(None)
        self.bar.setVisible(viewing)
        self.rerun_action.setEnabled(viewing and self.replayable)
        if not viewing:
            self.path = ""

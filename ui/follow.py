"""File > Follow running session: the plots grow while a user's script trains under gradsim.watch.

Why polling a folder (and not a pipe to the script): the script is someone
else's process that only writes files (gradsim/watch/writer.py); following it
must cost it nothing beyond those writes. A QTimer polls the folder a few
times a second; each poll reads only the bytes appended since the last one
(gradsim/watch/tail.py), in a worker thread so a slow disk never stalls the
window, and the GUI thread appends the new rows to the shown session. The
session is shown through the saved-session viewer (read-only, step slider);
following stops when session.json says the run is no longer running.

A script that crashes (or is killed) before ``close()`` never says so: its
session.json keeps ``running: true``. So when no new data comes for
``stall_after_s`` seconds (30 by default; the ``follow/stall_s`` setting), the
status bar says that the script may have stopped, the folder is checked only
every few seconds, and a Stop following button appears; data that comes after
all brings the normal pace and message back.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Optional

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMainWindow, QPushButton

from gradsim.session.store import Session
from gradsim.watch.tail import NotWatchedError, SessionTail, TailUpdate, watched_meta

from .run_controller import RunState

log = logging.getLogger(__name__)

#: How often the folder is polled. The writer appends about four times a second, so
#: a faster poll would mostly find nothing; a slower one would make the plots lag.
POLL_MS = 500
#: The status bar's state while a run is followed.
FOLLOWING_TEXT = "following a running script (read-only)"
#: Seconds without new data after which the followed script may have stopped (the default
#: of the ``follow/stall_s`` setting).
STALL_S = 30.0
#: How often a folder that stopped growing is still checked.
STALLED_POLL_MS = 5000
#: The status bar's state while a followed run sends nothing.
STALLED_TEXT = "following: no new data"


def stall_message(name: str, seconds: float) -> str:
    """What the status bar says when the followed folder ``name`` stopped growing."""
    # What matters first: the status bar may show only the start (the whole text is on hover).
    return (f"No new data for {seconds:.0f} s: the script may have stopped (crashed before close()?). "
            f"Still checking {name} every {STALLED_POLL_MS // 1000} s; Stop following ends it.")


def _stall_setting() -> float:
    from . import settings as st

    try:
        v = float(str(st.settings().value("follow/stall_s", STALL_S)))
    except (TypeError, ValueError):
        return STALL_S
    return v if v > 0 else STALL_S


def follow_error(path: str | Path) -> str:
    """Why ``path`` cannot be followed (one line), or "" when it is a watched session folder."""
    try:
        watched_meta(path)
    except NotWatchedError as exc:
        return str(exc)
    return ""


class _Polled(QObject):
    """Carries a poll's result to the GUI thread (a queued signal)."""

    finished = Signal(int, object, object, str)  # token, Session or None (first poll), TailUpdate or None, error


class FollowController(QObject):
    """The Follow action, the poll timer and the followed session.

    ``host`` is the main window: it provides ``viewer`` (ui/session_viewer.py),
    ``run``, ``status`` and ``show_error``.
    """

    #: Following began and the first rows are shown (the folder).
    started = Signal(str)
    #: Following ended (the reason, as the status bar shows it).
    stopped = Signal(str)
    #: New rows were appended to the followed session (how many).
    grew = Signal(int)

    def __init__(self, window: QMainWindow, host: Any) -> None:
        super().__init__(window)
        self._window = window
        self.host = host
        self.path = ""
        #: The session being followed (the one the viewer shows), or None.
        self.session: Optional[Session] = None
        self.following = False
        self._tail: Optional[SessionTail] = None
        self._token = 0
        self._busy = False
        #: The followed folder's (still empty) session until its first row arrives.
        self._pending: Optional[Session] = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gradsim-follow")
        self._polled = _Polled()
        self._polled.finished.connect(self._on_polled)
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self._poll)
        #: Seconds without new data before the script is said to have maybe stopped.
        self.stall_after_s = _stall_setting()
        #: The clock the stall is measured with (tests put a fake one here).
        self.clock: Callable[[], float] = time.monotonic
        #: Whether the followed folder has sent nothing for stall_after_s.
        self.stalled = False
        self._grew_at = 0.0
        self._seen: tuple[int, int] = (-1, -1)
        self.stop_button = QPushButton("Stop following")
        self.stop_button.setToolTip("Stop reading the folder: the session stays shown as far as it was read.")
        self.stop_button.setVisible(False)
        self.stop_button.clicked.connect(self.stop)
        host.status.add_button(self.stop_button)

        self.follow_action = QAction("&Follow running session…", window)
        tip = ("Show a training script's gradsim.watch folder while it trains: the plots grow with every step it "
               "writes (python main.py --follow DIR does the same).")
        self.follow_action.setToolTip(tip)
        self.follow_action.setStatusTip(tip)
        self.follow_action.triggered.connect(self.ask_and_follow)
        host.run.state_changed.connect(self._on_state_changed)

    # ------------------------------------------------------------ starting
    @Slot()
    def ask_and_follow(self) -> None:
        """File > Follow running session: pick the folder the script's gradsim.watch(out=...) writes."""
        dialog = QFileDialog(self._window, "Follow a running session (the out= folder of gradsim.watch)", self.host.export_dir)
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)
        dialog.fileSelected.connect(self._on_folder_selected)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    @Slot(str)
    def _on_folder_selected(self, path: str) -> None:
        if path:
            self.follow(path)

    def follow(self, path: str | Path) -> bool:
        """Start following ``path``; False (with one clear message, nothing changed) when it is not a watched session."""
        path = str(path)
        error = follow_error(path)
        if error:
            self.host.status.showMessage("Not followed: " + error, 10000)
            self.host.show_error("Cannot follow this folder", f"{error}\n\nFollow a running session shows the folder a "
                                 "script passes to gradsim.watch(model, optimizer, out=...). Nothing in the window changed.")
            return False
        self._end(None)
        self._token += 1
        self._tail = SessionTail(path)
        self.path = path
        self.following = True
        self.session = None
        self._set_stalled(False)
        self._grew_at = self.clock()
        self._seen = (-1, -1)
        self.host.status.showMessage(f"Following {path}: waiting for the first step…")
        self._submit(first=True)
        self.timer.start()
        return True

    # ------------------------------------------------------------ polling
    @Slot()
    def _poll(self) -> None:
        if self.following and not self._busy:
            self._submit(first=self.session is None and self._pending is None)

    def _submit(self, first: bool) -> None:
        tail, token = self._tail, self._token
        if tail is None:
            return
        self._busy = True

        def work() -> tuple[Optional[Session], TailUpdate]:
            base = tail.open() if first else None
            return base, tail.poll()

        future = self._pool.submit(work)
        future.add_done_callback(lambda f: self._emit(token, f))

    def _emit(self, token: int, future: Future) -> None:
        """In the poll thread: hand the result to the GUI thread."""
        exc = future.exception()
        if exc is None:
            base, update = future.result()
            self._polled.finished.emit(token, base, update, "")
        else:
            if not isinstance(exc, (OSError, ValueError)):
                log.error("following %s failed", self.path, exc_info=exc)
            self._polled.finished.emit(token, None, None, f"{type(exc).__name__}: {exc}")

    @Slot(int, object, object, str)
    def _on_polled(self, token: int, base: Optional[Session], update: Optional[TailUpdate], error: str) -> None:
        if token != self._token:
            return  # a poll of a folder no longer followed
        self._busy = False
        if not self.following:
            return
        if update is None:
            self._end(f"Stopped following {self.path}: {error}")
            return
        if base is not None:
            self._pending = base
        session = self.session if self.session is not None else self._pending
        if session is None:
            return
        n_new = len(update.rows)
        if n_new or update.rows.events:
            session.append_rows(update.rows)
        session.steps_run = max(session.steps_run, update.steps_run, int(session.steps[-1]) + 1 if len(session) else 0)
        if update.diverged_at is not None and session.diverged_at is None:
            session.diverged_at = update.diverged_at
        if self.session is None and len(session):
            self.session = session
            self._pending = None
            self.host.viewer.show_session(session, self.path)
            self.host.status.state_label.setText(FOLLOWING_TEXT)
            self.started.emit(self.path)
        elif self.session is not None and (n_new or update.rows.events):
            self.host.viewer.session_grew()
            self.grew.emit(n_new)
        seen = (len(session) + len(session.events), session.steps_run)
        if seen != self._seen:
            self._seen = seen
            self._grew_at = self.clock()
            if self.stalled:
                self._set_stalled(False)
        elif update.running and not self.stalled and self.clock() - self._grew_at >= self.stall_after_s:
            self._set_stalled(True)
            self.host.status.showMessage(stall_message(Path(self.path).name, self.clock() - self._grew_at), 0)
        if self.session is not None and update.running and not self.stalled:
            # The folder's name, not its path: the status bar shares its row with six labels.
            self.host.status.showMessage(f"Following {Path(self.path).name}: step {session.steps_run - 1:,}, training…")
        if not update.running:
            if self.session is None:
                self._end(f"Stopped following {self.path}: the script finished without recording a step")
            else:
                self._end(f"Followed {Path(self.path).name} to its end: the script finished ({session.steps_run:,} steps)")

    # ------------------------------------------------------------ ending
    def stop(self) -> None:
        """Stop following (the session stays shown as far as it was read)."""
        if self.following:
            self._end(f"Stopped following {self.path}")

    def _set_stalled(self, stalled: bool) -> None:
        """Slow polling and the Stop button while the folder sends nothing; the normal pace again when it does."""
        self.stalled = stalled
        self.timer.setInterval(STALLED_POLL_MS if stalled else POLL_MS)
        self.stop_button.setVisible(stalled)
        label = self.host.status.state_label
        if self.session is not None and label.text() in (FOLLOWING_TEXT, STALLED_TEXT):
            label.setText(STALLED_TEXT if stalled else FOLLOWING_TEXT)

    def _end(self, reason: Optional[str]) -> None:
        was = self.following
        self.following = False
        self._set_stalled(False)
        self.timer.stop()
        self._token += 1
        self._busy = False
        self._tail = None
        self._pending = None
        if was and self.host.status.state_label.text() in (FOLLOWING_TEXT, STALLED_TEXT):
            self.host.status._on_state_changed(None)  # back to what the run's state says
        if was and reason:
            self.host.status.showMessage(reason, 0)
            self.stopped.emit(reason)

    @Slot(object)
    def _on_state_changed(self, state: RunState) -> None:
        # Closing the followed session (or opening another, or Re-run) ends following.
        if self.following and self.session is not None and (
                state is not RunState.VIEWING or self.host.run.viewed is not self.session):
            self._end(f"Stopped following {self.path}: the session was closed")

    def close(self) -> None:
        """Stop polling and the poll thread (window close)."""
        self._end(None)
        self._pool.shutdown(wait=True, cancel_futures=True)

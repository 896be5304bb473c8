"""Never lose a run to a crash: the live run is copied to disk every few seconds; the next start offers it back.

Why in the engine (a ``tasks.autosave`` task): the engine holds the full session
and writes it with the exporter every export uses, without torch in the window's
process. The copy is one .zip per window process (``run-<pid>.zip``), replaced
atomically, in a folder under the user's data folder (GRADSIM_AUTOSAVE_DIR
overrides it). A clean quit deletes it, so a copy whose process is gone at the
next start is a run that ended in a crash: it is moved aside under
``recovered/`` (never overwritten by a new copy) and the window offers to open
it, saying where it is. Two windows at once each keep their own copy.

A copy is not an export: the Save / Discard / Cancel guard still asks before an
unexported run is replaced. A forked run's copy holds branch A (the trainer
the engine's tasks see).
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import tempfile
import zipfile
from functools import partial
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QObject, QStandardPaths, QTimer, Signal, Slot
from PySide6.QtWidgets import QMessageBox, QWidget

from gradsim.service import tasks

from .run_controller import RunController

log = logging.getLogger(__name__)

#: How often the live run is copied (when it changed since the last copy).
AUTOSAVE_MS = 30_000
PREFIX = "run-"


def autosave_dir() -> Path:
    """Where the crash copies live (GRADSIM_AUTOSAVE_DIR overrides it, e.g. for tests)."""
    override = os.environ.get("GRADSIM_AUTOSAVE_DIR")
    if override:
        return Path(override)
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or tempfile.gettempdir()) / "autosave"


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (on Windows, unknown: treated as alive, so a copy is never taken from a running window)."""
    if pid == os.getpid():
        return True
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def crashed_copies(folder: Path) -> list[Path]:
    """The copies in ``folder`` whose window process is gone (it crashed, or was killed), oldest first."""
    out = []
    for p in folder.glob(f"{PREFIX}*.zip"):
        try:
            pid = int(p.stem[len(PREFIX):])
        except ValueError:
            continue
        if not _pid_alive(pid):
            out.append(p)
    return sorted(out, key=lambda p: p.stat().st_mtime)


def copy_steps(path: Path) -> Optional[int]:
    """The steps a copy holds (its session.json's steps_run), None when it cannot be read."""
    try:
        with zipfile.ZipFile(path) as zf:
            meta = json.loads(zf.read("session.json"))
        n = meta.get("steps_run")
        return n if isinstance(n, int) else None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None


def move_aside(path: Path) -> Path:
    """Move a crashed copy to ``recovered/`` under a name with its time, so no new copy replaces it."""
    stamp = _dt.datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y%m%d-%H%M%S")
    dest_dir = path.parent / "recovered"
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f"gradsim-run-{stamp}.zip"
    k = 1
    while dest.exists():
        k += 1
        dest = dest_dir / f"gradsim-run-{stamp}-{k}.zip"
    os.replace(path, dest)
    return dest


class AutoSaver(QObject):
    """Copies the live run to ``path`` every ``interval_ms`` while it changes; offers a crashed copy back."""

    #: A copy was written (its path).
    saved = Signal(str)

    def __init__(self, parent: QWidget, run: RunController, folder: Optional[Path] = None,
                 interval_ms: int = AUTOSAVE_MS) -> None:
        super().__init__(parent)
        self._parent = parent
        self.run = run
        self.folder = Path(folder) if folder is not None else autosave_dir()
        self.path = self.folder / f"{PREFIX}{os.getpid()}.zip"
        #: False: never copy (headless screenshots and self-tests).
        self.enabled = True
        self._mark: Optional[tuple] = None
        self._in_flight = False
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.save_now)
        self.timer.start()

    def _run_mark(self) -> Optional[tuple]:
        parts = self.run.live_parts()
        if parts is None:
            return None
        generation, mirror, _ = parts
        return generation, mirror.steps_run, len(mirror.events)

    @Slot()
    def save_now(self) -> bool:
        """Copy the run now if it changed since the last copy; True when a copy was asked of the engine."""
        mark = self._run_mark()
        if not self.enabled or self._in_flight or mark is None or mark == self._mark or self.run.engine_lost:
            return False
        self._in_flight = True
        self.run.worker.submit(partial(tasks.autosave, path=str(self.path)),
                               lambda result: self._on_done(mark, result), self._on_error, on_trainer=True)
        return True

    def _on_done(self, mark: tuple, result: object) -> None:
        self._in_flight = False
        self._mark = mark
        self.saved.emit(str(self.path))

    def _on_error(self, exc: BaseException) -> None:
        self._in_flight = False
        log.warning("the crash copy %s was not written: %s", self.path, exc)  # a copy is a safety net, not an export

    def remove(self) -> None:
        """A clean quit: this window's copy is no longer needed."""
        self.timer.stop()
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot remove the crash copy %s: %s", self.path, exc)

    # ------------------------------------------------------------ after a crash
    def recover(self) -> list[Path]:
        """Move every crashed copy aside (``recovered/``); their new paths, oldest first."""
        moved = []
        for p in crashed_copies(self.folder):
            try:
                moved.append(move_aside(p))
            except OSError as exc:
                log.warning("cannot move the crash copy %s aside: %s", p, exc)
        return moved

    def offer_restore(self, open_session) -> Optional[Path]:
        """After a crash: say where the last run is and offer to open it (``open_session(path)``).
        Returns the copy offered (None: there was none)."""
        moved = self.recover()
        if not moved:
            return None
        last = moved[-1]
        steps = copy_steps(last)
        what = f"its last run ({steps:,} steps)" if steps is not None else "its last run"
        others = f"\n\n{len(moved) - 1} older copies are in the same folder." if len(moved) > 1 else ""
        answer = QMessageBox.question(
            self._parent, "Restore the last run?",
            f"GradSim did not close cleanly last time. A copy of {what} was saved to\n{last}\n\n"
            f"Open it now? It stays in that folder either way.{others}",
            QMessageBox.StandardButton.Open | QMessageBox.StandardButton.Close, QMessageBox.StandardButton.Open,
        )
        if answer == QMessageBox.StandardButton.Open:
            open_session(str(last))
        return last

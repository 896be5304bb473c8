"""Never lose work: before a run, its fork or typed answers are replaced, ask Save / Discard / Cancel.

Why a guard of its own: Reset, a new Run over a finished run, Re-run of an
opened session and Quit all replace what the window holds, and a student's
unexported run (or typed exercise answers) is gone with it. Each of those
calls ``confirm`` first. Nothing is asked when nothing would be lost: no run,
or a run exported (or handed in) and unchanged since.

"Save" runs the existing flows (File > Export session, or the exercise's
submission when answers are typed, which holds the session too); the action
goes on only once the engine said the files were written. "Cancel", a
cancelled file dialog or a failed export leave everything as it was.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QMessageBox, QWidget

from .run_controller import RunController

Button = QMessageBox.StandardButton


def ask_save_discard_cancel(parent: QWidget, action: str, lost: list[str]) -> Button:
    """The one question: Save, Discard or Cancel (Save is the default, Escape cancels)."""
    text = f"{action} would discard {_join(lost)}."
    return QMessageBox.question(
        parent, "Save your work first?", text + "\n\nSave it first, discard it, or cancel?",
        Button.Save | Button.Discard | Button.Cancel, Button.Save,
    )


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


class UnsavedGuard(QObject):
    """Knows whether the window holds unsaved work, and asks before it is replaced.

    ``exporter`` is the window's SessionExporter; ``teaching`` its
    TeachingController (typed answers, submissions). ``enabled=False``
    (headless screenshots and self-tests) never asks.
    """

    def __init__(self, parent: QWidget, run: RunController, exporter: Any, teaching: Any) -> None:
        super().__init__(parent)
        self._parent = parent
        self.run = run
        self.exporter = exporter
        self.teaching = teaching
        #: False: never ask (nobody is there to answer: --screenshot, --self-test).
        self.enabled = True
        #: What the run looked like when it was last written out (None: never).
        self._saved_mark: Optional[tuple] = None
        run.worker.export_finished.connect(self._on_written)
        teaching.submission_written.connect(self._on_written)

    # ------------------------------------------------------------ what would be lost
    def _run_mark(self) -> Optional[tuple]:
        """Identifies the run's content: generation, steps and events of both branches (None: no run)."""
        parts = self.run.live_parts()
        if parts is None:
            return None
        generation, mirror, branch = parts
        mark: tuple = (generation, mirror.steps_run, len(mirror.events))
        if branch is not None:
            mark += (branch.steps_run, len(branch.events))
        return mark

    def run_at_risk(self) -> bool:
        mark = self._run_mark()
        return mark is not None and mark != self._saved_mark

    def at_risk(self) -> list[str]:
        """What would be lost, in words (empty: nothing)."""
        lost = []
        if self.run_at_risk():
            parts = self.run.live_parts()
            assert parts is not None
            _, mirror, branch = parts
            what = f"the run ({mirror.steps_run:,} steps, not exported)"
            if branch is not None:
                what = f"the forked run (branches A and B, {mirror.steps_run:,} steps, not exported)"
            lost.append(what)
        title = self.teaching.unsaved_answers()
        if title:
            lost.append(f"your typed answers to “{title}” (not handed in)")
        return lost

    # ------------------------------------------------------------ asking
    def confirm(self, action: str, later: Callable[[], object]) -> bool:
        """True: go on now (nothing at risk, or Discard). False: stop here, because the user
        cancelled, or because a save runs first and ``later()`` is called once it succeeded."""
        lost = self.at_risk()
        if not lost or not self.enabled:
            return True
        answer = ask_save_discard_cancel(self._parent, action, lost)
        if answer == Button.Discard:
            return True
        if answer == Button.Save:
            self.save(later)
        return False

    def save(self, then: Callable[[], object]) -> bool:
        """Write the unsaved work (a submission when answers are typed, else an export); ``then()``
        once written. False: nothing was started (a dialog was cancelled)."""
        def done(ok: bool) -> None:
            if ok:
                then()

        if self.teaching.unsaved_answers():
            return bool(self.teaching.submit_current(done))  # its submission_written marks the run saved
        return bool(self.exporter.ask_and_export(done))

    @Slot(str)
    def _on_written(self, _path: str) -> None:
        self.mark_saved()

    def mark_saved(self) -> None:
        """The run as it is now was written out (an export or a submission)."""
        self._saved_mark = self._run_mark()


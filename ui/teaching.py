"""The teaching layer in the window: exercise panel and Jacobian spectrum.

Kept apart from main_window.py so the window only composes. It uses the
window's public surface only (``add_dock``, ``export_dir``, ``builder``,
``plots``, ``show_error``, ``statusBar``) and the run model (``window.run``).
Everything that reads the live network (Jacobian, submissions) runs in the
training thread between steps through ``worker.submit``; each result comes
back to the callback of the request that asked for it. The theory overlay is
no task here: the trainer records the prediction (``pred_gain``) with the
data and the depth profile draws the one of the step it shows.
"""
from __future__ import annotations

import logging
import traceback
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Slot
from PySide6.QtWidgets import QFileDialog, QInputDialog, QLineEdit, QMainWindow

from .panels.exercise import ExercisePanel, SubmissionWriteError, export_submission
from .plots.jacobian import JacobianSpectrumPlot
from .settings import KEY_STUDENT, read_str, settings

log = logging.getLogger(__name__)

OBJECTIVES_MS = 500  # objectives re-checked twice a second
JACOBIAN_SAMPLES = 8


def _jacobian(trainer: Any) -> Any:
    from gradsim.theory import jacobian_spectrum

    return jacobian_spectrum(trainer.net, trainer.probe_inputs(JACOBIAN_SAMPLES), JACOBIAN_SAMPLES), trainer.step_index


class TeachingController(QObject):
    """Adds the exercise and Jacobian docks to the window and wires them to its run.

    ``window`` is the MainWindow (typed loosely: importing it here would make
    the two modules import each other).
    """

    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self.w: Any = window
        self.run = self.w.run
        self.exercise = ExercisePanel(active=False)  # free play until the user opens an exercise
        self.jacobian = JacobianSpectrumPlot()
        self.exercise_dock = self.w.add_dock("Exercise", "exerciseDock", self.exercise, Qt.DockWidgetArea.RightDockWidgetArea)
        self.jacobian_dock = self.w.add_dock("Jacobian spectrum", "jacobianDock", self.jacobian, Qt.DockWidgetArea.RightDockWidgetArea)
        window.tabifyDockWidget(self.exercise_dock, self.jacobian_dock)
        # Free play is the default: the exercise and Jacobian docks stay closed until asked for
        # (Exercises menu, View menu), so the plots get the room and a student sees no grading.
        self.exercise_dock.hide()
        self.jacobian_dock.hide()
        self.last_submission = ""
        # Bumped when a run starts or is reset: a Jacobian of the discarded run
        # that arrives later is dropped instead of shown as the new run's.
        self._run_ticket = 0

        self.restore_student()
        self.exercise.start_requested.connect(self._on_start_requested)
        self.exercise.submission_requested.connect(self._on_submission_requested)
        self.jacobian.compute_requested.connect(self._on_jacobian_requested)
        self.run.run_started.connect(self._on_run_started)
        self.run.run_reset.connect(self._on_run_reset)
        self._timer = QTimer(self)
        self._timer.setInterval(OBJECTIVES_MS)
        self._timer.timeout.connect(self._on_objectives_timer)
        self._timer.start()

    # ------------------------------------------------------------ exercises
    def add_menu(self, menu_bar: Any) -> Any:
        """Exercises menu: Free play, then one entry per readable exercise (opens the dock in exercise mode)."""
        menu = menu_bar.addMenu("E&xercises")
        menu.setToolTipsVisible(True)
        free = menu.addAction("Free play (no exercise)")
        free.setToolTip("Nothing is checked and no warning about an exercise's settings appears.")
        free.triggered.connect(lambda: self.exercise.set_active(False))
        menu.addSeparator()
        for ex in self.exercise.exercises():
            a = menu.addAction(f"{ex.title}  [{ex.level}]")
            a.setToolTip(f"Open this exercise: its text, its objectives checked live on your run, and its questions.")
            a.triggered.connect(lambda _checked=False, eid=ex.id: self.open_exercise(eid))
        self.menu = menu
        return menu

    def open_exercise(self, exercise_id: str) -> bool:
        """Exercise mode on the exercise ``exercise_id``: the dock opens and its objectives are checked."""
        if not self.exercise.select_exercise(exercise_id):
            return False
        self.exercise.set_active(True)
        self.exercise_dock.show()
        self.exercise_dock.raise_()
        if self.run.mirror is not None:
            self.exercise.update_from(self.run.mirror)
        return True

    @Slot(object)
    def _on_start_requested(self, ex: Any) -> None:
        """Load the exercise's starting point into the builder; the student presses Run."""
        self.w.builder.set_config(ex.config)
        self.w.builder.set_schedule(tuple(ex.events))
        self.w.builder_dock.raise_()
        self.w.statusBar().showMessage(f"Loaded the starting point of “{ex.title}”: press Run.", 8000)

    @Slot(object, dict)
    def _on_submission_requested(self, ex: Any, answers: dict) -> None:
        if self.run.mirror is None:
            self.w.show_error("Nothing to submit", "Run the exercise first: a submission holds your session.")
            return
        student = self.ask_student()
        if student is None:
            return
        folder = QFileDialog.getExistingDirectory(self.w, "Export submission into an empty or new folder", self.w.export_dir)
        if folder:
            self.submit_to(folder, ex, answers, student)

    def restore_student(self) -> None:
        """Fill the panel's name field with the name remembered from the last submission."""
        self.exercise.set_student(read_str(settings(), KEY_STUDENT))

    def ask_student(self) -> "str | None":
        """The name or ID for the grade book: the panel's field, or asked once when it is empty.

        Remembered in the settings for the next submission. None: the student cancelled.
        An empty answer is allowed (the submission still grades, without a name).
        """
        student = self.exercise.student()
        if not student:
            text, ok = QInputDialog.getText(
                self.w, "Export submission", "Your name or student ID (for the grade book):", QLineEdit.EchoMode.Normal, ""
            )
            if not ok:
                return None
            student = " ".join(text.split())
            self.exercise.set_student(student)
        s = settings()
        s.setValue(KEY_STUDENT, student)
        s.sync()
        return student

    def submit_to(self, folder: str, ex: Any, answers: dict, student: str = "") -> None:
        """Write the worker's full session + submission.json (between steps, in the worker)."""
        target = str(Path(folder) / f"submission-{ex.id}") if Path(folder).is_dir() and any(Path(folder).iterdir()) else folder
        self.run.worker.submit(
            lambda s: str(export_submission(target, ex, s, dict(answers), student)), self._on_submission_written, self._on_submission_failed
        )

    def _on_submission_written(self, path: str) -> None:
        self.last_submission = path
        self.w.statusBar().showMessage(f"Submission written to {path}", 10000)

    def _on_submission_failed(self, exc: BaseException) -> None:
        if isinstance(exc, SubmissionWriteError):  # the place cannot be written: say so, nothing else is wrong
            self.w.show_error("Submission not written", f"{exc}\n\nYour session is still in memory: you can try another folder.")
            return
        # Anything else is a defect (in GradSim or in the exercise file): log it, show it as one.
        log.error("writing a submission failed", exc_info=exc)
        self.w.show_error(
            "Submission not written: an error in GradSim or in the exercise file",
            f"{type(exc).__name__}: {exc}\n\nYour session is still in memory. The details are in the log file (Help > Open log folder).",
            "".join(traceback.format_exception(exc)),
        )

    # ------------------------------------------------------------ a new or no run
    # (The theory line is no task here: the trainer records the prediction as
    # pred_gain and the depth profile draws the one of the step it shows.)
    @Slot(object)
    def _on_run_started(self, _config: Any) -> None:
        self._forget_run("No spectrum of this run yet: press Compute.")

    @Slot()
    def _on_run_reset(self) -> None:
        self._forget_run("No run: start one, then press Compute for the spectrum of the live network.")

    def _forget_run(self, jacobian_text: str) -> None:
        """Nothing that described the previous run stays on screen (the plots reset themselves)."""
        self._run_ticket += 1
        self.jacobian.set_spectrum(None, jacobian_text)
        self.exercise.update_from(None)

    # ------------------------------------------------------------ jacobian
    @Slot()
    def _on_jacobian_requested(self) -> None:
        if self.run.mirror is None:
            self.jacobian.set_spectrum(None, "Start a run first: the spectrum is of the live network.")
            return
        ticket = self._run_ticket
        self.run.worker.submit(
            _jacobian,
            lambda result: self._on_spectrum(result, ticket),
            lambda exc: self._on_spectrum_failed(exc, ticket),
            on_trainer=True,
        )

    def _on_spectrum(self, result: tuple[Any, int], ticket: int) -> None:
        if ticket != self._run_ticket:
            return  # computed for a run that has since been reset or replaced
        values, step = result
        self.jacobian.set_spectrum(values, f"hidden-to-hidden Jacobian at step {step}")

    def _on_spectrum_failed(self, exc: BaseException, ticket: int) -> None:
        log.info("Jacobian spectrum failed: %s", exc)
        if ticket == self._run_ticket:
            self.jacobian.set_spectrum(None, str(exc) or type(exc).__name__)

    @Slot()
    def _on_objectives_timer(self) -> None:
        if self.run.mirror is not None and self.exercise.active and self.exercise.isVisible():
            self.exercise.update_from(self.run.mirror)


"""The teaching layer in the window: exercise panel and Jacobian spectrum.

Kept apart from main_window.py so the window only composes. It uses the
window's public surface only (``TeachingHost`` in ui/host.py: ``add_dock``,
``export_dir``, ``builder``, ``show_error``, the run model) and the
``QMainWindow`` itself (dock tabs, the status bar, dialog parent).
Everything that reads the live network (Jacobian, submissions) runs in the
engine process between steps through ``worker.submit`` (functions of
``gradsim.service.tasks``, pickled there); each result comes back to the
callback of the request that asked for it. The theory overlay is
no task here: the trainer records the prediction (``pred_gain``) with the
data and the depth profile draws the one of the step it shows.
"""
from __future__ import annotations

import functools
import logging
import traceback
from pathlib import Path
from typing import Any, Callable, Optional

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import QInputDialog, QLineEdit, QMainWindow

from PySide6.QtGui import QAction

from gradsim.service import tasks as engine_tasks

from .host import TeachingHost
from .predictions import PredictionTracker
from .submission_target import ask_submission_target
from .settings import KEY_STUDENT, read_str, settings

log = logging.getLogger(__name__)

OBJECTIVES_MS = 500  # objectives re-checked twice a second
JACOBIAN_SAMPLES = 8


class TeachingController(QObject):
    """Adds the exercise and Jacobian docks to the window and wires them to its run.

    ``window`` holds the docks; ``host`` is what of the window this uses (see ui/host.py).
    """

    #: A submission (the session and the typed answers) was written: its folder.
    submission_written = Signal(str)

    def __init__(self, window: QMainWindow, host: TeachingHost) -> None:
        super().__init__(window)
        self._window = window
        self.host = host
        self.run = host.run
        # Free play is the default: the exercise and Jacobian docks stay closed until asked for
        # (Exercises menu, View menu), so the plots get the room and a student sees no grading.
        # They are built on first use, which keeps their imports (pyqtgraph, the exercise
        # files) off the path to the window's first paint.
        self._exercise: Any = None
        self._jacobian: Any = None
        self._exercise_dock: Any = None
        self._jacobian_dock: Any = None
        self.exercise_action = QAction("&Exercise", window, checkable=True)
        self.exercise_action.setToolTip("Show or hide the exercise panel (free play until you open an exercise).")
        self.exercise_action.toggled.connect(lambda on: self._show_dock(self.exercise_dock, on, window))
        self.jacobian_action = QAction("&Jacobian spectrum", window, checkable=True)
        self.jacobian_action.setToolTip("Show or hide the Jacobian spectrum of the live network (computed on request).")
        self.jacobian_action.toggled.connect(lambda on: self._show_dock(self.jacobian_dock, on, window))
        self.last_submission = ""
        #: Exercise id -> the answers of its last written submission (typed ones that differ are unsaved).
        self._handed_in: dict[str, dict[str, float]] = {}
        # Bumped when a run starts or is reset: a Jacobian of the discarded run
        # that arrives later is dropped instead of shown as the new run's.
        self._run_ticket = 0
        #: Shows each prediction beside its outcome (checked with the objectives, twice a second).
        self.predictions = PredictionTracker(host.event_log, host.toggles, self)
        self.run.run_started.connect(self._on_run_started)
        self.run.run_reset.connect(self._on_run_reset)
        self.run.session_opened.connect(self._on_session_opened)
        self._timer = QTimer(self)
        self._timer.setInterval(OBJECTIVES_MS)
        self._timer.timeout.connect(self._on_objectives_timer)
        self._timer.start()

    # ------------------------------------------------------------ docks on demand
    @property
    def exercise(self) -> Any:
        """The exercise panel (built on first use)."""
        if self._exercise is None:
            from .panels.exercise import ExercisePanel

            self._exercise = ExercisePanel(active=False)  # free play until the user opens an exercise
            self.restore_student()  # the name remembered from the last submission
            self._exercise.start_requested.connect(self._on_start_requested)
            self._exercise.submission_requested.connect(self._on_submission_requested)
            # Exercise mode asks for a prediction before each toggle; free play leaves it to the switch.
            self._exercise.active_changed.connect(self.host.toggles.set_predict)
        return self._exercise

    @property
    def exercise_dock(self) -> Any:
        if self._exercise_dock is None:
            self._exercise_dock = self._make_dock("Exercise", "exerciseDock", self.exercise, self.exercise_action)
        return self._exercise_dock

    @property
    def jacobian(self) -> Any:
        """The Jacobian spectrum plot (built on first use)."""
        if self._jacobian is None:
            from .plots.jacobian import JacobianSpectrumPlot

            self._jacobian = JacobianSpectrumPlot()
            self._jacobian.compute_requested.connect(self._on_jacobian_requested)
        return self._jacobian

    @property
    def jacobian_dock(self) -> Any:
        if self._jacobian_dock is None:
            self._jacobian_dock = self._make_dock("Jacobian spectrum", "jacobianDock", self.jacobian, self.jacobian_action)
        return self._jacobian_dock

    def _make_dock(self, title: str, name: str, widget: Any, action: QAction) -> Any:
        dock = self.host.add_dock(title, name, widget, Qt.DockWidgetArea.RightDockWidgetArea, listed=False)
        other = self._jacobian_dock if name == "exerciseDock" else self._exercise_dock
        if other is not None:
            self._window.tabifyDockWidget(other, dock)
        dock.hide()
        dock.visibilityChanged.connect(lambda on, a=action, d=dock: a.setChecked(d.isVisible()))
        return dock

    @staticmethod
    def _show_dock(dock: Any, on: bool, window: Optional[QMainWindow] = None) -> None:
        if on:
            dock.show()
            dock.raise_()
            if window is not None and not dock.isFloating():
                # A side panel: the plots keep most of the width (a quarter for the dock).
                window.resizeDocks([dock], [max(300, window.width() // 4)], Qt.Orientation.Horizontal)
        else:
            dock.hide()

    # ------------------------------------------------------------ exercises
    def add_menu(self, menu_bar: Any) -> Any:
        """Exercises menu: Free play, then one entry per readable exercise (listed when the menu opens)."""
        from PySide6.QtWidgets import QMenu

        menu = QMenu("E&xercises", menu_bar)
        actions = menu_bar.actions()
        if actions:  # before Help, which stays last
            menu_bar.insertMenu(actions[-1], menu)
        else:
            menu_bar.addMenu(menu)
        menu.setToolTipsVisible(True)
        menu.aboutToShow.connect(self._on_menu_about_to_show)
        self.menu = menu
        self._fill_menu(with_exercises=False)  # cheap entries now; the exercise files are read on first opening
        return menu

    @Slot()
    def _on_menu_about_to_show(self) -> None:
        # (The menu is not visible yet while aboutToShow runs: testing isVisible() here
        # left the exercises out until the panel had been built some other way.)
        self._fill_menu(with_exercises=True)

    def _fill_menu(self, with_exercises: bool = True) -> None:
        menu = self.menu
        menu.clear()
        free = menu.addAction("Free play (no exercise)")
        free.setToolTip("Nothing is checked and no warning about an exercise's settings appears.")
        free.triggered.connect(lambda: self._exercise is not None and self._exercise.set_active(False))
        menu.addAction(self.exercise_action)
        menu.addSeparator()
        if self._exercise is None and not with_exercises:
            return  # listing the exercises reads their files: only when the user opens the menu
        for ex in self.exercise.exercises():
            a = menu.addAction(f"{ex.title}  [{ex.level}]")
            a.setToolTip("Open this exercise: its text, its objectives checked live on your run, and its questions.")
            a.triggered.connect(lambda _checked=False, eid=ex.id: self.open_exercise(eid))

    def open_exercise(self, exercise_id: str) -> bool:
        """Exercise mode on the exercise ``exercise_id``: the dock opens and its objectives are checked."""
        if not self.exercise.select_exercise(exercise_id):
            return False
        self.exercise.set_active(True)
        self._show_dock(self.exercise_dock, True, self._window)
        if self.run.mirror is not None:
            self.exercise.update_from(self.run.mirror)
        return True

    @Slot(object)
    def _on_start_requested(self, ex: Any) -> None:
        """Load the exercise's starting point into the builder; the student presses Run."""
        self.host.builder.set_config(ex.config)
        self.host.builder.set_schedule(tuple(ex.events))
        if ex.view_metric:
            self.host.show_metric(ex.view_metric)  # the view its questions are about
        self.host.builder_dock.raise_()
        self._window.statusBar().showMessage(f"Loaded the starting point of “{ex.title}”: press Run.", 8000)

    @Slot(object, dict)
    def _on_submission_requested(self, ex: Any, answers: dict, on_done: Optional[Callable[[bool], None]] = None) -> bool:
        """Ask the name and the folder, then write; ``on_done(written)`` at the end. False: nothing started."""
        if self.run.mirror is None:
            self.host.show_error("Nothing to submit", "Run the exercise first: a submission holds your session.")
            return False
        student = self.ask_student()
        if student is None:
            return False
        folder = ask_submission_target(self._window, self.host.export_dir, ex.id)
        if not folder:
            return False
        self.submit_to(folder, ex, answers, student, on_done)
        return True

    def active_exercise(self) -> Any:
        """The exercise open in exercise mode (None: free play, or the panel was never opened)."""
        panel = self._exercise
        if panel is None or not panel.active:
            return None
        return panel.current_exercise()

    def unsaved_answers(self) -> str:
        """The title of the open exercise when answers are typed and not handed in as they are ("" if none)."""
        panel = self._exercise
        if panel is None or not panel.active:
            return ""
        ex = panel.current_exercise()
        answers = panel.answers()
        if ex is None or not answers or self._handed_in.get(ex.id) == answers:
            return ""
        return str(ex.title)

    def submit_current(self, on_done: Callable[[bool], None]) -> bool:
        """Hand in the open exercise's typed answers with the session (the panel's Export submission)."""
        panel = self._exercise
        ex = panel.current_exercise() if panel is not None else None
        if ex is None:
            return False
        return self._on_submission_requested(ex, panel.answers(), on_done)

    def restore_student(self) -> None:
        """Fill the panel's name field with the name remembered from the last submission
        (done when the panel is built: it is built on first use, not at start-up)."""
        self.exercise.set_student(read_str(settings(), KEY_STUDENT))

    def ask_student(self) -> "str | None":
        """The name or ID for the grade book: the panel's field, or asked once when it is empty.

        Remembered in the settings for the next submission. None: the student cancelled.
        An empty answer is allowed (the submission still grades, without a name).
        """
        student = self.exercise.student()
        if not student:
            text, ok = QInputDialog.getText(
                self._window, "Export submission", "Your name or student ID (for the grade book):", QLineEdit.EchoMode.Normal, ""
            )
            if not ok:
                return None
            student = " ".join(text.split())
            self.exercise.set_student(student)
        s = settings()
        s.setValue(KEY_STUDENT, student)
        s.sync()
        return student

    def submit_to(self, folder: str, ex: Any, answers: dict, student: str = "",
                  on_done: Optional[Callable[[bool], None]] = None) -> None:
        """Write the engine's full session + submission.json (between steps, in the engine process)."""
        target = str(Path(folder) / f"submission-{ex.id}") if Path(folder).is_dir() and any(Path(folder).iterdir()) else folder
        # A partial of a gradsim function: it is pickled to the engine process (a lambda cannot be).
        task = functools.partial(engine_tasks.submission_task, folder=target, exercise=ex, answers=dict(answers), student=student)
        handed_in = (ex.id, dict(answers))

        def written(path: str) -> None:
            self._handed_in[handed_in[0]] = handed_in[1]
            self._on_submission_written(path)
            if on_done is not None:
                on_done(True)

        def failed(exc: BaseException) -> None:
            self._on_submission_failed(exc)
            if on_done is not None:
                on_done(False)

        self.run.worker.submit(task, written, failed)

    def _on_submission_written(self, path: str) -> None:
        self.last_submission = path
        self._window.statusBar().showMessage(f"Submission written to {path}", 10000)
        self.submission_written.emit(path)

    def _on_submission_failed(self, exc: BaseException) -> None:
        if isinstance(exc, engine_tasks.SubmissionWriteError):  # the place cannot be written: say so, nothing else is wrong
            self.host.show_error("Submission not written", f"{exc}\n\nYour session is still in memory: you can try another folder.")
            return
        # Anything else is a defect (in GradSim or in the exercise file): log it, show it as one.
        log.error("writing a submission failed", exc_info=exc)
        self.host.show_error(
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

    @Slot(object)
    def _on_session_opened(self, _session: Any) -> None:
        self.predictions.clear()  # an opened session's predictions are reported afresh

    @Slot()
    def _on_run_reset(self) -> None:
        self._forget_run("No run: start one, then press Compute for the spectrum of the live network.")

    def _forget_run(self, jacobian_text: str) -> None:
        """Nothing that described the previous run stays on screen (the plots reset themselves)."""
        self._run_ticket += 1
        self.predictions.clear()
        if self._jacobian is not None:
            self._jacobian.set_spectrum(None, jacobian_text)
        if self._exercise is not None:
            self._exercise.update_from(None)

    # ------------------------------------------------------------ jacobian
    @Slot()
    def _on_jacobian_requested(self) -> None:
        if self.run.mirror is None:
            self.jacobian.set_spectrum(None, "Start a run first: the spectrum is of the live network.")
            return
        ticket = self._run_ticket
        self.run.worker.submit(
            functools.partial(engine_tasks.jacobian, n_samples=JACOBIAN_SAMPLES),
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
        self.predictions.update(self.run.mirror)
        self.predictions.update(self.run.branch_mirror, "branch B")
        ex = self._exercise
        if ex is not None and self.run.mirror is not None and ex.active and ex.isVisible():
            self.exercise.update_from(self.run.mirror)


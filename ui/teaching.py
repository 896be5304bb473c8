"""The teaching layer in the window: exercise panel, theory overlay, Jacobian spectrum.

Kept apart from main_window.py so the window's run control stays readable.
Everything that reads the live network (theory, Jacobian, submissions) runs
in the training thread between steps through ``TrainingWorker.run_on_*``;
results come back by signal.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from PySide6.QtCore import QObject, Qt, QTimer, Slot
from PySide6.QtWidgets import QFileDialog

from ui.panels.exercise import ExercisePanel, export_submission
from ui.plots.jacobian import JacobianSpectrumPlot

if TYPE_CHECKING:  # pragma: no cover
    from ui.main_window import MainWindow

THEORY_PERIOD_S = 1.0  # the prediction follows the weights about once a second
OBJECTIVES_MS = 500  # objectives re-checked twice a second
JACOBIAN_SAMPLES = 8


def _theory(trainer: Any) -> Any:
    """Runs in the worker: mean-field prediction at the current weights."""
    from gradsim.theory import predicted_for

    last = trainer.session.last()
    anchor = float(last.layer_metric("act_grad_norm")[-1]) if last is not None else None
    return predicted_for(trainer, anchor)


def _jacobian(trainer: Any) -> Any:
    from gradsim.theory import jacobian_spectrum

    return jacobian_spectrum(trainer.net, trainer.probe_inputs(JACOBIAN_SAMPLES), JACOBIAN_SAMPLES), trainer.step_index


class TeachingController(QObject):
    """Adds the exercise and Jacobian docks to a MainWindow and wires them to its worker."""

    def __init__(self, window: "MainWindow") -> None:
        super().__init__(window)
        self.w = window
        self.exercise = ExercisePanel()
        self.jacobian = JacobianSpectrumPlot()
        self.exercise_dock = window._dock("Exercise", "exerciseDock", self.exercise, Qt.DockWidgetArea.RightDockWidgetArea)
        self.jacobian_dock = window._dock("Jacobian spectrum", "jacobianDock", self.jacobian, Qt.DockWidgetArea.RightDockWidgetArea)
        window.tabifyDockWidget(self.exercise_dock, self.jacobian_dock)
        self.exercise_dock.raise_()
        for dock in (self.exercise_dock, self.jacobian_dock):
            a = dock.toggleViewAction()
            a.setToolTip(f"Show or hide the {dock.windowTitle().lower()} panel.")
            window.view_menu.addAction(a)
        self.last_prediction: Any = None
        self.last_submission = ""
        self._theory_at = 0.0
        self._theory_pending = False
        self._theory_generation = -1

        self.exercise.start_requested.connect(self._on_start_requested)
        self.exercise.submission_requested.connect(self._on_submission_requested)
        self.jacobian.compute_requested.connect(self._on_jacobian_requested)
        window.worker.session_task_done.connect(self._on_task_done)
        window.worker.session_task_failed.connect(self._on_task_failed)
        window.mirror_updated.connect(self._on_mirror_updated)
        self._timer = QTimer(self)
        self._timer.setInterval(OBJECTIVES_MS)
        self._timer.timeout.connect(self._on_objectives_timer)
        self._timer.start()

    # ------------------------------------------------------------ exercises
    @Slot(object)
    def _on_start_requested(self, ex: Any) -> None:
        """Load the exercise's starting point into the builder; the student presses Run."""
        self.w.builder.set_config(ex.config)
        self.w.builder.set_schedule(tuple(ex.events))
        self.w.builder_dock.raise_()
        self.w.statusBar().showMessage(f"Loaded the starting point of “{ex.title}”: press Run.", 8000)

    @Slot(object, dict)
    def _on_submission_requested(self, ex: Any, answers: dict) -> None:
        if self.w.mirror is None:
            self.w.show_error("Nothing to submit", "Run the exercise first: a submission holds your session.")
            return
        folder = QFileDialog.getExistingDirectory(self.w, "Export submission into an empty or new folder", self.w._export_dir)
        if folder:
            self.submit_to(folder, ex, answers)

    def submit_to(self, folder: str, ex: Any, answers: dict) -> None:
        """Write the worker's full session + submission.json (between steps, in the worker)."""
        target = str(Path(folder) / f"submission-{ex.id}") if Path(folder).is_dir() and any(Path(folder).iterdir()) else folder
        self.w.worker.run_on_session("submission", lambda s: str(export_submission(target, ex, s, dict(answers))))

    # ------------------------------------------------------------ theory
    @Slot(int)
    def _on_mirror_updated(self, generation: int) -> None:
        if self.w.plots.depth_profile.metric_name != "act_grad_norm":
            return  # the overlay is only drawn for ||dL/dz||: do not slow training for nothing
        now = time.monotonic()
        fresh = generation != self._theory_generation
        if self._theory_pending or (not fresh and now - self._theory_at < THEORY_PERIOD_S):
            return
        self._theory_at, self._theory_pending, self._theory_generation = now, True, generation
        self.w.worker.run_on_trainer("theory", _theory)

    def _show_prediction(self) -> None:
        dp = self.w.plots.depth_profile
        pred = self.last_prediction
        if pred is None or dp.metric_name != "act_grad_norm":
            dp.set_prediction(None)  # the mean-field prediction is of ||dL/dz||
            return
        dp.set_prediction(pred.act_grad_norm, pred.gain)

    # ------------------------------------------------------------ jacobian
    @Slot()
    def _on_jacobian_requested(self) -> None:
        if self.w.mirror is None:
            self.jacobian.set_spectrum(None, "Start a run first: the spectrum is of the live network.")
            return
        self.w.worker.run_on_trainer("jacobian", _jacobian)

    # ------------------------------------------------------------ results
    @Slot(str, object)
    def _on_task_done(self, tag: str, result: object) -> None:
        if tag == "theory":
            self._theory_pending = False
            self.last_prediction = result
            self._show_prediction()
        elif tag == "jacobian":
            values, step = result  # type: ignore[misc]
            self.jacobian.set_spectrum(values, f"hidden-to-hidden Jacobian at step {step}")
        elif tag == "submission":
            self.last_submission = str(result)
            self.w.statusBar().showMessage(f"Submission written to {result}", 10000)

    @Slot(str, str)
    def _on_task_failed(self, tag: str, message: str) -> None:
        if tag == "theory":
            self._theory_pending = False
            self.last_prediction = None
            self._show_prediction()
        elif tag == "jacobian":
            self.jacobian.set_spectrum(None, message)
        elif tag == "submission":
            self.w.show_error("Submission not written", message + "\n\nYour session is still in memory: you can try another folder.")

    @Slot()
    def _on_objectives_timer(self) -> None:
        if self.w.mirror is not None and self.exercise.isVisible():
            self.exercise.update_from(self.w.mirror)
        self._show_prediction()  # follows the depth profile's metric choice


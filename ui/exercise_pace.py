"""Exercises that ask for a change during the run pause it at the right moment and say what to do.

Why: a preset trains so fast that "switch batch norm on after step 100" was
done at step 1,408 of 1,500. When an exercise is open and the run it starts
has a change to make (gradsim.teaching.exercises.mid_run_changes), the pace's
"pause at step" is set to that step for this run (unless the student set one),
the status bar says so at Run, and at the pause it says what to change. A pause
step the exercise set is cleared again when the run ends or another run starts.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

from PySide6.QtCore import QObject, Slot

from gradsim.teaching.exercises import mid_run_changes

from .host import StatusSink
from .pace_controls import PaceControls
from .run_controller import RunController


class ExercisePace(QObject):
    """Sets and clears the exercise's pause; ``current`` gives the open exercise (None: free play)."""

    def __init__(self, parent: QObject, run: RunController, pace: PaceControls, status: StatusSink,
                 current: Callable[[], Any]) -> None:
        super().__init__(parent)
        self.run = run
        self.pace = pace
        self._status = status
        self._current = current
        #: The pause step this set for the current run (None: it set none).
        self.set_step: Optional[int] = None
        self._todo = ""
        run.run_started.connect(self._on_run_started)
        run.run_reset.connect(self._clear)
        run.worker.paced_pause.connect(self._on_paced_pause)

    def _clear(self) -> None:
        if self.set_step is not None and self.pace.pause_at.value() == self.set_step:
            self.pace.pause_at.setValue(0)
        self.set_step = None
        self._todo = ""

    @Slot(object)
    def _on_run_started(self, _config: object) -> None:
        self._clear()
        ex = self._current()
        if ex is None or self.pace.pause_at.value() > 0:
            return  # free play, or the student chose a pause step of their own
        changes = mid_run_changes(ex)
        if not changes:
            return
        step, todo = changes[0]
        self.set_step, self._todo = step, todo
        self.pace.pause_at.setValue(step)  # sent to the engine at once, before it reaches that step
        self._status.showMessage(f"Exercise: the run pauses at step {step:,} for you to act ({todo}).", 15000)

    @Slot(int, int, str)
    def _on_paced_pause(self, generation: int, step: int, _why: str) -> None:
        if generation != self.run.generation or self.set_step is None or step != self.set_step:
            return
        todo = self._todo
        self.pace.pause_at.setValue(0)  # the exercise's pause is spent: Resume trains to the end
        self.set_step = None
        # After PaceControls' own message (connected first), so this one stays.
        self._status.showMessage(f"Exercise: now is the moment: {todo}. Then press Resume (Space).", 30000)

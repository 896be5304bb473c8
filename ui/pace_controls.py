"""A pace students can follow: training speed, "pause at step N" and "pause on divergence".

Why the engine enforces it (a ``SetPace`` message, gradsim/service/loop.py): a
preset trains at hundreds of steps a second and ends before a student can act.
Slowing the redraw would not slow training; pausing from the window would stop
a step or more late. So the engine's loop waits between steps (serving
messages meanwhile) and pauses itself exactly after step N; it says so with a
``paced_pause`` report and the window's run follows it into "paused".
"""
from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QObject, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QSpinBox, QToolBar, QWidget

from .host import StatusSink
from .run_controller import RunController, RunState
from .worker import SetPace

#: The speeds offered, in steps a second (None: as fast as the machine trains).
SPEEDS: tuple[Optional[float], ...] = (1.0, 2.0, 5.0, 10.0, 30.0, 100.0, None)
#: The rates ``--speed`` accepts besides SPEEDS (steps a second).
MIN_SPEED, MAX_SPEED = 1.0, 100_000.0
#: The largest step "pause at step" accepts (beyond any run the builder allows).
MAX_PAUSE_STEP = 10_000_000


def rate_text(steps_per_s: float) -> str:
    """'1 step/s', '30 steps/s', '1,250 steps/s' (a whole number, singular for one)."""
    n = f"{steps_per_s:,.0f}"
    return f"{n} step/s" if n == "1" else f"{n} steps/s"


def speed_text(hz: Optional[float]) -> str:
    return "full speed" if hz is None else rate_text(hz)


class PaceControls(QObject):
    """The speed box and the pause-at-step box (toolbar), the pause-on-divergence entry (Run menu)."""

    def __init__(self, parent: QWidget, run: RunController, status: StatusSink) -> None:
        super().__init__(parent)
        self.run = run
        self._status = status
        self.speed = QComboBox()
        self.speed.setObjectName("speed")
        for hz in SPEEDS:
            self.speed.addItem(speed_text(hz), hz)
        self.speed.setCurrentIndex(len(SPEEDS) - 1)
        self.speed.setToolTip("Training speed: at most this many steps a second, so there is time to watch and act "
                              "(the engine waits between steps; full speed trains as fast as the machine can).")
        self.pause_at = QSpinBox()
        self.pause_at.setObjectName("pauseAt")
        self.pause_at.setRange(0, MAX_PAUSE_STEP)
        self.pause_at.setSpecialValueText("pause at step: off")
        self.pause_at.setPrefix("pause at step ")
        self.pause_at.setGroupSeparatorShown(True)
        self.pause_at.setToolTip("Pause the run exactly when this many steps are done (0: off). "
                                 "Resume (Space) goes on past it.")
        self.divergence_action = QAction("Pause on &divergence", parent, checkable=True)
        self.divergence_action.setToolTip("Pause a forked run as soon as one branch diverges (non-finite numbers), "
                                          "so the other branch can be compared there. A run that is not forked "
                                          "ends where it diverges anyway.")
        self.toggle_action = QAction("Pause when a &toggle applies", parent, checkable=True)
        self.toggle_action.setToolTip("Pause right after the first step trained with a change (a toggle you made "
                                      "or one the preset or exercise scheduled), so the moment it applies can be "
                                      "looked at before training goes on.")
        self.speed.currentIndexChanged.connect(self._on_changed)
        self.pause_at.valueChanged.connect(self._on_changed)
        self.divergence_action.toggled.connect(self._on_changed)
        self.toggle_action.toggled.connect(self._on_changed)
        run.worker.paced_pause.connect(self._on_paced_pause)

    def add_to_toolbar(self, toolbar: QToolBar) -> None:
        toolbar.addSeparator()
        toolbar.addWidget(self.speed)
        toolbar.addWidget(self.pause_at)

    # ------------------------------------------------------------ the pace
    def pace(self) -> SetPace:
        """The pace the controls show, as the engine's message."""
        n = self.pause_at.value()
        return SetPace(self.speed.currentData(), n if n > 0 else None, self.divergence_action.isChecked(),
                       self.toggle_action.isChecked())

    def set_speed(self, hz: Optional[float], *, any_rate: bool = False) -> None:
        """Choose one of SPEEDS (ValueError for another); ``any_rate``: also a rate between 1 step/s
        and MAX_SPEED (``--speed 3``), added to the box in order."""
        if hz not in SPEEDS and not (any_rate and hz is not None and MIN_SPEED <= hz <= MAX_SPEED):
            raise ValueError(f"speed {hz!r}: one of {', '.join(speed_text(s) for s in SPEEDS)}")
        i = self.speed.findData(hz)
        if i < 0:
            assert hz is not None
            i = next((k for k in range(self.speed.count())
                      if self.speed.itemData(k) is None or self.speed.itemData(k) > hz), self.speed.count())
            self.speed.insertItem(i, speed_text(hz), hz)
        self.speed.setCurrentIndex(i)

    def send(self) -> None:
        """Tell the engine (each change, and before each run: a new engine starts at full speed)."""
        self.run.worker.send(self.pace())

    def _on_changed(self, *_: object) -> None:
        self.send()

    @Slot(int, int, str)
    def _on_paced_pause(self, generation: int, step: int, why: str) -> None:
        if generation != self.run.generation or self.run.state is not RunState.RUNNING:
            return  # a run since reset, or one already paused by hand
        self.run.pause()
        self._status.showMessage(f"Paused: {why}. Press Resume (Space) to go on.", 15000)

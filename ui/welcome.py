"""The first-start welcome and three guided lessons (vanishing, exploding, a fix).

Shown once (the settings remember it; Help > Welcome and guided lessons
brings it back). A lesson loads its preset into the builder, opens the plots
on the metric that tells its story, sets a pause where the student must act,
and shows a short guide in a "Lesson" dock: what to look at, then what to
toggle and what should change.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QMainWindow, QPushButton, QTextBrowser, QVBoxLayout

from .settings import settings

#: Set once the welcome was shown, so it appears at the first start only.
KEY_WELCOME_SHOWN = "help/welcome_shown"


@dataclass(frozen=True)
class Lesson:
    key: str
    title: str
    preset: str
    #: The plots' metric for the lesson (the backprop signal shows all three stories).
    metric: str
    #: Pause the run at this step so the student acts there (0: no pause).
    pause_at: int
    #: The guide (HTML): what to look at, what to toggle, what should change.
    guide: str


LESSONS: tuple[Lesson, ...] = (
    Lesson(
        "vanishing", "1. Vanishing gradients", "vanishing-sigmoid", "act_grad_norm", 0,
        "<h3>1. Vanishing gradients</h3>"
        "<p>A 20-layer sigmoid network. The plots show <b>||dL/dz||</b>, the backprop signal each layer receives.</p>"
        "<ol><li>Press <b>Run</b> (Space).</li>"
        "<li><b>Look</b> at the heatmap: the rows near layer 1 (bottom) are dark. The signal shrinks about 4x "
        "at every layer on its way to the input.</li>"
        "<li><b>Look</b> at the depth profile (top, middle): on its log scale the signal falls in a straight line "
        "toward layer 1, many decades below the last layer. The loss (bottom right) barely moves.</li>"
        "<li><b>Toggle</b>: in <i>Live toggles</i> set <b>Activation</b> to <i>relu</i> and press Apply, then "
        "<b>Re-initialize</b> with <i>he_normal</i>. The bottom rows brighten and the loss starts to fall.</li></ol>",
    ),
    Lesson(
        "exploding", "2. Exploding gradients", "exploding-relu", "act_grad_norm", 0,
        "<h3>2. Exploding gradients</h3>"
        "<p>A deep ReLU network with weights drawn too large (std 0.5).</p>"
        "<ol><li>Press <b>Run</b>.</li>"
        "<li><b>Look</b> at the heatmap of ||dL/dz||: the rows near layer 1 are the brightest. The signal "
        "<i>grows</i> about 2.8x per layer toward the input; the loss starts in the thousands.</li>"
        "<li><b>Compare</b>: choose <i>||dL/dW||</i> in <i>Heatmap of</i>. It looks flat across layers: the "
        "explosion shows in the backprop signal, so switch back to ||dL/dz||.</li>"
        "<li><b>Toggle</b>: in <i>Live toggles</i> set <b>Clipping</b> to <i>norm</i> with 1 and press Apply. "
        "A marker appears on the time plots; the updates stay bounded from there on.</li></ol>",
    ),
    Lesson(
        "fix", "3. A fix: batch norm", "vanishing-sigmoid", "act_grad_norm", 300,
        "<h3>3. A fix: batch norm</h3>"
        "<p>The vanishing network of lesson 1, which pauses by itself at step 300.</p>"
        "<ol><li>Press <b>Run</b> and wait for the pause at step 300. The bottom rows of the heatmap are dark.</li>"
        "<li><b>Predict</b>: will batch norm make the early layers' signal grow, shrink or stay? By how many decades?</li>"
        "<li><b>Toggle</b>: in <i>Live toggles</i> tick <b>Batch norm on</b>, then press <b>Resume</b>.</li>"
        "<li><b>Look</b>: after the marker at step 300 the rows near layer 1 light up, the depth profile "
        "flattens, and the loss begins to fall. Batch norm keeps each layer's inputs out of the sigmoid's flat "
        "tails, where its derivative is nearly 0.</li></ol>",
    ),
)


class WelcomeDialog(QDialog):
    """What GradSim shows, and a button per lesson."""

    def __init__(self, parent: QMainWindow, controller: "WelcomeController") -> None:
        super().__init__(parent)
        self.setWindowTitle("Welcome to GradSim")
        layout = QVBoxLayout(self)
        intro = QLabel(
            "<h2>Welcome to GradSim</h2>"
            "<p>GradSim trains a deep network live and shows, layer by layer, how strongly the training signal "
            "reaches each layer: where it <b>vanishes</b>, where it <b>explodes</b>, and how a change you make "
            "while it trains (an activation, an initialization, batch norm, clipping) repairs it.</p>"
            "<p>Start with a guided lesson (a few minutes each):</p>"
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        #: One button per lesson, in LESSONS order.
        self.lesson_buttons: list[QPushButton] = []
        for lesson in LESSONS:
            b = QPushButton(lesson.title)
            b.setToolTip(f"Load the {lesson.preset} preset and show this lesson's guide.")
            b.clicked.connect(lambda _=False, key=lesson.key: self._start(controller, key))
            layout.addWidget(b)
            self.lesson_buttons.append(b)
        more = QLabel("Later: Help > Welcome and guided lessons, Help > Glossary (F1), and the Exercises menu.")
        more.setWordWrap(True)
        layout.addWidget(more)
        row = QHBoxLayout()
        row.addStretch(1)
        close = QPushButton("Explore on my own")
        close.clicked.connect(self.reject)
        row.addWidget(close)
        layout.addLayout(row)
        self.resize(520, 380)

    def _start(self, controller: "WelcomeController", key: str) -> None:
        self.accept()
        controller.start_lesson(key)


class WelcomeController(QObject):
    """The welcome at first start, the lessons, and Help > Welcome and guided lessons."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self._window = window
        self.dialog: Optional[WelcomeDialog] = None
        self.lesson: Optional[Lesson] = None
        self.guide: Optional[QTextBrowser] = None
        self.dock: Any = None
        self.action = QAction("&Welcome and guided lessons…", window)
        self.action.setToolTip("Three short lessons: vanishing, exploding, and a fix.")
        self.action.triggered.connect(self.show_welcome)
        self._add_to_help_menu()

    def _add_to_help_menu(self) -> None:
        for a in self._window.menuBar().actions():
            menu = a.menu()
            if menu is not None and a.text().replace("&", "") == "Help":
                first = menu.actions()[0] if menu.actions() else None
                menu.insertAction(first, self.action)
                return

    def maybe_show_first_start(self) -> bool:
        """Show the welcome if it was never shown (interactive start); True when shown now."""
        s = settings()
        if s.value(KEY_WELCOME_SHOWN, False, type=bool):
            return False
        s.setValue(KEY_WELCOME_SHOWN, True)
        s.sync()
        self.show_welcome()
        return True

    @Slot()
    def show_welcome(self) -> WelcomeDialog:
        if self.dialog is None:
            self.dialog = WelcomeDialog(self._window, self)
        self.dialog.show()  # not exec(): no nested event loop (headless runs and tests never hang)
        self.dialog.raise_()
        return self.dialog

    def start_lesson(self, key: str) -> Lesson:
        """Load lesson ``key``: its preset, its metric, its pause, and its guide in the Lesson dock."""
        lesson = next((les for les in LESSONS if les.key == key), None)
        if lesson is None:
            raise ValueError(f"lesson {key!r}: one of {', '.join(les.key for les in LESSONS)}")
        w = self._window
        if w.run.live_parts() is not None and not w.guard.confirm("Starting a lesson", lambda: self.start_lesson(key)):
            return lesson
        if w.run.state.live:
            w.run.reset()
        w.builder.apply_preset(lesson.preset)
        w.plots.set_metric(lesson.metric)
        w.pace.pause_at.setValue(lesson.pause_at)
        self.lesson = lesson
        self._ensure_dock()
        assert self.guide is not None
        self.guide.setHtml(lesson.guide)
        self.dock.show()
        self.dock.raise_()
        w.builder_dock.raise_()
        w.status.showMessage(f"Lesson loaded: {lesson.title}. Press Run.", 10000)
        return lesson

    def _ensure_dock(self) -> None:
        if self.dock is None:
            self.guide = QTextBrowser()
            self.guide.setOpenExternalLinks(False)
            self.dock = self._window.add_dock("Lesson", "lessonDock", self.guide, Qt.DockWidgetArea.RightDockWidgetArea)
            self._window.resizeDocks([self.dock], [max(280, self._window.width() // 4)], Qt.Orientation.Horizontal)

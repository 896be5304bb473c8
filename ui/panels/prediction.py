"""Predict, then toggle: the small dialog that asks before a toggle applies.

Students who commit to a prediction before a demonstration understand it
better than those who only watch (Crouch et al. 2004). The dialog is not
modal (``show()``, never ``exec()``): the run goes on, and the student may
pause it to think. It never sends anything itself: ``predicted`` carries the
Prediction and the toggles panel sends it, then the toggle. What a prediction
means, and how its outcome is measured, is in gradsim.teaching.predictions.
"""
from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QButtonGroup, QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QPushButton, QRadioButton, QSpinBox,
    QVBoxLayout, QWidget,
)

from gradsim.commands import Command
from gradsim.teaching.predictions import DEFAULT_WINDOW, MAX_DECADES, SIGNALS, STAYS_FACTOR, Prediction

_CHOICE_TEXT = {
    "grows": "grows",
    "shrinks": "shrinks",
    "stays": f"stays (within a factor {STAYS_FACTOR:g})",
}

#: Word joiner: Qt wraps a label at "||" otherwise, splitting ||dL/dz|| over two lines.
_NO_BREAK = "\u2060"
_NOTE_BEFORE = "Choose a direction first. The outcome appears beside your prediction once the steps have run."
_NOTE_AFTER = "Your prediction is recorded with the run; the outcome appears beside it once the steps have run."


class PredictionDialog(QDialog):
    """Asks which way the early layers' signal goes after ``command``, and by how many decades."""

    #: The student committed: a gradsim.teaching.predictions.Prediction for the command.
    predicted = Signal(object)

    def __init__(self, command: Command, parent: Optional[QWidget] = None, window: int = DEFAULT_WINDOW) -> None:
        super().__init__(parent)
        self.command = command
        self.window_steps = window
        self.setWindowTitle("Predict, then toggle")
        self.setModal(False)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, False)
        layout = QVBoxLayout(self)
        self.question = QLabel(
            f"Before <b>{command.text()}</b> applies: what will the backprop signal "
            f"{_NO_BREAK.join('||dL/dz||')} "
            f"of the early layers (layer 1) do over the next {window} steps, compared with the {window} before?"
        )
        self.question.setWordWrap(True)
        self.question.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.question)
        self.choices = QButtonGroup(self)
        row = QHBoxLayout()
        self.buttons: dict[str, QRadioButton] = {}
        for signal in SIGNALS:
            b = QRadioButton(_CHOICE_TEXT[signal])
            b.setObjectName(f"predict_{signal}")
            self.choices.addButton(b)
            self.buttons[signal] = b
            row.addWidget(b)
        row.addStretch(1)
        layout.addLayout(row)
        size = QHBoxLayout()
        self.decades_label = QLabel("by about")
        self.decades = QSpinBox()
        self.decades.setRange(0, MAX_DECADES)
        self.decades.setValue(1)
        self.decades.setSuffix(" decade")  # "1 decade", "2 decades": the suffix follows the value
        self.decades.valueChanged.connect(lambda n: self.decades.setSuffix(" decade" if n == 1 else " decades"))
        self.decades.setToolTip("Powers of ten: 2 decades is a factor 100. 0: less than a factor 10.")
        self.decades_label.setBuddy(self.decades)
        size.addWidget(self.decades_label)
        size.addWidget(self.decades)
        size.addStretch(1)
        layout.addLayout(size)
        self.note = QLabel(_NOTE_BEFORE)
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #616161;")
        layout.addWidget(self.note)
        box = QDialogButtonBox()
        self.ok_button: QPushButton = box.addButton("Predict and apply", QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button: QPushButton = box.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.cancel_button.setToolTip("Apply nothing: the toggle is not sent.")
        self.ok_button.setEnabled(False)  # a prediction is a choice: none is made for the student
        box.accepted.connect(self.accept)
        box.rejected.connect(self.reject)
        layout.addWidget(box)
        self.choices.buttonToggled.connect(self._on_choice)
        self.setMinimumWidth(420)

    def choice(self) -> str:
        return next((s for s, b in self.buttons.items() if b.isChecked()), "")

    def prediction(self) -> Optional[Prediction]:
        """The prediction as chosen (None before a direction is chosen)."""
        signal = self.choice()
        if not signal:
            return None
        decades = 0 if signal == "stays" else int(self.decades.value())
        return Prediction(self.command.text(), signal, decades, self.window_steps)

    def choose(self, signal: str, decades: int = 0) -> None:
        """Set the answer as a student would (for tests and the screenshots)."""
        self.buttons[signal].setChecked(True)
        self.decades.setValue(decades)

    @Slot()
    def _on_choice(self, *_: object) -> None:
        stays = self.choice() == "stays"
        self.decades.setEnabled(not stays)
        self.decades_label.setEnabled(not stays)
        self.ok_button.setEnabled(bool(self.choice()))
        self.note.setText(_NOTE_AFTER if self.choice() else _NOTE_BEFORE)

    def accept(self) -> None:
        p = self.prediction()
        if p is None:
            return
        self.predicted.emit(p)  # before ``finished``: the panel sends, then forgets the dialog
        super().accept()

"""A non-blocking error dialog.

Why not ``QMessageBox.critical``: that runs a nested event loop, which would
hang ``--self-test`` and ``--screenshot`` (nobody clicks OK), and QMessageBox
fixes its own size after it is shown, which the offscreen platform used by the
tests reports as a warning. This dialog opens window-modal with ``open()``,
lets the worker thread keep running, and its size is set once, before it shows.
"""
from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLayout,
    QPlainTextEdit,
    QPushButton,
    QStyle,
    QVBoxLayout,
    QWidget,
)


class ErrorDialog(QDialog):
    """Title, a message a student can act on, and optional technical details."""

    def __init__(self, title: str, text: str, details: str = "", parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setWindowModality(Qt.WindowModality.WindowModal)
        layout = QVBoxLayout(self)
        layout.setSizeConstraint(QLayout.SizeConstraint.SetNoConstraint)
        row = QHBoxLayout()
        icon = QLabel()
        icon.setPixmap(self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxCritical).pixmap(40, 40))
        icon.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.message = QLabel(text)
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row.addWidget(icon)
        row.addWidget(self.message, 1)
        layout.addLayout(row)
        self.details = QPlainTextEdit(details)
        self.details.setReadOnly(True)
        self.details.setVisible(False)
        layout.addWidget(self.details, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok)
        if details:
            self.details_button = QPushButton("Show details")
            self.details_button.setToolTip("Show the technical details of the error (useful in a bug report).")
            self.details_button.setCheckable(True)
            self.details_button.toggled.connect(self._on_details_toggled)
            buttons.addButton(self.details_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.accepted.connect(self.accept)
        layout.addWidget(buttons)
        self.resize(520, 200)

    def text(self) -> str:
        return self.message.text()

    @Slot(bool)
    def _on_details_toggled(self, shown: bool) -> None:
        self.details.setVisible(shown)
        self.details_button.setText("Hide details" if shown else "Show details")
        self.resize(self.width(), 420 if shown else 200)

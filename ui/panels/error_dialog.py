"""A non-blocking error dialog.

Why not ``QMessageBox.critical``: that runs a nested event loop, which would
hang ``--self-test`` and ``--screenshot`` (nobody clicks OK), and QMessageBox
fixes its own size after it is shown, which the offscreen platform used by the
tests reports as a warning. This dialog opens window-modal with ``open()``,
lets the worker thread keep running, and its size is set once, before it shows.
``OpenErrorDialogs`` keeps the ones still open (and the last message, which
``--self-test`` and the tests read), so closing the window closes them.
"""
from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtGui import QGuiApplication
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
        self._report = f"{title}\n\n{text}" + (f"\n\n{details}" if details else "")
        self.copy_button = QPushButton("Copy details")
        self.copy_button.setToolTip("Copy the message and its technical details, to paste into a bug report or an e-mail.")
        self.copy_button.clicked.connect(self._on_copy_clicked)
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
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

    def report(self) -> str:
        """What "Copy details" puts on the clipboard: title, message, details and versions."""
        import platform

        from gradsim import __version__

        return f"{self._report}\n\nGradSim {__version__}, Python {platform.python_version()}, {platform.platform()}"

    @Slot()
    def _on_copy_clicked(self) -> None:
        QGuiApplication.clipboard().setText(self.report())
        self.copy_button.setText("Copied")

    @Slot(bool)
    def _on_details_toggled(self, shown: bool) -> None:
        self.details.setVisible(shown)
        self.details_button.setText("Hide details" if shown else "Show details")
        self.resize(self.width(), 420 if shown else 200)


class OpenErrorDialogs(QObject):
    """The error dialogs a window has open, and the last error shown."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self._parent = parent
        self.dialogs: list[ErrorDialog] = []
        self.last_error = ""

    def show(self, title: str, text: str, details: str = "") -> ErrorDialog:
        """Open a non-blocking error dialog over the parent window (never a nested event loop)."""
        self.last_error = f"{title}: {text}"
        box = ErrorDialog(title, text, details, self._parent)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(self._on_finished)
        self.dialogs.append(box)
        box.open()
        return box

    @Slot(int)
    def _on_finished(self, _: int) -> None:
        box = self.sender()
        self.dialogs[:] = [d for d in self.dialogs if d is not box]

    def close_all(self) -> None:
        for box in list(self.dialogs):
            box.close()

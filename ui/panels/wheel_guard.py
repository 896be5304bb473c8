"""Spin boxes and combo boxes that a mouse wheel changes only once they have the focus.

Why: the builder is a long form in a scroll area. Scrolling it with the wheel
passed over a width or depth box changed that value silently (width 64 -> 56);
the wheel now scrolls the form unless the user clicked or tabbed into the field.
"""
from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QComboBox, QSpinBox, QWidget


class WheelSafeSpinBox(QSpinBox):
    """A QSpinBox that ignores the wheel unless focused (the event goes on to the scroll area)."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # a wheel turn does not give it the focus

    def wheelEvent(self, event: QWheelEvent) -> None:  # Qt API
        if self.hasFocus():
            super().wheelEvent(event)
        else:
            event.ignore()


class WheelSafeComboBox(QComboBox):
    """A QComboBox that ignores the wheel unless focused (the event goes on to the scroll area)."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def wheelEvent(self, event: QWheelEvent) -> None:  # Qt API
        if self.hasFocus():
            super().wheelEvent(event)
        else:
            event.ignore()

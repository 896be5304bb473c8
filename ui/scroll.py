"""A dock's content in a scroll area, so a short window scrolls it instead of clipping it."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QScrollArea, QWidget


def scrolled(widget: QWidget) -> QScrollArea:
    """``widget`` in a frameless vertical scroll area that resizes it to its width.

    Why: at 1280x720 the live toggles' "What to try" box was cut at the bottom of
    its dock with no way to read the rest.
    """
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    # As wide as the content needs (no horizontal scrolling: a cut "Apply" button reads as broken).
    area.setMinimumWidth(widget.minimumSizeHint().width() + area.verticalScrollBar().sizeHint().width())
    return area

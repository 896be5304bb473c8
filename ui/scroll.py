"""A dock's content in a scroll area, so a short window scrolls it instead of clipping it."""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QFrame, QScrollArea, QWidget


class _WidthFollower(QObject):
    """Keeps the scroll area as wide as its content needs when the content's size hint changes.

    Why: the width was set once, at the normal font; presentation mode's 1.6x font made the
    live toggles wider than their dock and cut every "Apply" button off at the right.
    """

    def __init__(self, area: QScrollArea, widget: QWidget) -> None:
        super().__init__(area)
        self._area, self._widget = area, widget
        widget.installEventFilter(self)
        self.fit()

    def fit(self) -> None:
        area = self._area
        area.setMinimumWidth(self._widget.minimumSizeHint().width() + area.verticalScrollBar().sizeHint().width())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # Qt API
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.LayoutRequest):
            self.fit()
        return False


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
    area.width_follower = _WidthFollower(area, widget)  # type: ignore[attr-defined]
    return area

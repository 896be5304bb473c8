"""The event log: one line per change to the run, at the step it took effect.

Why it lists the events that come back from the worker (not the clicks): an
event is in the log only once the trainer applied it, so the log, the plot
markers and events.csv always agree.
"""
from __future__ import annotations

from typing import Iterable, Optional

from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QHeaderView, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from gradsim.events import PREDICTION
from gradsim.session.store import Event
from gradsim.teaching.predictions import PredictionError, parse_prediction

from .tips import TIPS

_COLOURS = {"diverged": "#d32f2f", "error": "#d32f2f", "start": "#616161"}


class EventLog(QWidget):
    """A three-column list: step, kind, value."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["Step", "Event", "Value"])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        header = self.tree.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.tree.setToolTip(TIPS["event_log"])
        self.setToolTip(TIPS["event_log"])
        layout.addWidget(self.tree)
        self.events: list[Event] = []

    def add_events(self, events: Iterable[Event]) -> None:
        added = False
        for ev in events:
            self.events.append(ev)
            self._add_line(str(ev.step), ev.kind, _shown(ev), tip=ev.value)
            added = True
        if added:
            self.tree.scrollToBottom()

    def add_message(self, kind: str, text: str, step: Optional[int] = None, error: bool = True, tip: str = "") -> None:
        """A line that is not a session event (a refused command, an export), red when an error.

        ``tip``: the full text on hover, where ``text`` is a short form that fits the column."""
        self._add_line("" if step is None else str(step), kind, text, colour=_COLOURS["error"] if error else "#1565c0", tip=tip)
        self.tree.scrollToBottom()

    def _add_line(self, step: str, kind: str, value: str, colour: Optional[str] = None, tip: str = "") -> None:
        item = QTreeWidgetItem([step, kind, value])
        item.setToolTip(2, tip or value)
        c = colour or _COLOURS.get(kind)
        if c:
            for col in range(3):
                item.setForeground(col, QBrush(QColor(c)))
        self.tree.addTopLevelItem(item)

    def clear(self) -> None:
        self.events.clear()
        self.tree.clear()

    def lines(self) -> list[tuple[str, str, str]]:
        """The rows as text (for tests and the self-test)."""
        out = []
        for i in range(self.tree.topLevelItemCount()):
            it = self.tree.topLevelItem(i)
            assert it is not None  # i < topLevelItemCount()
            out.append((it.text(0), it.text(1), it.text(2)))
        return out


def _shown(ev: Event) -> str:
    """An event's value as the log shows it: a prediction in words (its raw value fills the column)."""
    if ev.kind == PREDICTION:
        try:
            p = parse_prediction(ev.value)
        except PredictionError:
            return ev.value
        return f"{p.toggle}: {p.text()}"
    return ev.value

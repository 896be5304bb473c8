"""The frame every GradSim plot widget shares: graphics, a note line and a hover read-out.

Why a base class: each plot must say what it clamps (never a silent gap) and
show exact values under the mouse; doing that once keeps the six plots alike.
"""
from __future__ import annotations

from typing import Optional, Sequence

import pyqtgraph as pg
from PySide6.QtCore import QPointF, Slot
from PySide6.QtWidgets import QVBoxLayout, QWidget

from gradsim.session import Event, Session

from .common import EventMarkers, make_note, make_readout, scene_to_view


class PlotBase(QWidget):
    """A plot widget: subclasses build items once, then ``refresh(store)`` sets their data."""

    #: One sentence on what the plot shows about the gradients (the widget's tooltip).
    TIP = ""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self._store: Optional[Session] = None
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(2, 2, 2, 2)
        self._layout.setSpacing(2)
        self.note = make_note()
        self.readout = make_readout("Exact values under the mouse pointer: step, layer and value as recorded.")
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setToolTip(self.TIP)
        self.graphics.ci.layout.setContentsMargins(2, 2, 2, 2)
        self.setToolTip(self.TIP)
        #: plot items that answer hover queries, in layout order
        self._hover_plots: list[pg.PlotItem] = []
        self.graphics.scene().sigMouseMoved.connect(self._on_mouse_moved)

    def _finish_layout(self) -> None:
        """Add graphics, note and read-out under whatever controls the subclass added."""
        self._layout.addWidget(self.graphics, 1)
        self._layout.addWidget(self.note)
        self._layout.addWidget(self.readout)

    # ----------------------------------------------------------------- public
    @property
    def store(self) -> Optional[Session]:
        """The store last plotted (kept so a metric or layer change can redraw at once)."""
        return self._store

    def refresh(self, store: Session) -> None:
        """Redraw from ``store``; subclasses implement ``_draw``."""
        self._store = store
        self._draw(store)

    def redraw(self) -> None:
        """Redraw from the last store, e.g. after a setting changed."""
        if self._store is not None:
            self._draw(self._store)

    def reset(self) -> None:
        """Empty the plot for a new run (items stay, data goes)."""
        self._store = None
        self.note.setText("")
        self.readout.setText(" ")

    def _draw(self, store: Session) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------ hover
    def readout_at(self, plot_index: int, x: float, y: float) -> str:
        """The read-out text for view point (x, y) of plot ``plot_index`` ('' for nothing)."""
        return ""

    @Slot(object)
    def _on_mouse_moved(self, pos: QPointF) -> None:
        """Show exact values under the mouse: the plot is read at a glance, the values here."""
        for i, plot in enumerate(self._hover_plots):
            p = scene_to_view(plot, pos)
            if p is None:
                continue
            text = self.readout_at(i, p.x(), p.y())
            if text:
                self.readout.setText(text)
            return


class TimePlotBase(PlotBase):
    """A plot over steps, with event markers."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.markers_list: list[EventMarkers] = []

    @property
    def markers(self) -> EventMarkers:
        """The markers of the main plot (the one with labels)."""
        return self.markers_list[0]

    def set_events(self, events: Sequence[Event]) -> int:
        """Draw markers for events not yet shown; returns how many were added to the main plot."""
        added = 0
        for i, m in enumerate(self.markers_list):
            n = m.set_events(events)
            if i == 0:
                added = n
        return added

    def reset(self) -> None:
        super().reset()
        for m in self.markers_list:
            m.reset()

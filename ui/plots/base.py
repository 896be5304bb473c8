"""The frame every GradSim plot widget shares: graphics, a note line and a hover read-out.

Why a base class: each plot must say what it clamps (never a silent gap) and
show exact values under the mouse; doing that once keeps the six plots alike.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Slot
from PySide6.QtWidgets import QGraphicsView, QLabel, QSizePolicy, QVBoxLayout, QWidget

from gradsim.session.store import Event, Session

from .axes import scene_to_view
from .labels import FitLabel, make_note, make_readout
from .markers import EventMarkers


class PlotBase(QWidget):
    """A plot widget: subclasses build items once, then ``refresh(store)`` sets their data."""

    #: One sentence on what the plot shows about the gradients (the widget's tooltip).
    TIP = ""
    #: The one line shown instead of empty axes before there is data.
    EMPTY_HINT = "Press Run to train; this plot will fill with the run's data."

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self._store: Optional[Session] = None
        #: Branch B of a forked run, drawn dashed on the same axes (None: no comparison).
        self.compare: Optional[Session] = None
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(2, 2, 2, 2)
        self._layout.setSpacing(2)
        self.note = make_note()
        #: A one-line caption (e.g. the step shown); subclasses that use it add it to the layout.
        self.header = FitLabel("")
        #: Shown instead of the (meaningless) empty axes until the first data arrives.
        self.hint = QLabel(self.EMPTY_HINT)
        self.hint.setWordWrap(True)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setStyleSheet("color: #9e9e9e;")
        self.hint.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Expanding)
        self.hint.setToolTip(self.TIP)
        self.empty = True
        self.readout = make_readout("Exact values under the mouse pointer: step, layer and value as recorded.")
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setToolTip(self.TIP)
        self.graphics.ci.layout.setContentsMargins(2, 2, 2, 2)
        # A plain fill, not pyqtgraph's cached background pixmap: copying the pixmap into
        # every repainted view box cost more than filling it (~0.3 ms of a live frame).
        self.graphics.setCacheMode(QGraphicsView.CacheModeFlag.CacheNone)
        self.setToolTip(self.TIP)
        #: plot items that answer hover queries, in layout order
        self._hover_plots: list[pg.PlotItem] = []
        self.graphics.scene().sigMouseMoved.connect(self._on_mouse_moved)

    def _finish_layout(self) -> None:
        """Add graphics (or the empty hint), note and read-out under whatever controls the subclass added."""
        self._layout.addWidget(self.graphics, 1)
        self._layout.addWidget(self.hint, 1)
        self._layout.addWidget(self.note)
        self._layout.addWidget(self.readout)
        self.graphics.setVisible(False)

    def set_empty(self, empty: bool) -> None:
        """Show the one-line hint (no data) or the graphics (data); cheap when nothing changes."""
        if empty == self.empty:
            return
        self.empty = empty
        self.hint.setVisible(empty)
        self.graphics.setVisible(not empty)

    # ----------------------------------------------------------------- public
    @property
    def store(self) -> Optional[Session]:
        """The store last plotted (kept so a metric or layer change can redraw at once)."""
        return self._store

    def refresh(self, store: Session) -> None:
        """Redraw from ``store``; subclasses implement ``_draw``."""
        self._store = store
        self.set_empty(len(store) == 0)
        self._draw(store)

    def set_compare(self, store: Optional[Session]) -> None:
        """Draw ``store`` (branch B) on the same axes at the next refresh; None stops comparing."""
        self.compare = store

    def redraw(self) -> None:
        """Redraw from the last store, e.g. after a setting changed."""
        if self._store is not None:
            self._draw(self._store)

    def reset(self) -> None:
        """Empty the plot for a new run (items stay, data goes)."""
        self._store = None
        self.compare = None
        self.note.setText("")
        self.readout.setText(" ")
        self.set_empty(True)

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


def head_room(vb: pg.ViewBox, span: float) -> float:
    """How much to add to the top of a y range of ``span`` so RangeFollower.HEAD_PX pixels stay free."""
    h = float(vb.height())
    if h <= 2 * RangeFollower.HEAD_PX:
        h = 2 * RangeFollower.HEAD_PX + 1.0  # not laid out yet (or tiny): about half the plot
    return span * RangeFollower.HEAD_PX / (h - RangeFollower.HEAD_PX)


class RangeFollower:
    """Sets a plot's view range itself instead of pyqtgraph's auto range.

    Why: auto range moves the view a little on every frame of a growing run,
    and every move re-lays out axes, ticks and labels (about a third of a
    frame's cost at 100,000 steps). Here the x range grows in 5 % steps and a
    log y range snaps to whole decades, so the view changes a few times per run.
    Once the user pans or zooms, the plot stops following until auto range
    (the "A" button) is asked for again.
    """

    #: Head room added to the right of the newest step when the x range grows: a quarter,
    #: so the range (and every tick label of the step axis) changes ~10 times per decade
    #: of steps, not ~50 (each change re-lays out the axis, the costliest part of a frame).
    X_PAD = 0.25
    #: A log y range spans at least this many decades.
    MIN_DECADES = 3
    #: Pixels kept free above the data for the event flags (two rows), so a flag never covers a curve.
    HEAD_PX = 30.0

    def __init__(self, plot: pg.PlotItem, x: bool = True, y_log: bool = False, y_linear: bool = False) -> None:
        self.plot = plot
        #: Whether the run is still growing: only then does the x range keep head room on the right
        #: (a paused or finished run's axis ends at its last step).
        self.growing = True
        #: The run's planned last step, if known: the x range never runs past it.
        self.end: Optional[float] = None
        self.x = x
        self.y_log = y_log
        self.y_linear = y_linear
        self.following = True
        self.x_range: Optional[tuple[float, float]] = None
        self.y_range: Optional[tuple[float, float]] = None
        vb = plot.getViewBox()
        if x:
            vb.disableAutoRange(axis=pg.ViewBox.XAxis)
        if y_log or y_linear:
            vb.disableAutoRange(axis=pg.ViewBox.YAxis)
        vb.sigRangeChangedManually.connect(self._on_range_changed_manually)

    def set_growing(self, growing: bool, end: Optional[float] = None) -> None:
        """The run grows (head room on the right) or not (the axis ends at the last step)."""
        if growing != self.growing or end != self.end:
            self.growing = growing
            self.end = end
            self.x_range = None  # the next update sets the range afresh

    def reset(self) -> None:
        """Follow the data again from scratch (a new run)."""
        self.following = True
        self.x_range = None
        self.y_range = None

    def _resume_if_asked(self) -> None:
        vb = self.plot.getViewBox()
        auto = vb.state["autoRange"]
        if (self.x and auto[0] is not False) or ((self.y_log or self.y_linear) and auto[1] is not False):
            if self.x:
                vb.disableAutoRange(axis=pg.ViewBox.XAxis)
            if self.y_log or self.y_linear:
                vb.disableAutoRange(axis=pg.ViewBox.YAxis)
            self.reset()

    def update(self, x0: Optional[float] = None, x1: Optional[float] = None, y: Optional[np.ndarray] = None) -> None:
        """Make sure [x0, x1] and the finite values of ``y`` are in view; move only when they are not."""
        self._resume_if_asked()
        if not self.following:
            return
        vb = self.plot.getViewBox()
        if self.x and x0 is not None and x1 is not None and np.isfinite(x0) and np.isfinite(x1):
            if x1 <= x0:
                x1 = x0 + 1.0
            cur = self.x_range
            if cur is None or x0 < cur[0] or x1 > cur[1] or (cur[1] - cur[0]) > 2.0 * (x1 - x0) + 10:
                hi = x1 + (self.X_PAD * (x1 - x0) if self.growing else 0.0) + 1.0
                if self.end is not None and x1 <= self.end:
                    hi = min(hi, self.end + 1.0)
                self.x_range = (x0, hi)
                vb.setXRange(x0, hi, padding=0)
        if y is not None and (self.y_log or self.y_linear):
            yy = np.asarray(y, dtype=np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                if self.y_log:
                    yy = np.log10(yy[yy > 0])
                yy = yy[np.isfinite(yy)]
            if yy.size == 0:
                return
            lo, hi = float(yy.min()), float(yy.max())
            if self.y_log:  # whole decades: the range changes only when the data crosses one
                # A quarter decade kept below the lowest curve: one at 1e-11.9 in a view
                # from 1e-12 ran along the x axis and read as part of it.
                lo, hi = float(np.floor(lo - 0.25)), float(np.ceil(hi))
                # The view must hold [lo, hi]; any range of MIN_DECADES that does is as good.
                # (Testing the padded range instead made a profile whose minimum hovers at a
                # decade flip between two views every few frames, each a re-laid-out axis.)
                need_lo, need_hi, widest = lo, hi, max(hi - lo, self.MIN_DECADES) + 2.0
                if hi - lo < self.MIN_DECADES:  # fewer decades and the log axis labels every minor tick
                    extra = self.MIN_DECADES - (hi - lo)
                    lo -= np.floor(extra / 2)
                    hi = lo + self.MIN_DECADES if hi < lo + self.MIN_DECADES else hi
            else:
                span = max(hi - lo, 1e-12)
                lo, hi = lo - 0.05 * span, hi + 0.05 * span
                need_lo, need_hi, widest = lo, hi, (hi - lo) + span
            cur = self.y_range
            if cur is None or need_lo < cur[0] or need_hi > cur[1] or (cur[1] - cur[0]) > widest:
                self.y_range = (lo, hi)
                vb.setYRange(lo, hi + head_room(vb, hi - lo), padding=0.02)

    @Slot(object)
    def _on_range_changed_manually(self, mask: object) -> None:
        """The user panned or zoomed: stop moving the view under their hand."""
        self.following = False


class TimePlotBase(PlotBase):
    """A plot over steps, with event markers and a view that follows the run."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.markers_list: list[EventMarkers] = []
        self.followers: list[RangeFollower] = []

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
        for f in self.followers:
            f.reset()

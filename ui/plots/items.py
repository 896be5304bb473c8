"""Lean graphics items for live plots: a line or a row of dots drawn from one prebuilt path.

Why not pyqtgraph's PlotDataItem: it wraps a PlotCurveItem (and a scatter for
symbols) and runs several layers of Python on every ``setData`` and every paint
(option lookups, per-call bounds, downsampling and clipping hooks the plots do
not use). With ten curves on screen that was the largest single share of a
live frame (benchmarks/RESULTS.md 4.7). These items keep the part of its API
the plots and tests use (``setData``, ``getData``, ``getOriginalDataset``,
``setLogMode``, ``opts["pen"]``, ``dataBounds``) and do the rest once per
``setData``: the log10 of y, the finite bounds, and one QPainterPath (or one
QPolygonF of points) that ``paint`` only hands to Qt.

Nothing is decimated or hidden here: every point given is drawn, nan breaks
the line (``connect='finite'``), and the plots clamp values for log axes before
they call ``setData`` (decimate.clamp_for_log), as before.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QPainter, QPainterPath, QPen, QPolygonF


class LineItem(pg.GraphicsObject):
    """One polyline through (x, y), broken at non-finite points, in the plot's log mode.

    ``dots > 0``: draw each finite point as a filled dot of that many pixels
    instead of a line (the depth profile's per-layer points).
    """

    def __init__(self, pen: Any = None, dots: float = 0.0, brush: Any = None) -> None:
        super().__init__()
        self.dots = float(dots)
        if dots > 0:
            colour = pg.mkColor(brush if brush is not None else (pen if pen is not None else "w"))
            qpen = QPen(colour)
            qpen.setWidthF(self.dots)
            qpen.setCapStyle(Qt.PenCapStyle.RoundCap)  # drawPoints with a round wide pen: filled dots
            qpen.setCosmetic(True)
        else:
            qpen = pg.mkPen(pen)
        #: ``opts["pen"]``: the pen the item draws with (as pyqtgraph's items expose it).
        self.opts: dict[str, Any] = {"pen": qpen}
        self._log_x = False
        self._log_y = False
        self._x: Optional[np.ndarray] = None  # as given
        self._y: Optional[np.ndarray] = None
        self._xd = np.empty(0)  # as drawn (log10 where the axis is logarithmic)
        self._yd = np.empty(0)
        self._bounds: Optional[tuple[float, float, float, float]] = None  # finite x0, x1, y0, y1 as drawn
        self._path = QPainterPath()
        self._points = QPolygonF()
        self._br: Optional[QRectF] = None

    # ------------------------------------------------------------------- data
    def setData(self, x: Any = None, y: Any = None) -> None:  # pyqtgraph API
        """Replace the points; ``setData([], [])`` empties the item."""
        xa = np.asarray([] if x is None else x, dtype=np.float64).ravel()
        ya = np.asarray([] if y is None else y, dtype=np.float64).ravel()
        if xa.shape != ya.shape:
            raise ValueError(f"x and y differ in length ({xa.size} and {ya.size})")
        self._x, self._y = xa, ya
        self._rebuild()

    def setLogMode(self, x: bool, y: bool) -> None:  # pyqtgraph API
        """Called by the PlotItem: draw log10 of the coordinates on a logarithmic axis."""
        if (bool(x), bool(y)) == (self._log_x, self._log_y):
            return
        self._log_x, self._log_y = bool(x), bool(y)
        self._rebuild()

    def _rebuild(self) -> None:
        x = np.empty(0) if self._x is None else self._x
        y = np.empty(0) if self._y is None else self._y
        with np.errstate(divide="ignore", invalid="ignore"):
            xd = np.log10(x) if self._log_x else x
            yd = np.log10(y) if self._log_y else y
        self._xd, self._yd = xd, yd
        ok = np.isfinite(xd) & np.isfinite(yd)
        if ok.all():
            fx, fy = xd, yd
        else:
            fx, fy = xd[ok], yd[ok]
        if fx.size:
            self._bounds = (float(fx.min()), float(fx.max()), float(fy.min()), float(fy.max()))
        else:
            self._bounds = None
        if self.dots > 0:
            self._points = pg.functions.arrayToQPolygonF(np.ascontiguousarray(fx), np.ascontiguousarray(fy)) if fx.size else QPolygonF()
        elif xd.size:
            self._path = pg.arrayToQPath(xd, yd, connect="finite")
        else:
            self._path = QPainterPath()
        self._br = None
        self.prepareGeometryChange()
        self.update()

    def getData(self) -> tuple[Optional[np.ndarray], Optional[np.ndarray]]:  # pyqtgraph API
        """The coordinates as drawn (log10 on a log axis); (None, None) before any data."""
        if self._x is None:
            return None, None
        return self._xd, self._yd

    def getOriginalDataset(self) -> tuple[Optional[np.ndarray], Optional[np.ndarray]]:  # pyqtgraph API
        """The values given to ``setData`` (no log10); (None, None) before any data."""
        return self._x, self._y

    # --------------------------------------------------------------- geometry
    def dataBounds(self, ax: int, frac: float = 1.0, orthoRange: object = None) -> tuple[Optional[float], Optional[float]]:
        """Finite extent along ``ax`` as drawn (for the view's auto range, the "A" button)."""
        b = self._bounds
        if b is None:
            return None, None
        return (b[0], b[1]) if ax == 0 else (b[2], b[3])

    def pixelPadding(self) -> float:  # pyqtgraph API
        """Pixels a point may reach beyond its coordinates: half a dot, or the pen's width."""
        return self.dots / 2 + 1 if self.dots > 0 else self.opts["pen"].widthF() * 0.7072 + 1

    def boundingRect(self) -> QRectF:  # Qt API
        if self._br is None:
            b = self._bounds
            if b is None:
                self._br = QRectF()
            else:
                px = py = 0.0
                pad = self.pixelPadding()
                vx, vy = self.pixelVectors()
                try:
                    px = 0.0 if vx is None else vx.length() * pad
                    py = 0.0 if vy is None else vy.length() * pad
                except OverflowError:
                    px = py = 0.0
                self._br = QRectF(b[0] - px, b[2] - py, (b[1] - b[0]) + 2 * px, (b[3] - b[2]) + 2 * py)
        return self._br

    def viewTransformChanged(self) -> None:  # pyqtgraph hook
        """Zoom changes how far a pixel of padding reaches in data units."""
        self._br = None
        self.prepareGeometryChange()
        super().viewTransformChanged()

    # ------------------------------------------------------------------ paint
    def paint(self, p: QPainter, *args: object) -> None:
        if self._bounds is None:
            return
        p.setPen(self.opts["pen"])
        if self.dots > 0:
            p.setRenderHint(QPainter.RenderHint.Antialiasing, True)  # round dots, as pyqtgraph's symbols
            p.drawPoints(self._points)
        else:
            p.drawPath(self._path)

    # ------------------------------------------------------------- pyqtgraph
    def name(self) -> Optional[str]:
        return None

    def point_count(self) -> int:
        """Points held (finite or not): what ``paint`` draws from."""
        return 0 if self._x is None else int(self._x.size)


"""Event markers: one pooled item of lines and flags per plot, the flag texts, and the hover read-out."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem

from gradsim.events import ANNOTATION_KINDS
from gradsim.session.store import Event

from .style import EVENT_COLOURS, UNKNOWN_EVENT_COLOUR


#: A flag's text is cut to this many characters (the hover read-out has the full text).
FLAG_MAX_CHARS = 36
#: Flags stack in at most this many rows at the top of a plot before labels are skipped.
FLAG_ROWS = 2


def event_label(ev: Event) -> str:
    """Full text of one event, e.g. ``batchnorm=on`` or ``pause (paused in the window)``."""
    if not ev.value:
        return ev.kind
    if ev.kind in ANNOTATION_KINDS:
        return f"{ev.kind} ({ev.value})"
    return f"{ev.kind}={ev.value}"


def event_short(ev: Event) -> str:
    """Short text of one event on a flag: ``batchnorm on``, ``lr 0.01``, ``pause``, ``fork``.

    A note shows its first word (a fork's note begins with "fork"); a kind
    prefixed "B " is branch B's change in a comparison.
    """
    if ev.kind == "note" and ev.value:
        return ev.value.split()[0].rstrip(":,")
    if ev.kind in ANNOTATION_KINDS or not ev.value:
        return ev.kind
    return f"{ev.kind} {ev.value}"


def flag_text(step: int, events: Sequence[Event]) -> str:
    """One flag for all events at ``step``: ``324: pause, batchnorm on`` (duplicates once)."""
    parts: list[str] = []
    for ev in events:
        short = event_short(ev)
        if short not in parts:
            parts.append(short)
    text = f"{step}: " + ", ".join(parts)
    return text if len(text) <= FLAG_MAX_CHARS else text[: FLAG_MAX_CHARS - 1] + "\u2026"


def full_text(step: int, events: Sequence[Event]) -> str:
    """Everything that happened at ``step``, for the hover read-out."""
    return f"{step}: " + ", ".join(event_label(ev) for ev in events)


class EventMarkerItem(pg.GraphicsObject):
    """All event markers of one plot as a single item: thin vertical lines and short flags at the top.

    Why one item: each labelled ``pg.InfiniteLine`` re-lays itself out in
    Python on every view change (~40 ms of a 60 ms frame with ~20 events on
    four plots, benchmarks/plot_refresh.py). Why flags: vertical text written
    over the curves hid the data, and two events at one step overprinted; a
    flag per step (events merged) reads horizontally at the top, and flags that
    would overlap stack in up to three rows (more: the label is left to the
    hover read-out).
    """

    def __init__(self, labels: bool = True, halo: bool = False) -> None:
        super().__init__()
        self.labels = labels
        #: Draw a dark edge under each line, so markers stay visible over a colourful image.
        self.halo = halo
        self._halo_colour = QColor(0, 0, 0)
        self.x = np.empty(0, np.float64)
        self.texts: list[str] = []
        self.colours: list[QColor] = []
        self._pens: dict[str, QPen] = {}
        self._pen_keys: list[str] = []
        self._br: Optional[QRectF] = None
        self.font = QFont()
        self.font.setPointSizeF(7.5)
        self._label_cache: dict[tuple[str, int, float], QImage] = {}
        #: Device rectangles of the flags drawn by the last paint (tests check they never overlap).
        self.flag_rects: list[QRectF] = []
        self.setZValue(20)
        # Painted into a pixmap that Qt reuses until the markers or the view change: a live
        # frame redraws the curves under the markers, and replaying ~20 lines and flags per
        # plot in Python was ~1 ms of every frame (benchmarks/RESULTS.md 4.7).
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)

    def set_markers(self, x: Sequence[float], texts: Sequence[str], colours: Sequence[str]) -> None:
        """Replace the markers (called with the grown list when events arrive)."""
        self.x = np.asarray(x, dtype=np.float64)
        self.texts = list(texts)
        self.colours = [QColor(c) for c in colours]
        for c in colours:
            if c not in self._pens:
                pen = QPen(QColor(c))
                pen.setStyle(Qt.PenStyle.DashLine)
                pen.setCosmetic(True)
                self._pens[c] = pen
        self._pen_keys = list(colours)
        self.update()

    def viewTransformChanged(self) -> None:
        """The view moved or zoomed: the item spans the visible rectangle, so its bounds change.

        The item is cached as a pixmap (see ``__init__``); ``update()`` here drops the whole
        pixmap, since flags sit at the view's top and turn at its right edge, so a pan is
        not a plain shift of the old picture.
        """
        self._br = None
        self.prepareGeometryChange()
        self.update()
        super().viewTransformChanged()

    def boundingRect(self) -> QRectF:
        if self._br is None:
            vr = self.viewRect()
            self._br = QRectF() if vr is None else QRectF(vr)
        return self._br

    def dataBounds(self, axis: int, frac: float = 1.0, orthoRange: object = None) -> None:
        return None  # markers never drive auto range

    def _label_image(self, text: str, colour: QColor, dpr: float) -> QImage:
        """The flag drawn into an image once (text on a dark box): cheap to blit every frame."""
        key = (text, colour.rgba(), dpr)
        img = self._label_cache.get(key)
        if img is None:
            fm = QFontMetricsF(self.font)
            w = int(np.ceil(fm.horizontalAdvance(text))) + 6
            h = int(np.ceil(fm.height())) + 2
            img = QImage(max(1, int(w * dpr)), max(1, int(h * dpr)), QImage.Format.Format_ARGB32_Premultiplied)
            img.setDevicePixelRatio(dpr)
            img.fill(QColor(0, 0, 0, 185))  # a dark backing keeps flags readable over curves and images
            q = QPainter(img)
            q.setFont(self.font)
            q.setPen(colour)
            q.fillRect(QRectF(0, 0, 2, h), colour)  # the flag's edge continues the marker line
            q.drawText(QPointF(4, 1 + fm.ascent()), text)
            q.end()
            if len(self._label_cache) > 512:
                self._label_cache.clear()
            self._label_cache[key] = img
        return img

    def paint(self, p: QPainter, *args: object) -> None:
        self.flag_rects = []
        n = self.x.size
        vr = self.boundingRect()
        if n == 0 or vr.isEmpty():
            return
        left, right = min(vr.left(), vr.right()), max(vr.left(), vr.right())
        idx = np.flatnonzero((self.x >= left) & (self.x <= right))
        if idx.size == 0:
            return
        tr = p.transform()
        y0, y1 = vr.top(), vr.bottom()
        dpr = float(p.device().devicePixelRatioF()) if p.device() is not None else 1.0
        p.resetTransform()
        top_dev = min(tr.map(QPointF(0.0, y0)).y(), tr.map(QPointF(0.0, y1)).y())
        bottom_dev = max(tr.map(QPointF(0.0, y0)).y(), tr.map(QPointF(0.0, y1)).y())
        # x maps linearly (no rotation in a plot): device x = a * x + b
        xa = tr.map(QPointF(0.0, y0)).x()
        xb = tr.map(QPointF(1.0, y0)).x() - xa
        xd_all = xa + xb * self.x[idx]
        if self.halo:  # fillRect: a wide pen costs ~0.1 ms per line in the raster engine
            height = bottom_dev - top_dev
            for xd in xd_all.tolist():
                p.fillRect(QRectF(xd - 1.5, top_dev, 3.0, height), self._halo_colour)
        for i, xd in zip(idx.tolist(), xd_all.tolist()):
            p.setPen(self._pens[self._pen_keys[i]])
            p.drawLine(QLineF(xd, top_dev, xd, bottom_dev))
        if not self.labels:
            return
        row_right = [-1e9] * FLAG_ROWS
        right_dev = max(tr.map(QPointF(left, y0)).x(), tr.map(QPointF(right, y0)).x())
        for i, xd in zip(idx.tolist(), xd_all.tolist()):
            img = self._label_image(self.texts[i], self.colours[i], dpr)
            w = img.width() / dpr
            h = img.height() / dpr
            x = xd if xd + w <= right_dev else xd - w  # near the right edge the flag points left
            left_dev = min(tr.map(QPointF(left, y0)).x(), right_dev)
            if x < left_dev:
                x = left_dev  # never cut at the left edge (a flag at step 0 of a narrow plot)
            row = next((r for r in range(FLAG_ROWS) if row_right[r] + 2 <= x), None)
            if row is None:
                continue  # no room: the hover read-out still names it
            y = top_dev + 1 + row * (h + 1)
            if y + h > bottom_dev:
                continue
            row_right[row] = x + w
            p.drawImage(QPointF(x, y), img)
            self.flag_rects.append(QRectF(x, y, w, h))


class EventMarkers:
    """Event markers on one plot: one line and one flag per step, events at one step merged.

    The markers live in one pooled :class:`EventMarkerItem` added to the plot
    once; ``reset()`` empties it instead of removing items (PySide6 leaks
    removed items, docs/architecture.md).
    """

    #: Beyond this many marked steps the plot would be a barcode; extra events are counted in ``hidden``.
    max_markers = 1000

    def __init__(self, plot: pg.PlotItem, labels: bool = True, halo: bool = False) -> None:
        self.plot = plot
        self.labels = labels
        self.item = EventMarkerItem(labels, halo)
        plot.addItem(self.item, ignoreBounds=True)
        self._shown: list[Event] = []
        self._groups: dict[int, list[Event]] = {}  # step -> its events, in arrival order
        self.hidden = 0

    @property
    def count(self) -> int:
        """How many marked steps (lines and flags) are drawn."""
        return len(self._groups)

    @property
    def events(self) -> list[Event]:
        """The events shown (or counted as hidden), in order."""
        return list(self._shown)

    @property
    def texts(self) -> list[str]:
        """The flags' texts, in step order."""
        return list(self.item.texts)

    def set_events(self, events: Sequence[Event]) -> int:
        """Add markers for events not yet shown; returns how many events were added.

        The event list only grows during a run; if it is not a continuation of
        what is shown (a new session), the markers start over.
        """
        shown = len(self._shown)
        if len(events) < shown or (shown and events[shown - 1] != self._shown[-1]):
            self.reset()
            shown = 0
        added = 0
        for ev in events[shown:]:
            self._shown.append(ev)
            group = self._groups.get(int(ev.step))
            if group is None:
                if len(self._groups) >= self.max_markers:
                    self.hidden += 1
                    continue
                group = self._groups[int(ev.step)] = []
            group.append(ev)
            added += 1
        if added:
            self._push()
        return added

    def _push(self) -> None:
        steps = sorted(self._groups)
        texts, colours = [], []
        for step in steps:
            group = self._groups[step]
            texts.append(flag_text(step, group))
            # The colour of the change, not of an annotation at the same step (a pause).
            lead = next((ev for ev in group if ev.kind not in ANNOTATION_KINDS), group[0])
            colours.append(EVENT_COLOURS.get(lead.kind.removeprefix("B "), UNKNOWN_EVENT_COLOUR))
        self.item.set_markers([float(s) for s in steps], texts, colours)

    def reset(self) -> None:
        """Remove every marker and forget the shown events (the item stays for reuse)."""
        self._shown.clear()
        self._groups.clear()
        self.hidden = 0
        self.item.set_markers([], [], [])

    def positions(self) -> np.ndarray:
        """Steps of the drawn markers (one per marked step)."""
        return np.asarray(sorted(self._groups), dtype=np.float64)

    def near(self, x: float, tolerance: float) -> list[tuple[int, list[Event]]]:
        """(step, its events) within ``tolerance`` steps of ``x``, nearest first, for the hover read-out."""
        hits = [(step, evs) for step, evs in self._groups.items() if abs(step - x) <= tolerance]
        return sorted(hits, key=lambda h: abs(h[0] - x))


def events_text(markers: EventMarkers, x: float, plot: pg.PlotItem) -> str:
    """' | events 324: pause (paused in the window), batchnorm=on' when the mouse is near a marker."""
    vb = plot.getViewBox()
    width = vb.viewRect().width()
    px = max(vb.width(), 1.0)
    near = markers.near(x, tolerance=4 * width / px)
    if not near:
        return ""
    return " | events " + "; ".join(full_text(step, evs) for step, evs in near[:2])

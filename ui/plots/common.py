"""Pieces every GradSim plot shares: clamping for log axes, step decimation,
event markers and the hover read-out.

Why one module: the plots must agree on what a "floor" is, on how 100,000 steps
become ~2000 points, and on how an event looks, or a student comparing two
plots would be comparing two different conventions.
"""
from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPainter, QPen
from PySide6.QtWidgets import QLabel, QSizePolicy

from gradsim.metrics import middle_layer
from gradsim.session import Event, Session

#: Smallest value drawn on a log axis. Zero, negative and tiny values are drawn here
#: (a log axis would otherwise turn them into silent gaps, DESIGN.md section 6).
LOG_FLOOR = 1e-20
#: Largest value drawn on a log axis; +inf and anything above is drawn here.
LOG_CEIL = 1e20
#: The log10 of the clamp range, used as view limits so axes stay readable.
LOG_FLOOR_EXP = -20.0
LOG_CEIL_EXP = 20.0

#: At most this many bins (image columns) along the step axis of the heatmap.
MAX_IMAGE_COLUMNS = 2000
#: At most this many bins per time curve; each bin draws its min and max, so a
#: curve holds at most twice this many points.
MAX_CURVE_BINS = 1000

#: Metrics the shared selector offers: the three named in the design first.
HEATMAP_METRICS: tuple[str, ...] = (
    "grad_norm",
    "act_grad_norm",
    "update_ratio",
    "bias_grad_norm",
    "weight_norm",
    "update_norm",
)

METRIC_LABELS: dict[str, str] = {
    "grad_norm": "||dL/dW|| (weight gradient)",
    "act_grad_norm": "||dL/dz|| (backprop signal)",
    "update_ratio": "||update|| / ||W||",
    "bias_grad_norm": "||dL/db|| (bias gradient)",
    "weight_norm": "||W|| (weight norm)",
    "update_norm": "||W_after - W_before||",
}

METRIC_TIPS: dict[str, str] = {
    "grad_norm": "Norm of the weight gradient of each layer: flat across depth even when the backprop signal decays.",
    "act_grad_norm": "Norm of dL/dz at each layer's output: the backprop signal that vanishes or explodes with depth.",
    "update_ratio": "Size of each layer's weight update relative to its weights: ~1e-3 is healthy, far below means the layer barely learns.",
    "bias_grad_norm": "Norm of the bias gradient of each layer, a second view of how much signal reaches it.",
    "weight_norm": "Norm of each layer's weights before the update; it grows without bound when training explodes.",
    "update_norm": "Norm of the change of each layer's weights in this step.",
}

#: Colours for event markers, by event kind.
EVENT_COLOURS: dict[str, str] = {
    "start": "#9e9e9e",
    "activation": "#ffb300",
    "init": "#29b6f6",
    "batchnorm": "#66bb6a",
    "clip": "#ab47bc",
    "lr": "#ff7043",
    "optimizer": "#26c6da",
    "diverged": "#ff1744",
    "pause": "#bdbdbd",
    "note": "#eeeeee",
}

#: Colours for the selected-layer curves (colour-blind friendly, Okabe-Ito).
LAYER_COLOURS: tuple[str, ...] = (
    "#56b4e9",
    "#e69f00",
    "#009e73",
    "#f0e442",
    "#cc79a7",
    "#d55e00",
    "#0072b2",
    "#ffffff",
)
MAX_SELECTED_LAYERS = len(LAYER_COLOURS)


def fmt(value: float) -> str:
    """A compact exact-enough rendering of one metric value (nan/inf spelled out)."""
    v = float(value)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        return "0"
    return f"{v:.4g}"


def clamp_for_log(values: np.ndarray) -> np.ndarray:
    """Copy of ``values`` (float64) clamped to [LOG_FLOOR, LOG_CEIL]; nan stays nan.

    Values <= 0 land on the floor and +inf on the ceiling, so a log axis shows
    them at its edge instead of dropping them.
    """
    out = np.asarray(values, dtype=np.float64).copy()
    with np.errstate(invalid="ignore"):
        np.clip(out, LOG_FLOOR, LOG_CEIL, out=out)
    return out


def default_layers(n_layers: int) -> list[int]:
    """First, middle and last layer (1-based, deduplicated): the depth extremes and a midpoint
    (the same "middle" as the exercises', gradsim.metrics.middle_layer)."""
    picks = [1, middle_layer(n_layers), n_layers]
    out: list[int] = []
    for p in picks:
        if 1 <= p <= n_layers and p not in out:
            out.append(p)
    return out


def parse_layers(text: str) -> list[int]:
    """Parse "1, 5, 10" or "1 5 10" into layer numbers; raises ValueError on junk."""
    parts = [p for p in text.replace(",", " ").split() if p]
    layers: list[int] = []
    for p in parts:
        v = int(p)
        if v not in layers:
            layers.append(v)
    return layers


# --------------------------------------------------------------------------- bins
@dataclass
class Bins:
    """Per-bin extremes of some columns of the store, ``k`` consecutive rows per bin.

    ``mx``/``mn`` propagate nan (a bin holding any nan is nan), so a non-finite
    value anywhere in a bin can never be hidden by downsampling.
    """

    k: int
    n_rows: int
    mx: np.ndarray  # (nbins, C)
    mn: np.ndarray  # (nbins, C)
    #: Leading bins identical to the previous update's (a consumer may keep what it derived from them).
    stable: int = 0

    @property
    def n_bins(self) -> int:
        return int(self.mx.shape[0])

    def starts(self) -> np.ndarray:
        """Row index of the first row of each bin."""
        return np.arange(self.n_bins, dtype=np.int64) * self.k


_CHUNK_ROWS = 8192


def _reduce_rows(block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Max and min over groups of ``k`` rows of ``block`` ((m*k, C), maybe strided)."""
    m = block.shape[0] // k
    c = block.shape[1]
    mx = np.empty((m, c), block.dtype)
    mn = np.empty((m, c), block.dtype)
    step = max(1, _CHUNK_ROWS // k) * k
    for a in range(0, m * k, step):
        b = min(a + step, m * k)
        # A contiguous copy of a cache-sized chunk is cheaper than reducing a
        # strided view of the (rows, layers, metrics) store twice.
        chunk = np.ascontiguousarray(block[a:b]).reshape((b - a) // k, k, c)
        chunk.max(axis=1, out=mx[a // k : b // k])
        chunk.min(axis=1, out=mn[a // k : b // k])
    return mx, mn


class BinCache:
    """Keeps per-bin max/min of growing store columns, so a refresh reads only new rows.

    The store only appends, except when it thins (DESIGN.md section 5), which the
    cache notices (the step at its last completed row moved) and recomputes. Bins
    hold ``k`` rows, ``k`` a power of two chosen so that at most ``max_bins`` bins
    exist; when more rows arrive, pairs of bins merge (max of max, min of min), so
    the history is never re-read.
    """

    def __init__(self, max_bins: int) -> None:
        self.max_bins = int(max_bins)
        self.reset()

    def reset(self) -> None:
        """Forget everything (the next update re-reads the whole store)."""
        self._store_ref: Optional[weakref.ReferenceType[Session]] = None
        self._key: object = None
        self.k = 1
        self._nb = 0  # completed bins held
        self._mx: Optional[np.ndarray] = None
        self._mn: Optional[np.ndarray] = None
        self._first_step: Optional[int] = None
        self._last_full_step: Optional[int] = None

    def _valid_for(self, store: Session, key: object, n: int) -> bool:
        if self._store_ref is None or self._store_ref() is not store or key != self._key:
            return False
        done = self._nb * self.k
        if n < done:
            return False
        steps = store.steps
        if n and self._first_step is not None and int(steps[0]) != self._first_step:
            return False
        if done and int(steps[done - 1]) != self._last_full_step:
            return False
        return True

    def update(self, store: Session, key: object, fetch: Callable[[int, int], np.ndarray]) -> Bins:
        """Bins of ``fetch(a, b)`` (rows a..b of the columns, shape (b-a, C)) over the whole store."""
        n = len(store)
        stable = self._nb
        if not self._valid_for(store, key, n):
            self.reset()
            self._store_ref = weakref.ref(store)
            self._key = key
            stable = 0
        while -(-n // self.k) > self.max_bins:
            self._merge()
            stable = 0
        target = n // self.k
        if target > self._nb:
            a, b = self._nb * self.k, target * self.k
            mx, mn = _reduce_rows(fetch(a, b), self.k)
            if self._mx is None or self._mx.shape[1] != mx.shape[1] or self._mx.dtype != mx.dtype:
                self._mx = np.empty((self.max_bins + 1, mx.shape[1]), mx.dtype)
                self._mn = np.empty_like(self._mx)
            assert self._mn is not None
            self._mx[self._nb : target] = mx
            self._mn[self._nb : target] = mn
            self._nb = target
        done = self._nb * self.k
        self._first_step = int(store.steps[0]) if n else None
        self._last_full_step = int(store.steps[done - 1]) if done else None
        parts_mx = [] if self._mx is None else [self._mx[: self._nb]]
        parts_mn = [] if self._mn is None else [self._mn[: self._nb]]  # type: ignore[index]
        if n > done:
            tail = fetch(done, n)
            parts_mx.append(tail.max(axis=0, keepdims=True))
            parts_mn.append(tail.min(axis=0, keepdims=True))
        if not parts_mx:
            probe = fetch(0, 0)
            empty = np.empty((0, probe.shape[1]), probe.dtype)
            return Bins(self.k, n, empty, empty.copy(), 0)
        mx = np.concatenate(parts_mx) if len(parts_mx) > 1 else parts_mx[0].copy()
        mn = np.concatenate(parts_mn) if len(parts_mn) > 1 else parts_mn[0].copy()
        return Bins(self.k, n, mx, mn, min(stable, self._nb))

    def _merge(self) -> None:
        """Double ``k``: pairs of completed bins become one (an odd last bin is re-read later)."""
        pairs = self._nb // 2
        if self._mx is not None and self._mn is not None and pairs:
            np.maximum(self._mx[0 : 2 * pairs : 2], self._mx[1 : 2 * pairs : 2], out=self._mx[:pairs])
            np.minimum(self._mn[0 : 2 * pairs : 2], self._mn[1 : 2 * pairs : 2], out=self._mn[:pairs])
        self._nb = pairs
        self.k *= 2


def curve_points(steps: np.ndarray, bins: Bins, col: int) -> tuple[np.ndarray, np.ndarray]:
    """x, y of one column for a curve: raw values when bins hold one row, else min and max per bin.

    Drawing both extremes of each bin keeps spikes visible at any zoom; nan stays
    nan (a gap with ``connect='finite'``).
    """
    if bins.n_bins == 0:
        return np.empty(0), np.empty(0)
    x0 = steps[bins.starts()].astype(np.float64)
    if bins.k == 1:
        return x0, bins.mx[:, col].astype(np.float64)
    x = np.repeat(x0, 2)
    y = np.empty(2 * bins.n_bins, np.float64)
    y[0::2] = bins.mn[:, col]
    y[1::2] = bins.mx[:, col]
    return x, y


def nonfinite_note(bins: Bins, steps: np.ndarray, what: str) -> str:
    """A one-line note about nan/inf and clamped values in some bins ('' when none)."""
    if bins.n_bins == 0:
        return ""
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(bins.mx) & np.isfinite(bins.mn))
        low = bins.mn <= LOG_FLOOR
        high = bins.mx > LOG_CEIL
    notes = []
    if bad.any():
        first = int(np.flatnonzero(bad.any(axis=1))[0])
        notes.append(f"{what} non-finite from step {int(steps[first * bins.k])}: nan = gap, inf at 1e20")
    if low.any():
        notes.append("0 or < 1e-20 drawn at 1e-20")
    if high.any():
        notes.append("> 1e20 drawn at 1e20")
    return "; ".join(notes)


# ------------------------------------------------------------------- plot helpers
def plain_axes(plot: pg.PlotItem) -> None:
    """No automatic SI prefixes: "(x0.001)" next to a log axis reads as a different value."""
    for name in ("left", "bottom"):
        plot.getAxis(name).enableAutoSIPrefix(False)
    plot.setMenuEnabled(False)


def add_legend(plot: pg.PlotItem) -> pg.LegendItem:
    """A compact legend on a translucent box, so it stays readable over curves."""
    return plot.addLegend(offset=(-5, 5), labelTextSize="8pt", brush=pg.mkBrush(0, 0, 0, 160), verSpacing=-6)


def make_log_plot(plot: pg.PlotItem, left: str, bottom: str = "step") -> None:
    """Log y axis limited to [1e-20, 1e+20]: readable whatever the gradients do."""
    plain_axes(plot)
    plot.setLogMode(x=False, y=True)
    # minYRange in decades: a flat profile still gets power-of-ten ticks.
    plot.setLimits(yMin=LOG_FLOOR_EXP - 1, yMax=LOG_CEIL_EXP + 1, minYRange=1.0)
    plot.setLabel("left", left)
    plot.setLabel("bottom", bottom)


def make_readout(tip: str) -> QLabel:
    """The label under a plot that shows exact values under the mouse."""
    label = QLabel(" ")
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
    label.setToolTip(tip)
    return label


def make_note() -> QLabel:
    """The label that says what the plot clamps or leaves out, so no gap is silent."""
    label = QLabel("")
    label.setStyleSheet("color: #e0a040;")
    label.setWordWrap(True)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
    label.setToolTip("What this plot clamps or cannot draw (zero, nan, inf), so no gap is silent.")
    return label


def scene_to_view(plot: pg.PlotItem, pos: QPointF) -> Optional[QPointF]:
    """The view coordinates of a scene position, or None when it is outside the plot."""
    vb = plot.getViewBox()
    if not vb.sceneBoundingRect().contains(pos):
        return None
    return vb.mapSceneToView(pos)


def event_label(ev: Event) -> str:
    """Text on an event marker, e.g. ``batchnorm=on``."""
    text = ev.kind if not ev.value else f"{ev.kind}={ev.value}"
    return text if len(text) <= 32 else text[:31] + "\u2026"


class EventMarkerItem(pg.GraphicsObject):
    """All event markers of one plot as a single item: vertical lines plus rotated labels.

    Why not one ``pg.InfiniteLine`` per event: each labelled line re-lays itself
    out in Python on every view change, and with ~20 events on four plots that
    alone took ~40 ms of a 60 ms frame while the x range grows (measured with
    benchmarks/plot_refresh.py). One item paints every marker in one call.
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
        self._br: Optional[QRectF] = None
        self.font = QFont()
        self.font.setPointSizeF(7.5)
        self._label_cache: dict[tuple[str, int, float], QImage] = {}
        self.setZValue(20)

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
        """The view moved or zoomed: the item spans the visible rectangle, so its bounds change."""
        self._br = None
        self.prepareGeometryChange()
        super().viewTransformChanged()

    def boundingRect(self) -> QRectF:
        if self._br is None:
            vr = self.viewRect()
            self._br = QRectF() if vr is None else QRectF(vr)
        return self._br

    def dataBounds(self, axis: int, frac: float = 1.0, orthoRange: object = None) -> None:
        return None  # markers never drive auto range

    def _label_image(self, text: str, colour: QColor, dpr: float) -> QImage:
        """The label pre-rotated into an image, once: rotated text is drawn as paths, slowly."""
        key = (text, colour.rgba(), dpr)
        img = self._label_cache.get(key)
        if img is None:
            fm = QFontMetricsF(self.font)
            w = int(np.ceil(fm.height())) + 1
            h = int(np.ceil(fm.horizontalAdvance(text))) + 2
            img = QImage(max(1, int(w * dpr)), max(1, int(h * dpr)), QImage.Format.Format_ARGB32_Premultiplied)
            img.setDevicePixelRatio(dpr)
            img.fill(QColor(0, 0, 0, 150))  # a dark backing keeps labels readable over curves and images
            q = QPainter(img)
            q.setFont(self.font)
            q.setPen(colour)
            q.translate(fm.descent(), 0)
            q.rotate(90)  # reads top to bottom, glyphs to the right of the line
            q.drawText(QPointF(1, 0), text)
            q.end()
            if len(self._label_cache) > 512:
                self._label_cache.clear()
            self._label_cache[key] = img
        return img

    def paint(self, p: QPainter, *args: object) -> None:
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
        last_label = -1e9
        if self.halo:  # fillRect: a wide pen costs ~0.1 ms per line in the raster engine
            height = bottom_dev - top_dev
            for xd in xd_all.tolist():
                p.fillRect(QRectF(xd - 1.5, top_dev, 3.0, height), self._halo_colour)
        for i, xd in zip(idx.tolist(), xd_all.tolist()):
            p.setPen(self._pens[self._pen_keys[i]])
            p.drawLine(QLineF(xd, top_dev, xd, bottom_dev))
            if self.labels and xd - last_label >= 11:
                last_label = xd
                p.drawImage(QPointF(xd + 1, top_dev + 3), self._label_image(self.texts[i], self.colours[i], dpr))


class EventMarkers:
    """Labelled vertical markers for run events on one plot, each added once.

    The markers live in one pooled :class:`EventMarkerItem` added to the plot
    once; ``reset()`` empties it instead of removing items (PySide6 leaks
    removed items, DESIGN.md section 6).
    """

    #: Beyond this many markers the plot would be a barcode; extra events are counted in ``hidden``.
    max_markers = 1000

    def __init__(self, plot: pg.PlotItem, labels: bool = True, halo: bool = False) -> None:
        self.plot = plot
        self.labels = labels
        self.item = EventMarkerItem(labels, halo)
        plot.addItem(self.item, ignoreBounds=True)
        self._shown: list[Event] = []
        self._x: list[float] = []
        self._texts: list[str] = []
        self._colours: list[str] = []
        self.hidden = 0

    @property
    def count(self) -> int:
        """How many markers are drawn."""
        return len(self._x)

    @property
    def events(self) -> list[Event]:
        """The events shown (or counted as hidden), in order."""
        return list(self._shown)

    def set_events(self, events: Sequence[Event]) -> int:
        """Add markers for events not yet shown; returns how many were added.

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
            if len(self._x) >= self.max_markers:
                self.hidden += 1
                continue
            self._x.append(float(ev.step))
            self._texts.append(event_label(ev))
            self._colours.append(EVENT_COLOURS.get(ev.kind, "#eeeeee"))
            added += 1
        if added:
            self.item.set_markers(self._x, self._texts, self._colours)
        return added

    def reset(self) -> None:
        """Remove every marker and forget the shown events (the item stays for reuse)."""
        self._shown.clear()
        self._x.clear()
        self._texts.clear()
        self._colours.clear()
        self.hidden = 0
        self.item.set_markers([], [], [])

    def positions(self) -> np.ndarray:
        """Steps of the drawn markers."""
        return np.asarray(self._x, dtype=np.float64)

    def near(self, x: float, tolerance: float) -> list[Event]:
        """Events within ``tolerance`` steps of ``x``, for the hover read-out."""
        return [ev for ev in self._shown if abs(ev.step - x) <= tolerance]


def events_text(markers: EventMarkers, x: float, plot: pg.PlotItem) -> str:
    """' | event: batchnorm=on' when the mouse is near an event marker."""
    vb = plot.getViewBox()
    width = vb.viewRect().width()
    px = max(vb.width(), 1.0)
    near = markers.near(x, tolerance=4 * width / px)
    if not near:
        return ""
    return " | event: " + ", ".join(f"{event_label(ev)} @ {ev.step}" for ev in near[:3])


def nearest_row(steps: np.ndarray, x: float) -> Optional[int]:
    """Index of the recorded row whose step is nearest ``x`` (None when empty)."""
    n = steps.shape[0]
    if n == 0 or not math.isfinite(x):
        return None
    i = int(np.searchsorted(steps, x))
    if i <= 0:
        return 0
    if i >= n:
        return n - 1
    return i if abs(steps[i] - x) < abs(x - steps[i - 1]) else i - 1

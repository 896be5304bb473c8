"""Pieces every GradSim plot shares: clamping for log axes, step decimation,
event markers and the hover read-out.

Why one module: the plots must agree on what a "floor" is, on how 100,000 steps
become ~2000 points, and on how an event looks, or a student comparing two
plots would be comparing two different conventions.
"""
from __future__ import annotations

import html
import math
import weakref
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QLineF, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPainter, QPen, QTextDocument
from PySide6.QtWidgets import QGraphicsItem, QLabel, QSizePolicy

from gradsim.metrics import middle_layer
from gradsim.session.store import Event, Session

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

#: Axis titles: short, so a vertical title fits a short plot (the combo box and tooltips give the long names).
AXIS_LABELS: dict[str, str] = {
    "grad_norm": "||dL/dW||",
    "act_grad_norm": "||dL/dz||",
    "update_ratio": "||update||/||W||",
    "bias_grad_norm": "||dL/db||",
    "weight_norm": "||W||",
    "update_norm": "||update||",
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
    value anywhere in a bin can never be hidden by downsampling. From a
    :class:`BinCache` they are read-only views of its buffers, valid until its
    next ``update`` (each plot reads them in the frame that asked for them and
    replaces them at the next).
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
        n_out = self._nb
        if n > done:
            # The partial last bin goes in the buffer's spare row (ceil(n / k) <= max_bins), so
            # a frame hands out views instead of copying every bin of the history again
            # (at 2000 columns x 100 layers that copy was ~1.3 MB per frame).
            tail = fetch(done, n)
            if self._mx is None or self._mx.shape[1] != tail.shape[1] or self._mx.dtype != tail.dtype:
                self._mx = np.empty((self.max_bins + 1, tail.shape[1]), tail.dtype)
                self._mn = np.empty_like(self._mx)
            assert self._mn is not None
            tail.max(axis=0, out=self._mx[self._nb])
            tail.min(axis=0, out=self._mn[self._nb])
            n_out += 1
        if self._mx is None or self._mn is None:
            probe = fetch(0, 0)
            empty = np.empty((0, probe.shape[1]), probe.dtype)
            return Bins(self.k, n, empty, empty.copy(), 0)
        mx, mn = self._mx[:n_out], self._mn[:n_out]
        mx.flags.writeable = False  # views of the cache: a plot must copy before changing them
        mn.flags.writeable = False
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
def cache_axes(plot: pg.PlotItem) -> None:
    """Keep each axis as a pixmap that Qt redraws only when the axis changes.

    Why: every new point of a curve repaints the view box plus a pixel or two
    around it, and the axes overlap it (their ticks point inward), so each one
    replayed its whole tick picture in Python (10 axes, ~1.2 ms of a live frame
    at 100 layers x 100,000 steps). With a device-coordinate cache Qt blits the
    overlap from the pixmap; the axis' own ``update()`` (range, ticks, label,
    style) drops the pixmap, so a changed axis is always repainted. Qt sizes
    the pixmap for the screen's pixel ratio (checked at 2x: identical text).
    """
    for name in ("left", "bottom"):
        plot.getAxis(name).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)


def plain_axes(plot: pg.PlotItem) -> None:
    """No automatic SI prefixes ("(x0.001)" next to a log axis reads as a different value); cached axes."""
    for name in ("left", "bottom"):
        plot.getAxis(name).enableAutoSIPrefix(False)
    cache_axes(plot)
    plot.setMenuEnabled(False)


class LegendLabel(QLabel):
    """A one-line legend above the plot (never on the data): a coloured mark and a name per entry.

    Why not pyqtgraph's LegendItem: it sits inside the view box, over curves
    and over guide labels such as the 1e-3 line's.
    """

    def __init__(self) -> None:
        super().__init__("")
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self._entries: list[tuple[str, str, bool]] = []
        self._compact = False

    def set_entries(self, entries: Sequence[tuple[str, str, bool]]) -> None:
        """(colour, name, dashed) per entry; the text changes only when the entries do."""
        entries = list(entries)
        if entries == self._entries:
            return
        self._entries = entries
        self.setToolTip(", ".join(name for _, name, _ in entries))
        self._render()

    def _html(self, compact: bool) -> str:
        parts = []
        for colour, name, dashed in self._entries:
            mark = ("\u2505" if dashed else "\u2501") * (1 if compact else 2)
            if compact and name.startswith("layer "):
                name = "L" + name[len("layer "):]
            sep = "" if compact else "&nbsp;"
            parts.append(f"<span style='color:{colour}'>{mark}</span>{sep}{html.escape(name)}")
        return ("&nbsp;" if compact else "&nbsp;&nbsp; ").join(parts)

    def _render(self) -> None:
        """The full legend, or a compact one ("L1 L10 L21") when the full one does not fit."""
        full = self._html(False)
        doc = QTextDocument()
        doc.setDefaultFont(self.font())
        doc.setHtml(full)
        fits = doc.idealWidth() <= self.contentsRect().width() or self.contentsRect().width() <= 0
        text = full if fits else self._html(True)
        if self.text() != text:
            self.setText(text)

    def resizeEvent(self, event) -> None:  # Qt API
        super().resizeEvent(event)
        self._render()

    def texts(self) -> list[str]:
        """The entries' names, in order."""
        return [name for _, name, _ in self._entries]


class FitLabel(QLabel):
    """A caption that never gets cut: it shows the longest of its variants that fits its width.

    The full text is always the tooltip. Why: plot headers such as
    "grad_norm per layer at step 899 (latest step)" were clipped in narrow
    panes at 1280x720.

    It paints its text itself instead of through ``QLabel.setText``: the depth
    profile's header changes with every step, and each ``setText`` asked the
    whole window to lay itself out again (``updateGeometry`` up to the top
    level), ~1 ms of every live frame for two headers. The label's size does
    not depend on its text (one line, as wide as the layout gives it), so a
    new text only repaints the label. ``text()`` and ``setText()`` keep
    QLabel's meaning for callers.
    """

    def __init__(self, text: str = "") -> None:
        super().__init__("")
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        # Opaque (filled with the window colour, as around it): a new text then repaints the
        # label alone, not the plot, splitters and panel behind it.
        self.setAutoFillBackground(True)
        self._variants: tuple[str, ...] = (text,)
        self._shown = ""
        self._fit()

    def set_variants(self, *texts: str) -> None:
        """Texts from longest to shortest; the first that fits is shown (the last is elided if need be)."""
        texts = tuple(t for t in texts if t) or ("",)
        if texts == self._variants:
            return
        self._variants = texts
        self.setToolTip(texts[0] if len(texts[0]) > 0 else "")
        self._fit()

    def setText(self, text: str) -> None:  # Qt API
        """One variant: shown whole when it fits, elided when not."""
        self.set_variants(text)

    def text(self) -> str:
        """The text shown now (the variant that fits, or the elided last one)."""
        return self._shown

    def full_text(self) -> str:
        return self._variants[0]

    def sizeHint(self) -> QSize:  # Qt API
        m = self.contentsMargins()
        return QSize(0, self.fontMetrics().height() + m.top() + m.bottom())

    def minimumSizeHint(self) -> QSize:  # Qt API
        return self.sizeHint()

    def resizeEvent(self, event) -> None:  # Qt API
        super().resizeEvent(event)
        self._fit()

    def paintEvent(self, event) -> None:  # Qt API
        p = QPainter(self)
        self.style().drawItemText(
            p, self.contentsRect(), int(self.alignment()), self.palette(), self.isEnabled(), self._shown, self.foregroundRole()
        )
        p.end()

    def _fit(self) -> None:
        width = self.contentsRect().width()
        fm = self.fontMetrics()
        chosen = None
        for text in self._variants:
            if fm.horizontalAdvance(text) <= width:
                chosen = text
                break
        if chosen is None:
            chosen = fm.elidedText(self._variants[-1], Qt.TextElideMode.ElideRight, max(0, width))
        if self._shown != chosen:
            self._shown = chosen
            self.update()


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


#: Event kinds that annotate a run rather than change it: their flag shows the kind only.
ANNOTATION_KINDS = ("start", "pause", "diverged", "note")
#: A flag's text is cut to this many characters (the hover read-out has the full text).
FLAG_MAX_CHARS = 36
#: Flags stack in at most this many rows at the top of a plot before labels are skipped.
FLAG_ROWS = 3


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
    removed items, DESIGN.md section 6).
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
            colours.append(EVENT_COLOURS.get(lead.kind.removeprefix("B "), "#eeeeee"))
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

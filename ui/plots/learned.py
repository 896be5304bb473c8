"""What the network learns: class regions over the input plane (2-D data) or a confusion matrix (digits).

Why next to the gradient plots: the heatmap says *whether* the early layers
learn; this says *what* the net has learned, so "batch norm fixed the
gradients" can be seen as a boundary that finally bends around the moons.
The data comes from the worker (``gradsim.teaching.learned``); this widget only draws
it (items created once, ``setImage``/``setData`` after).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QLabel, QStackedWidget, QVBoxLayout, QWidget

from gradsim.teaching.learned import BoundaryGrid, Confusion

from .axes import plain_axes, scene_to_view
from .labels import FitLabel, fmt, make_readout

#: Class colours (Okabe-Ito, colour-blind friendly), one per class of the 2-D sets.
CLASS_COLOURS = np.array(
    [(86, 180, 233), (230, 159, 0), (0, 158, 115), (240, 228, 66), (204, 121, 167),
     (213, 94, 0), (0, 114, 178), (255, 255, 255), (153, 153, 153), (120, 80, 40)], np.float32)


def region_image(probs: np.ndarray) -> np.ndarray:
    """(ny, nx, 4) uint8: each cell in its predicted class's colour, darker where the net is unsure."""
    k = probs.shape[2]
    pred = probs.argmax(axis=2)
    top = probs.max(axis=2)
    confidence = np.clip((top - 1.0 / k) / (1.0 - 1.0 / k), 0.0, 1.0)
    shade = 0.25 + 0.55 * confidence
    rgb = CLASS_COLOURS[pred % len(CLASS_COLOURS)] * shade[..., None]
    out = np.empty(probs.shape[:2] + (4,), np.uint8)
    out[..., :3] = np.clip(rgb, 0, 255).astype(np.uint8)
    out[..., 3] = 255
    return out


class LearnedPanel(QWidget):
    """Decision boundary (2-D inputs) or confusion matrix (digits), with probabilities on hover."""

    TIP = ("What the network has learned so far: for 2-D data, the class it predicts at every point of the "
           "input plane (brighter = more confident) with the training points on top; for digits, which true "
           "class it confuses with which. Updated at the plots' pace from the training thread.")

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setToolTip(self.TIP)
        #: The last grid drawn (None until one arrived).
        self.grid: Optional[BoundaryGrid] = None
        #: The last confusion matrix drawn.
        self.confusion: Optional[Confusion] = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        self.header = FitLabel("")  # never cut: the longest wording that fits the dock
        layout.addWidget(self.header)
        self.stack = QStackedWidget()
        layout.addWidget(self.stack, 1)
        self.hint = QLabel("Press Run to train; this panel will show what the network learns: "
                           "its class regions (2-D data) or its confusions (digits).")
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: #9e9e9e;")
        self.stack.addWidget(self.hint)

        self.boundary_view = pg.GraphicsLayoutWidget()
        self.boundary_plot: pg.PlotItem = self.boundary_view.addPlot()
        plain_axes(self.boundary_plot)
        self.boundary_plot.setLabel("bottom", "input 1")
        self.boundary_plot.setLabel("left", "input 2")
        # 1:1: a circle of points must look round, or a student misreads the boundary's shape.
        self.boundary_plot.setAspectLocked(True, ratio=1.0)
        self.regions = pg.ImageItem(axisOrder="row-major")
        self.boundary_plot.addItem(self.regions)
        self.points = pg.ScatterPlotItem(size=5, pen=pg.mkPen("#000000", width=0.6))
        self.boundary_plot.addItem(self.points)
        self.stack.addWidget(self.boundary_view)

        self.confusion_view = pg.GraphicsLayoutWidget()
        self.confusion_plot: pg.PlotItem = self.confusion_view.addPlot()
        plain_axes(self.confusion_plot)
        self.confusion_plot.setLabel("bottom", "predicted class")
        self.confusion_plot.setLabel("left", "true class")
        self.confusion_plot.invertY(True)
        self.confusion_image = pg.ImageItem(axisOrder="row-major")
        self.confusion_plot.addItem(self.confusion_image)
        cmap = pg.colormap.get("viridis")
        self._cmap_lut = cmap.getLookupTable(nPts=256, alpha=False)
        #: The colour scale of the cells (fixed 0..1: a share of the true class's samples).
        self.confusion_bar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=cmap, interactive=False,
                                             label="share of the true class", width=14)
        self.confusion_view.addItem(self.confusion_bar, row=0, col=1)
        #: One count per cell, drawn on it (pooled: items are made when a larger matrix first
        #: needs them and hidden, never removed, when a smaller one follows).
        self.cell_texts: list[pg.TextItem] = []
        self.stack.addWidget(self.confusion_view)

        self.readout = make_readout("Class probabilities under the mouse pointer.")
        layout.addWidget(self.readout)
        self.boundary_view.scene().sigMouseMoved.connect(self._on_boundary_hover)
        self.confusion_view.scene().sigMouseMoved.connect(self._on_confusion_hover)

    # ----------------------------------------------------------------- public
    def reset(self, message: str = "") -> None:
        """Back to the hint (a new run, a reset, an opened session)."""
        self.grid = None
        self.confusion = None
        self.header.setText("")
        self.readout.setText(" ")
        if message:
            self.hint.setText(message)
        self.stack.setCurrentWidget(self.hint)

    def set_grid(self, grid: BoundaryGrid) -> None:
        """Draw class regions and training points (the image's data is ``region_image(grid.probs)``)."""
        self.grid = grid
        self.image_rgba = region_image(grid.probs)
        self.regions.setImage(self.image_rgba, autoLevels=False, levels=None)
        dx = float(grid.xs[1] - grid.xs[0]) if grid.xs.size > 1 else 1.0
        dy = float(grid.ys[1] - grid.ys[0]) if grid.ys.size > 1 else 1.0
        rect = QRectF(float(grid.xs[0]) - dx / 2, float(grid.ys[0]) - dy / 2, dx * grid.xs.size, dy * grid.ys.size)
        self.regions.setRect(rect)
        if self.stack.currentWidget() is not self.boundary_view:
            self.stack.setCurrentWidget(self.boundary_view)
            self.boundary_plot.setRange(rect, padding=0)
            brushes = [pg.mkBrush(*CLASS_COLOURS[int(c) % len(CLASS_COLOURS)], 255) for c in grid.labels]
            self.points.setData(pos=grid.points, brush=brushes)
        self.header.setText(f"Decision boundary at step {grid.step}")

    def set_confusion(self, conf: Confusion) -> None:
        """Draw the confusion matrix: colour = share of the true class's samples predicted as each class."""
        self.confusion = conf
        counts = conf.counts.astype(np.float64)
        rows = counts.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(rows > 0, counts / rows, 0.0)
        self.confusion_share = share
        idx = np.clip((share * 255).round(), 0, 255).astype(np.intp)
        rgba = np.empty(share.shape + (4,), np.uint8)
        rgba[..., :3] = self._cmap_lut[idx]
        rgba[..., 3] = 255
        k = share.shape[0]
        self.confusion_image.setImage(rgba, autoLevels=False, levels=None)
        self.confusion_image.setRect(QRectF(-0.5, -0.5, k, k))
        self._draw_counts(conf.counts, share)
        if getattr(self, "_class_ticks", 0) != k:  # one tick per class: two classes read -0.5 ... 1.5 in tenths
            self._class_ticks = k
            ticks = [[(float(i), str(i)) for i in range(k)]]
            self.confusion_plot.getAxis("bottom").setTicks(ticks)
            self.confusion_plot.getAxis("left").setTicks(ticks)
        if self.stack.currentWidget() is not self.confusion_view:
            self.stack.setCurrentWidget(self.confusion_view)
            self.confusion_plot.setRange(QRectF(-0.5, -0.5, k, k), padding=0.02)
        self.header.set_variants(
            f"Confusion on the {conf.split} split at step {conf.step}: accuracy {conf.accuracy:.1%}",
            f"{conf.split} confusion, step {conf.step}: accuracy {conf.accuracy:.1%}",
            f"step {conf.step}: accuracy {conf.accuracy:.1%}",
        )

    def _draw_counts(self, counts: np.ndarray, share: np.ndarray) -> None:
        """The number of samples on each cell, dark on the bright cells and light on the dark ones."""
        k = counts.shape[0]
        font = QFont()
        font.setPointSizeF(8.0 if k <= 10 else 6.5)
        while len(self.cell_texts) < k * k:
            item = pg.TextItem("", anchor=(0.5, 0.5))
            item.setFont(font)
            self.confusion_plot.addItem(item)
            self.cell_texts.append(item)
        for i, item in enumerate(self.cell_texts):
            if i >= k * k:
                item.setVisible(False)
                continue
            row, col = divmod(i, k)
            item.setText(str(int(counts[row, col])))
            item.setColor("#000000" if share[row, col] > 0.55 else "#ffffff")
            item.setPos(float(col), float(row))
            item.setVisible(True)

    # ------------------------------------------------------------------ hover
    def probabilities_at(self, x: float, y: float) -> Optional[np.ndarray]:
        """The probabilities of the grid cell nearest (x, y), None outside the grid."""
        g = self.grid
        if g is None or g.xs.size < 2:
            return None
        dx, dy = float(g.xs[1] - g.xs[0]), float(g.ys[1] - g.ys[0])
        i = int(round((x - float(g.xs[0])) / dx))
        j = int(round((y - float(g.ys[0])) / dy))
        if not (0 <= i < g.xs.size and 0 <= j < g.ys.size):
            return None
        return g.probs[j, i]

    @Slot(object)
    def _on_boundary_hover(self, pos: QPointF) -> None:
        p = scene_to_view(self.boundary_plot, pos)
        if p is None:
            return
        probs = self.probabilities_at(p.x(), p.y())
        if probs is None:
            return
        parts = ", ".join(f"class {c}: {fmt(v)}" for c, v in enumerate(probs))
        self.readout.setText(f"({p.x():.2f}, {p.y():.2f}): {parts}")

    @Slot(object)
    def _on_confusion_hover(self, pos: QPointF) -> None:
        conf = self.confusion
        p = scene_to_view(self.confusion_plot, pos)
        if conf is None or p is None:
            return
        k = conf.counts.shape[0]
        col, row = int(round(p.x())), int(round(p.y()))
        if not (0 <= row < k and 0 <= col < k):
            return
        n = int(conf.counts[row, col])
        text = f"true {row}, predicted {col}: {n} sample{'s' if n != 1 else ''}"
        if n:
            probs = conf.mean_probs[row, col]
            top = np.argsort(probs)[::-1][:3]
            text += "; mean probabilities " + ", ".join(f"{c}: {fmt(probs[c])}" for c in top)
        self.readout.setText(text)


if __name__ == "__main__":
    import sys

    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv)
    w = LearnedPanel()
    xs = ys = np.linspace(-1.5, 1.5, 48, dtype=np.float32)
    gx, gy = np.meshgrid(xs, ys)
    p1 = 1 / (1 + np.exp(-4 * (gy - np.sin(2 * gx) * 0.5)))
    probs = np.stack([1 - p1, p1], axis=2).astype(np.float32)
    pts = np.random.default_rng(0).uniform(-1.4, 1.4, (200, 2)).astype(np.float32)
    w.set_grid(BoundaryGrid(xs, ys, probs, pts, (pts[:, 1] > np.sin(2 * pts[:, 0]) * 0.5).astype(int), 0))
    w.resize(480, 440)
    w.show()
    raise SystemExit(app.exec())

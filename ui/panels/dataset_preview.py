"""A small scatter of the training inputs, coloured by class.

Why: the depth of network a task needs (and so how far gradients must travel)
is easier to judge once you have seen the data. The points are built in the
worker thread (scikit-learn's import costs seconds), then handed here.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from .tips import TIPS

#: Okabe-Ito colours, one per class (digits has 10: the list repeats after 8).
CLASS_COLOURS = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#999999")
MAX_POINTS = 600


class DatasetPreview(QWidget):
    """Shows one data set's 2-D inputs (or, for 64-D digits, their first two principal components)."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        # The plot is built when the first points arrive (after the window has painted):
        # importing pyqtgraph is the largest cost on the way to the first paint.
        # A pyqtgraph PlotWidget and its ScatterPlotItem once built; Any because pyqtgraph ships no types.
        self.plot: Any = None
        self.scatter: Any = None
        self._holder = QWidget()
        self._holder.setFixedHeight(90)
        self._holder.setStyleSheet("background: white;")
        self.note = QLabel("Loading preview…")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: palette(mid); font-size: 9pt;")
        self.note.setAlignment(Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self._holder)
        layout.addWidget(self.note)
        self.setToolTip(TIPS["preview"])
        self.dataset = ""
        self.n_points = 0

    def set_points(self, dataset: str, points: np.ndarray, labels: np.ndarray, n_inputs: int, note: str = "") -> None:
        """Show ``points`` (n, 2) coloured by ``labels``; at most MAX_POINTS are drawn."""
        if self.plot is None:
            self._build_plot()
        if len(points) > MAX_POINTS:
            idx = np.linspace(0, len(points) - 1, MAX_POINTS).astype(int)
            points, labels = points[idx], labels[idx]
        import pyqtgraph as pg

        brushes = [pg.mkBrush(CLASS_COLOURS[int(c) % len(CLASS_COLOURS)]) for c in labels]
        self.scatter.setData(x=points[:, 0], y=points[:, 1], brush=brushes)
        self.plot.autoRange(padding=0.05)
        self.dataset = dataset
        self.n_points = len(points)
        n_classes = len(np.unique(labels)) if len(labels) else 0
        text = f"{dataset}: {n_inputs}-D inputs, {n_classes} classes"
        if note:
            text = f"{dataset}: {note}, {n_classes} classes"
        self.note.setText(text)

    def _build_plot(self) -> None:
        import pyqtgraph as pg

        plot = pg.PlotWidget()
        plot.setBackground("w")
        plot.setFixedHeight(90)
        plot.setMouseEnabled(False, False)
        plot.hideButtons()
        plot.setMenuEnabled(False)
        for axis in ("left", "bottom"):
            plot.hideAxis(axis)
        self.scatter = pg.ScatterPlotItem(size=4, pen=None)
        plot.addItem(self.scatter)
        layout = self.layout()
        assert layout is not None  # set in __init__
        layout.replaceWidget(self._holder, plot)
        self._holder.deleteLater()
        self.plot = plot

    def set_loading(self, dataset: str) -> None:
        self.note.setText(f"{dataset}: loading preview…")

    def set_sequence(self, dataset: str, text: str) -> None:
        """A sequence task has no 2-D picture: clear the points and say what one sample is."""
        if self.scatter is not None:
            self.scatter.setData(x=[], y=[])
        self.dataset = dataset
        self.n_points = 0
        self.note.setText(text)

"""Update-to-weight ratio over time for selected layers, against the 1e-3 rule of thumb.

Why it matters: a vanishing gradient shows up where it hurts, as layers whose
weights barely move (ratio far below 1e-3), while a ratio near 1 means each step
rewrites the layer: the run is about to explode.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

from .layer_curves import SelectedLayersPlot

#: The usual healthy size of an update relative to the weights.
REFERENCE_RATIO = 1e-3


class UpdateRatioPlot(SelectedLayersPlot):
    """update_ratio (||update|| / ||W||) over time for selected layers, log y, with a 1e-3 line."""

    TIP = (
        "How much each step changes a layer's weights relative to their size: around 1e-3 is healthy, "
        "far below means the layer barely learns (vanishing), near 1 means it is being rewritten (exploding)."
    )
    EMPTY_HINT = "Press Run to train; this plot will show how much each step changes a few layers' weights (1e-3 is healthy)."

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent, metric="update_ratio")
        # The view works in log10 units on a log axis, so the line sits at log10(1e-3).
        self.reference = pg.InfiniteLine(
            pos=float(np.log10(REFERENCE_RATIO)),
            angle=0,
            movable=False,
            pen=pg.mkPen("#bbbbbb", width=1, style=Qt.PenStyle.DotLine),
            label="1e-3 healthy",
            # Centred, not at the left: every run has a "0: start" marker label in the top-left
            # corner, and when all layers sit far below 1e-3 this line runs along the top edge.
            labelOpts={"position": 0.5, "color": "#bbbbbb", "anchors": [(0.5, 1), (0.5, 1)], "fill": (0, 0, 0, 170)},
        )
        self.reference.setToolTip("Rule of thumb: updates about 1e-3 of the weights; far below, the layer barely learns.")
        self.plot.addItem(self.reference, ignoreBounds=True)

    def _range_values(self, ys: list[np.ndarray]) -> np.ndarray:
        """The curves and the 1e-3 reference: the line must stay in view to be compared against."""
        return np.concatenate(ys + [np.array([REFERENCE_RATIO])])


if __name__ == "__main__":
    from .demo_data import run_demo

    raise SystemExit(run_demo(UpdateRatioPlot))

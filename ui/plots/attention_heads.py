"""Attention entropy of every head of every block at the latest sampled step (a transformer).

Why: a head whose softmax puts all its weight on one token (entropy 0) passes
gradient to that token only; a head that spreads it evenly (entropy 1, i.e.
log(seq_len) before the division) averages every token and carries no choice.
The mean over heads (the attn rows of the other plots) hides a single
collapsed head, so each head gets its own cell: blocks across, heads up, so a
24-block, 8-head net fits a short, wide tab at 1280x720.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QWidget

from gradsim.session.store import Session

from .axes import plain_axes
from .base import PlotBase
from .labels import fmt

#: Colour of a cell whose entropy is not finite (not recorded, or nan): the heatmap's magenta.
NONFINITE_RGB = (255, 0, 255)
_N_COLOURS = 255
#: At most this many block ticks along the x axis (about 20 px of text each in a 500 px tab).
MOST_TICKS = 12


def head_layout(store: Session) -> tuple[list[int], int, int]:
    """(0-based rows of the ``head`` units, blocks, heads); ([], 0, 0) for a session without them.

    Head units are named ``block l head h`` and listed block by block (gradsim.models.family).
    """
    rows = [i for i, u in enumerate(store.units) if u.kind == "head"]
    if not rows:
        return [], 0, 0
    blocks = {store.units[i].name.split()[1] for i in rows}
    n_blocks = len(blocks)
    if n_blocks == 0 or len(rows) % n_blocks:
        return [], 0, 0
    return rows, n_blocks, len(rows) // n_blocks


class AttentionHeads(PlotBase):
    """Blocks x heads image of each head's attention entropy (0 one token .. 1 uniform)."""

    TIP = (
        "Attention entropy of each head at the latest step with statistics: -sum p log p of each softmax row, "
        "divided by log(seq_len) and averaged over the batch and the query positions. 0 (dark): the head looks "
        "at one token; 1 (bright): it spreads its weight evenly over every token."
    )
    EMPTY_HINT = "A transformer run shows here the attention entropy of each head of each block."

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.step: Optional[int] = None
        #: (blocks, heads) entropies at ``step`` (nan where not recorded).
        self.values: np.ndarray = np.empty((0, 0))
        #: (blocks, heads) fraction of saturated softmax rows per head at ``step``.
        self.saturated: np.ndarray = np.empty((0, 0))
        self.seq_len: Optional[int] = None
        self.header.setToolTip(self.TIP)
        self._layout.addWidget(self.header)
        self.plot: pg.PlotItem = self.graphics.addPlot(row=0, col=0)
        plain_axes(self.plot)
        self.plot.setLabel("left", "head")
        self.plot.setLabel("bottom", "block (1 = input side)")
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setToolTip(self.TIP)
        self.plot.addItem(self.image)
        self.cmap = pg.colormap.get("viridis")
        lut = np.zeros((_N_COLOURS + 1, 4), np.uint8)
        lut[:, 3] = 255
        lut[:_N_COLOURS, :3] = self.cmap.getLookupTable(nPts=_N_COLOURS, alpha=False)
        lut[_N_COLOURS, :3] = NONFINITE_RGB
        self.lut = lut
        self.colorbar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=self.cmap, interactive=False, width=12, label="entropy")
        self.colorbar.setToolTip("0: all weight on one token; 1: uniform over every token; magenta: not finite")
        self.graphics.addItem(self.colorbar, row=0, col=1)
        self._hover_plots.append(self.plot)
        #: (step, blocks, heads, value bytes) of the image drawn (None: none yet).
        self._drawn: Optional[tuple] = None
        self._finish_layout()

    def reset(self) -> None:
        super().reset()
        self.step = None
        self.values = self.saturated = np.empty((0, 0))
        self.image.clear()
        self.header.set_variants("")
        self._drawn = None

    @staticmethod
    def applies_to(store: Optional[Session]) -> bool:
        """Whether ``store`` has per-head rows (a transformer session recorded with them)."""
        return store is not None and bool(head_layout(store)[0])

    def _draw(self, store: Session) -> None:
        rows, n_blocks, n_heads = head_layout(store)
        hs = store.has_stats
        if not rows:
            self.set_empty(True)
            self.hint.setText("This run has no attention heads (the per-head plot is for transformers).")
            return
        if hs.size == 0 or not hs.any():
            self.set_empty(True)
            self.hint.setText("No step with attention statistics yet (they are sampled every few steps).")
            return
        last = hs.size - 1 - int(np.argmax(hs[::-1]))
        step = int(store.steps[last])
        values = store.layer_metric("act_mean")[last, rows].astype(np.float64).reshape(n_blocks, n_heads)
        drawn = (step, n_blocks, n_heads, values.tobytes())
        if drawn == self._drawn:
            return
        self._drawn = drawn
        self.step, self.values = step, values
        self.saturated = store.layer_metric("act_saturation")[last, rows].astype(np.float64).reshape(n_blocks, n_heads)
        seq_len = store.config.get("seq_len") if isinstance(store.config, dict) else None
        self.seq_len = seq_len if isinstance(seq_len, int) else None
        finite = np.isfinite(values)
        idx = np.full(values.shape, _N_COLOURS, np.uint8)
        idx[finite] = np.clip(np.round(values[finite] * (_N_COLOURS - 1)), 0, _N_COLOURS - 1).astype(np.uint8)
        rgba = self.lut[idx.T]  # image rows are heads (y), columns blocks (x)
        self.image.setImage(rgba, autoLevels=False, levels=None)
        self.image.setRect(QRectF(0.5, 0.5, n_blocks, n_heads))
        self.plot.setXRange(0.5, n_blocks + 0.5, padding=0)
        self.plot.setYRange(0.5, n_heads + 0.5, padding=0)
        every = -(-n_blocks // MOST_TICKS)
        xt = [(float(b), str(b)) for b in range(1, n_blocks + 1) if (b - 1) % every == 0 or b == n_blocks]
        if len(xt) > 1 and xt[-1][0] - xt[-2][0] < every:  # the last block named, its neighbour tick dropped
            xt.pop(-2)
        self.plot.getAxis("bottom").setTicks([xt])
        h_every = -(-n_heads // 8)
        self.plot.getAxis("left").setTicks([[(float(h), str(h)) for h in range(1, n_heads + 1) if (h - 1) % h_every == 0]])
        uniform = f"1 = uniform over {self.seq_len} tokens" if self.seq_len else "1 = uniform"
        self.header.set_variants(
            f"Attention entropy per head, step {step}: 0 = one token, {uniform} (÷ ln {self.seq_len})" if self.seq_len else
            f"Attention entropy per head, step {step}: 0 = one token, {uniform}",
            f"Attention entropy per head, step {step}: 0 = one token, {uniform}",
            f"Head entropy, step {step}: 0 one token, 1 uniform",
            f"step {step}",
        )
        bad = int((~finite).sum())
        self.note.setText(f"{bad} heads with non-finite entropy (magenta)" if bad else "")

    def readout_at(self, plot_index: int, x: float, y: float) -> str:
        if self.values.size == 0 or not (np.isfinite(x) and np.isfinite(y)):
            return ""
        b, h = int(round(x)), int(round(y))
        if not (1 <= b <= self.values.shape[0] and 1 <= h <= self.values.shape[1]):
            return ""
        v = self.values[b - 1, h - 1]
        nats = f" ({fmt(v * np.log(self.seq_len))} nats)" if self.seq_len and np.isfinite(v) else ""
        return (f"step {self.step}, block {b} head {h}: entropy {fmt(v)}{nats}, "
                f"saturated rows {fmt(self.saturated[b - 1, h - 1])}")


if __name__ == "__main__":
    from .demo_data import run_demo

    raise SystemExit(run_demo(AttentionHeads))

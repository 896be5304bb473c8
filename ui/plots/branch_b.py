"""Branch B of a forked run stays visible however short it is: a wider dashed line and a dot where it ends.

Why: a branch that diverged a few steps after the fork (or a fork made near the
end) is a dashed stub of a few pixels next to A's long solid curve; the dot at
its last finite point, and a note saying how long it ran and where it diverged,
make it impossible to miss.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from gradsim.session.store import Session

from .items import LineItem

#: B's lines: dashed (A is solid), and wider than A's so a stub still shows.
B_WIDTH = 2
#: The dot that marks B's last drawn point, in pixels.
END_DOT = 8.0


def b_pen(colour: str) -> Any:
    return pg.mkPen(colour, width=B_WIDTH, style=Qt.PenStyle.DashLine)


def end_dot(colour: str) -> LineItem:
    """A one-point item: B's last finite point."""
    return LineItem(pg.mkPen(colour), dots=END_DOT, brush=colour)


def last_finite(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The last point of a curve whose y is finite (empty arrays when there is none)."""
    ok = np.flatnonzero(np.isfinite(y))
    if not len(ok):
        return np.empty(0), np.empty(0)
    i = int(ok[-1])
    return np.array([x[i]], np.float64), np.array([y[i]], np.float64)


def branch_note(b: Session, fork_step: int | None = None) -> str:
    """'branch B: 12 steps from the fork at step 30, diverged at step 41' (how long B ran)."""
    if len(b) == 0:
        return ""
    start = fork_step if fork_step is not None else None
    text = f"branch B ends at step {int(b.steps[-1]):,}"
    if start is not None:
        text += f" ({b.steps_run - start:,} steps after the fork)"
    if b.diverged_at is not None:
        text += f", diverged at step {b.diverged_at:,}"
    return text

"""What the network has learned: class probabilities over the input plane, and a confusion matrix.

Why here (no Qt): the window shows these, but a notebook or a grading script
may want the same numbers, and the window computes them in its worker thread
between steps.

Predictions use the network in eval mode (batch norm uses its running
statistics, as a deployed net would) under ``torch.no_grad``, and the mode is
restored afterwards: evaluating never changes the run (a forward pass in train
mode would update batch norm's running statistics; docs/architecture.md, pitfalls).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

#: Grid cells per side of the decision-boundary image (40 x 40 = 1600 points a frame).
GRID_SIZE = 40
#: Training points drawn over the regions (a fixed, seeded subset of the training set).
MAX_POINTS = 400


def predict_proba(net: torch.nn.Module, x: np.ndarray | torch.Tensor) -> np.ndarray:
    """Class probabilities (n, classes) of ``net`` on inputs ``x``, in eval mode; the mode is restored."""
    # torch is imported here, not at the top: the window unpickles this module's result
    # types (BoundaryGrid, Confusion) and must not import torch for them.
    import torch

    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            xt = torch.as_tensor(np.asarray(x, np.float32))
            return torch.softmax(net(xt), dim=1).numpy()
    finally:
        net.train(was_training)


@dataclass(frozen=True)
class BoundaryGrid:
    """Probabilities over a regular grid of the 2-D input plane, with training points to draw on it."""

    xs: np.ndarray  # (nx,) cell centres along input 1
    ys: np.ndarray  # (ny,) cell centres along input 2
    probs: np.ndarray  # (ny, nx, classes) float32
    points: np.ndarray  # (m, 2) training inputs
    labels: np.ndarray  # (m,) their classes
    step: int  # the optimizer step the weights are from (steps done)

    @property
    def predicted(self) -> np.ndarray:
        """(ny, nx) class with the highest probability per cell."""
        return self.probs.argmax(axis=2)

    def grid_points(self) -> np.ndarray:
        """(ny * nx, 2) the inputs the probabilities are of, row by row (y outer)."""
        gx, gy = np.meshgrid(self.xs, self.ys)
        return np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)


def plane_extent(points: np.ndarray, margin: float = 0.1) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1): the points' bounding box grown by ``margin`` of its size on each side."""
    lo, hi = points.min(axis=0).astype(np.float64), points.max(axis=0).astype(np.float64)
    pad = np.maximum(hi - lo, 1e-6) * margin
    return float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1])


def boundary_grid(trainer: Any, n: int = GRID_SIZE, max_points: int = MAX_POINTS) -> BoundaryGrid:
    """The trainer's network's class probabilities over its 2-D data's plane (raises ValueError for other inputs)."""
    data = trainer.data
    if data.n_inputs != 2:
        raise ValueError(f"the decision boundary needs 2-D inputs; {trainer.config.dataset!r} has {data.n_inputs}")
    x = np.asarray(data.x_train, np.float32)
    x0, x1, y0, y1 = plane_extent(x)
    xs = np.linspace(x0, x1, n, dtype=np.float32)
    ys = np.linspace(y0, y1, n, dtype=np.float32)
    gx, gy = np.meshgrid(xs, ys)
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    probs = predict_proba(trainer.net, grid).reshape(n, n, -1).astype(np.float32)
    take = np.random.default_rng(0).permutation(len(x))[:max_points]
    return BoundaryGrid(xs, ys, probs, x[take].copy(), np.asarray(data.y_train)[take].copy(), int(trainer.step_index))


@dataclass(frozen=True)
class Confusion:
    """Counts of (true class, predicted class) and the mean probabilities behind them."""

    counts: np.ndarray  # (classes, classes) int: row = true class, column = predicted
    mean_probs: np.ndarray  # (classes, classes, classes): mean probability vector of the samples in each cell
    split: str  # "held-out" or "training"
    step: int

    @property
    def accuracy(self) -> float:
        total = int(self.counts.sum())
        return float(np.trace(self.counts) / total) if total else float("nan")


def confusion(trainer: Any, max_samples: int = 2000) -> Confusion:
    """Confusion matrix on the held-out split (the training split when there is none)."""
    data = trainer.data
    split = "held-out" if len(data.y_test) else "training"
    x = data.x_test if len(data.y_test) else data.x_train
    y = np.asarray(data.y_test if len(data.y_test) else data.y_train)
    x, y = x[:max_samples], y[:max_samples]
    probs = predict_proba(trainer.net, x)
    k = probs.shape[1]
    pred = probs.argmax(axis=1)
    counts = np.zeros((k, k), np.int64)
    np.add.at(counts, (y, pred), 1)
    sums = np.zeros((k, k, k), np.float64)
    np.add.at(sums, (y, pred), probs)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts[:, :, None]
    return Confusion(counts, mean.astype(np.float32), split, int(trainer.step_index))

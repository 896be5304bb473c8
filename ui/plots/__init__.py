"""Live plots of GradSim: one module per plot, and PlotPanel holding all six.

Classes are imported lazily so ``python -m ui.plots.heatmap`` does not import
the module twice (and importing ``ui.plots`` stays cheap).
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "GradientHeatmap": "heatmap",
    "DepthProfile": "depth_profile",
    "LayerCurves": "layer_curves",
    "UpdateRatioPlot": "update_ratio",
    "LossAccuracyPlot": "loss_accuracy",
    "ActivationStats": "activations",
    "PlotPanel": "panel",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Help inside the app: a glossary of every metric, plot and idea, and the keyboard shortcuts.

The glossary is built from the texts the app already shows (each metric's
label and tooltip, each plot's tooltip), so a word means the same in the
glossary as under the mouse; only the ideas (vanishing, exploding, the fixes)
are written here. The shortcut list is read from the window's actions, so it
can never list a key that does nothing or miss one that was added.
"""
from __future__ import annotations

import html
from typing import Iterable, Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLineEdit, QTextBrowser, QVBoxLayout, QWidget

from gradsim.activations import SAT_SIGMOID_HI, SAT_SIGMOID_LO, SAT_TANH

from .plots.labels import METRIC_LABELS, METRIC_TIPS

#: Step-level numbers (steps.csv, the status bar, the loss plot).
STEP_TERMS: tuple[tuple[str, str], ...] = (
    ("loss", "The training loss of the step's batch (cross entropy for classes, mean squared error for regression)."),
    ("accuracy", "The fraction of the step's training batch classified right: a batch figure, not a held-out one."),
    ("test_accuracy (held-out accuracy)", "The fraction of the held-out split (examples the network never trains on) "
     "classified right, measured every stats interval after that step's update; the blue curve under the batch "
     "accuracy. A batch accuracy far above it means the network memorizes rather than generalizes."),
    ("grad_norm_total", "The norm of the whole gradient (every parameter together) before clipping."),
    ("grad_norm_applied", "The norm of the gradient the optimizer used: after clipping, if clipping is on."),
    ("clipped", "1 when clipping changed the gradient at this step, 0 otherwise."),
)

#: Per-layer activation statistics (sampled every few steps: they cost more than the norms).
ACTIVATION_TERMS: tuple[tuple[str, str], ...] = (
    ("act_mean, act_std", "The mean and standard deviation of a layer's outputs over the batch and its units: a std "
                          "shrinking layer by layer is the forward picture of a vanishing signal."),
    ("act_saturation", f"The fraction of a layer's sigmoid or tanh outputs in the flat tails (|tanh| > {SAT_TANH:g}, "
                       f"sigmoid below {SAT_SIGMOID_LO:g} or above {SAT_SIGMOID_HI:g}), where the derivative is so "
                       "small that almost no signal passes back."),
    ("act_dead", "The fraction of a ReLU layer's units that output 0 for every input of the batch: they pass no "
                 "gradient and stop learning."),
    ("pred_gain", "The mean-field theory's prediction of how much ||dL/dz|| grows or shrinks from one layer to the "
                  "one below, for the current weights (the dashed line on the depth profile)."),
)

#: The ideas the lab teaches.
CONCEPTS: tuple[tuple[str, str], ...] = (
    ("vanishing gradient", "The backprop signal shrinks by about the same factor at every layer on its way to the "
                           "input, so it falls geometrically with depth: the early layers receive almost nothing "
                           "and barely learn. Typical cause: sigmoid or tanh with a too-small initialization."),
    ("exploding gradient", "The backprop signal grows by a factor above 1 per layer: early layers get huge "
                           "gradients, the updates overshoot and the loss jumps or becomes inf/nan. Typical cause: "
                           "weights drawn too large for the depth."),
    ("ReLU / Leaky ReLU", "Activations whose derivative is 1 for positive inputs, so they do not squash the signal "
                          "as sigmoid does; Leaky ReLU keeps a small slope for negative inputs so units cannot die."),
    ("He / Xavier initialization", "Weight scales chosen so the signal keeps its size from layer to layer: He "
                                   "(variance 2/fan-in) for ReLU, Xavier (variance 2/(fan-in + fan-out)) for tanh "
                                   "and sigmoid."),
    ("batch norm", "Re-centres and re-scales each unit over the batch, which keeps activations out of the flat "
                   "tails; it couples the samples of a batch."),
    ("layer norm", "Normalizes each sample over its units instead of over the batch: it works at batch size 1."),
    ("gradient clipping", "Rescales the gradient when its norm is above a threshold (or clamps each entry): the "
                          "direction is kept, the size is bounded, so one huge gradient cannot wreck the weights."),
    ("residual connection", "Adds each block's input to its output, so the gradient has a path around every layer "
                            "and reaches the input even when the layers themselves shrink it."),
    ("update ratio", "||update|| / ||W||: how much a step changes a layer's weights relative to their size. "
                     "About 1e-3 is healthy; far below means the layer is frozen, far above that it is thrashing."),
)


def _plot_terms() -> list[tuple[str, str]]:
    """Each plot's name and its own tooltip (the text under the mouse)."""
    from .plots.activations import ActivationStats
    from .plots.depth_profile import DepthProfile
    from .plots.heatmap import GradientHeatmap
    from .plots.layer_curves import LayerCurves
    from .plots.loss_accuracy import LossAccuracyPlot
    from .plots.update_ratio import UpdateRatioPlot

    plots = (("heatmap", GradientHeatmap), ("depth profile", DepthProfile), ("per-layer curves", LayerCurves),
             ("loss and accuracy", LossAccuracyPlot), ("update ratio plot", UpdateRatioPlot),
             ("activation statistics", ActivationStats))
    return [(name, cls.TIP) for name, cls in plots if cls.TIP]


def glossary_entries() -> list[tuple[str, str, str]]:
    """(section, term, explanation) for every entry, in the order shown."""
    out = [("Ideas", t, d) for t, d in CONCEPTS]
    out += [("Per-layer metrics", f"{m}: {METRIC_LABELS[m]}", METRIC_TIPS[m]) for m in METRIC_LABELS]
    out += [("Per-layer metrics", t, d) for t, d in ACTIVATION_TERMS]
    out += [("Per-step numbers", t, d) for t, d in STEP_TERMS]
    out += [("Plots", t, d) for t, d in _plot_terms()]
    return out


def glossary_html(entries: Iterable[tuple[str, str, str]], wanted: str = "") -> str:
    """The entries whose term or text contains ``wanted`` (any case), grouped by section."""
    needle = wanted.strip().casefold()
    parts: list[str] = []
    section = None
    for sec, term, text in entries:
        if needle and needle not in term.casefold() and needle not in text.casefold():
            continue
        if sec != section:
            parts.append(f"<h3>{html.escape(sec)}</h3>")
            section = sec
        parts.append(f"<p><b>{html.escape(term)}</b><br>{html.escape(text)}</p>")
    return "".join(parts) or f"<p>Nothing in the glossary mentions “{html.escape(wanted)}”.</p>"


class GlossaryDialog(QDialog):
    """Help > Glossary: every metric, plot and idea, with a filter box."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setWindowTitle("GradSim glossary")
        self.resize(640, 560)
        self.entries = glossary_entries()
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter, e.g. dead, clipping, dL/dz")
        self.filter.setToolTip("Show only the entries that mention this text.")
        self.filter.setClearButtonEnabled(True)
        self.view = QTextBrowser()
        self.view.setOpenExternalLinks(False)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.filter)
        layout.addWidget(self.view)
        layout.addWidget(buttons)
        self.filter.textChanged.connect(self._show)
        self._show("")

    def _show(self, text: str) -> None:
        self.view.setHtml(glossary_html(self.entries, text))


def shortcut_rows(actions: Sequence[QAction]) -> list[tuple[str, str]]:
    """(key, what it does) for every action with a shortcut, as the user sees them."""
    rows = []
    for a in actions:
        keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in a.shortcuts() if not k.isEmpty()]
        if keys:
            rows.append((", ".join(keys), a.text().replace("&", "").rstrip("…. ")))
    return sorted(set(rows), key=lambda r: r[1].casefold())


class ShortcutsDialog(QDialog):
    """Help > Keyboard shortcuts: read from the window's actions."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.resize(420, 420)
        self.rows = shortcut_rows(parent.findChildren(QAction))
        view = QTextBrowser()
        body = "".join(f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(t)}</td></tr>" for k, t in self.rows)
        view.setHtml(f"<table cellpadding='4'>{body}</table>")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(view)
        layout.addWidget(buttons)
        self.view = view


def open_dialog(dialog: QDialog) -> QDialog:
    """Show a help dialog without blocking (``open()``, never ``exec()``: headless runs must not hang)."""
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.open()
    return dialog

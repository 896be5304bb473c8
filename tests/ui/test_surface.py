"""The window's surface: no grading in free play, no clipped titles, help instead of empty axes."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QTextDocument

from gradsim.metrics import LAYER_INDEX, LAYER_METRICS, STEP_METRICS
from gradsim.session.store import Session
from ui.plots.activations import ActivationStats
from ui.plots.labels import FitLabel, LegendLabel
from ui.run_controller import RunState


def _run(window, qtbot, **changes) -> None:
    cfg = window.builder.config().with_changes(**changes)
    window.builder.set_config(cfg)
    assert window.start_run()
    qtbot.waitUntil(lambda: window.state is RunState.FINISHED, timeout=60000)
    window.refresh_plots_now()


def test_free_play_shows_no_exercise_warning(window, qtbot):
    teaching = window.teaching
    panel = teaching.exercise
    assert not panel.active and not teaching.exercise_dock.isVisible()
    # A run that breaks exercise 1's required settings (it asks for sigmoid).
    _run(window, qtbot, activation="relu", steps=12)
    teaching.exercise_dock.show()  # even when the user opens the dock from the View menu
    teaching._on_objectives_timer()
    assert panel.config_warning.isHidden() and panel.config_warning.text() == ""
    assert set(panel.statuses().values()) <= {"pending"}
    assert panel.summary.isHidden() and panel.objectives_title.isHidden()
    assert "Free play" in panel.mode_label.text()
    # Opting in: now the same run is checked and the warning about settings appears.
    assert teaching.open_exercise(panel.exercises()[0].id)
    qtbot.waitUntil(lambda: not panel.config_warning.isHidden(), timeout=5000)
    assert "required settings" in panel.config_warning.text()
    assert set(panel.statuses().values()) & {"done", "not yet"}
    # And back to free play from the dock's button.
    panel.mode_button.click()
    assert not panel.active and panel.config_warning.isHidden()


def test_empty_plots_show_one_line_of_help(window, qtbot):
    for plot in window.plots.plots:
        assert plot.empty and plot.graphics.isHidden() and not plot.hint.isHidden()
        assert plot.hint.text().startswith("Press Run to train; this")
    assert window.plots.activations.legend.isHidden()  # nothing to name yet
    _run(window, qtbot, steps=6)
    for plot in window.plots.plots:
        assert not plot.empty and not plot.graphics.isHidden() and plot.hint.isHidden()
    window.reset_run()
    assert all(p.empty for p in window.plots.plots)


def _store(sat: float, dead: float, n_layers: int = 4) -> Session:
    n = 3
    layers = np.full((n, n_layers, len(LAYER_METRICS)), 1.0, np.float32)
    layers[:, :, LAYER_INDEX["act_saturation"]] = sat
    layers[:, :, LAYER_INDEX["act_dead"]] = dead
    return Session.from_arrays(np.arange(n), np.zeros((n, len(STEP_METRICS))), layers, np.ones(n, bool))


def test_zero_saturation_and_dead_units_are_said_in_words(qtbot):
    act = ActivationStats()
    qtbot.addWidget(act)
    act.refresh(_store(0.0, 0.0))
    assert act.zero_text.isVisible() and act.zero_text.toPlainText().split() == "no saturated or dead units".split()
    act.refresh(_store(0.0, 0.25))
    assert not act.zero_text.isVisible()
    act.reset()
    assert not act.zero_text.isVisible()


def _plot_items(plot):
    items = [getattr(plot, name) for name in ("plot", "loss_plot", "acc_plot") if hasattr(plot, name)]
    return items


def _text_width(label) -> float:
    if isinstance(label, LegendLabel):
        doc = QTextDocument()
        doc.setDefaultFont(label.font())
        doc.setHtml(label.text())
        return doc.idealWidth() - 2 * doc.documentMargin()
    shown = getattr(label, "_shown", label.text())  # a note shows what fits
    lines = getattr(label, "_lines", 1)
    if lines > 1:  # a label that wraps: its widest wrapped line, and no more lines than it has
        fm = label.fontMetrics()
        box = fm.boundingRect(QRect(0, 0, label.contentsRect().width(), 10_000), int(Qt.TextFlag.TextWordWrap), shown)
        assert box.height() <= lines * fm.lineSpacing() <= label.contentsRect().height() + 1, (shown, box.height())
        return box.width()
    return label.fontMetrics().horizontalAdvance(shown)


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_no_clipped_titles(window, qtbot, size):
    """Every caption, legend and axis title fits the plot it belongs to, at both screen sizes."""
    window.resize(*size)
    qtbot.waitUntil(lambda: (window.width(), window.height()) == size, timeout=5000)
    window.plots.set_metric("act_grad_norm")  # the longest per-layer metric name
    _run(window, qtbot, depth=20, width=8, steps=25, stats_every=5, activation="tanh")
    window.plots.depth_profile.set_prediction(np.ones(21))  # its legend shows too
    qtbot.wait(50)  # let the layout settle (no sleep: the event loop runs)
    checked = 0
    for plot in window.plots.plots:
        labels = [w for w in plot.findChildren(FitLabel) + plot.findChildren(LegendLabel) if w.isVisible() and w.text()]
        for label in labels:
            assert _text_width(label) <= label.contentsRect().width() + 1, (type(plot).__name__, label.text(), label.width())
            checked += 1
        for item in _plot_items(plot):
            for side in ("left", "bottom"):
                axis = item.getAxis(side)
                if not axis.isVisible() or not axis.labelText:
                    continue
                text_w = axis.label.boundingRect().width()
                room = axis.geometry().height() if side == "left" else axis.geometry().width()
                assert text_w <= room, (type(plot).__name__, side, axis.labelText, text_w, room)
                checked += 1
    assert checked >= 12
    # The headers show the step at both sizes (never only an ellipsis).
    assert "step 24" in window.plots.depth_profile.header.text()
    assert "step 20" in window.plots.activations.header.text()

"""The Jacobian spectrum plot: what it draws is checked as data (arrays and text), never as pixels."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt

from gradsim.models.mlp import GradNet
from gradsim.theory.jacobian import jacobian_spectrum
from ui.plots.decimate import LOG_CEIL, LOG_FLOOR
from ui.plots.jacobian import JacobianSpectrumPlot


@pytest.fixture
def plot(qtbot):
    p = JacobianSpectrumPlot()
    qtbot.addWidget(p)
    return p


def test_known_values_are_plotted_as_given(plot):
    values = np.array([[0.5, 1.0, 2.0, 4.0], [1.0, 1.0, 1.0, 2.0]])
    plot.set_spectrum(values, "step 7")
    assert plot.header.text() == "step 7"
    np.testing.assert_array_equal(plot.values, values)
    np.testing.assert_array_equal(plot.rug.xData, values.ravel())
    # histogram: edges in singular-value units, fractions of all values, every value counted once
    np.testing.assert_allclose(plot.hist.xData, plot.edges)
    np.testing.assert_allclose(plot.hist.yData, plot.fractions)
    assert plot.fractions.sum() == pytest.approx(1.0)
    assert plot.edges[0] <= 0.5 and plot.edges[-1] >= 4.0
    counts = np.histogram(values.ravel(), bins=plot.edges)[0]
    np.testing.assert_allclose(plot.fractions, counts / values.size)
    assert plot.stats["min"] == 0.5 and plot.stats["max"] == 4.0 and plot.stats["median"] == 1.0
    assert plot.stats["condition"] == pytest.approx(5.0)  # median of 8 and 2
    text = plot.summary.text()
    assert "condition number max/min 5" in text and "from 2 to 8" in text
    assert plot.note.text() == ""


def test_one_sample_summary_and_isometry_line(plot):
    plot.set_spectrum(np.array([4.0, 2.0, 1.0, 0.5]))  # 1-D: one sample
    assert "condition number max/min 8" in plot.summary.text()
    assert "min 0.5" in plot.summary.text() and "max 4" in plot.summary.text()
    assert plot.isometry.value() == 0.0  # log10(1) on the log x axis
    lo, hi = plot.plot.getViewBox().viewRange()[0]
    assert lo < 0.0 < hi


def test_an_isometry_is_one_spike_at_one(plot):
    plot.set_spectrum(np.ones((3, 16)))
    assert plot.stats["condition"] == 1.0
    i = int(np.argmax(plot.fractions))
    assert plot.fractions[i] == 1.0
    assert plot.edges[i] < 1.0 < plot.edges[i + 1]


def test_nan_zero_and_inf_are_handled_and_said(plot):
    plot.set_spectrum(np.array([[1.0, np.nan, 2.0]]))
    assert "nan" in plot.note.text()
    assert plot.stats["min"] == 1.0 and plot.rug.xData.size == 2
    assert "condition number max/min 2" in plot.summary.text()

    plot.set_spectrum(np.array([[0.0, 1.0, 2.0, np.inf]]))
    assert plot.rug.xData.min() == LOG_FLOOR and plot.rug.xData.max() == LOG_CEIL
    assert "1e-20" in plot.note.text() and "1e20" in plot.note.text()
    assert "condition number max/min inf" in plot.summary.text()
    assert np.all(np.isfinite(plot.hist.yData)) and plot.fractions.sum() == pytest.approx(1.0)

    plot.set_spectrum(np.zeros((2, 4)))
    assert plot.rug.xData.size == 8 and np.all(plot.rug.xData == LOG_FLOOR)

    plot.set_spectrum(np.full((2, 3), np.nan))
    assert plot.rug.xData is None or plot.rug.xData.size == 0
    assert "nan" in plot.summary.text()

    plot.set_spectrum(np.empty((0, 8)))
    assert "empty" in plot.summary.text()
    plot.set_spectrum(None)
    assert "Compute" in plot.summary.text() and plot.stats == {}


def test_compute_requested_on_click(plot, qtbot):
    with qtbot.waitSignal(plot.compute_requested):
        qtbot.mouseClick(plot.compute_button, Qt.MouseButton.LeftButton)


def test_tooltips(plot):
    for w in (plot, plot.compute_button, plot.summary, plot.graphics, plot.note, plot.readout):
        assert w.toolTip()
    assert "near 1" in plot.toolTip() and "spread" in plot.toolTip()


def test_real_spectra_orthogonal_vs_gaussian(plot):
    """A deep linear net: orthogonal init is an exact isometry, Gaussian init spreads over decades."""
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(1))
    conds = {}
    for init in ("orthogonal", "xavier_normal"):
        net = GradNet(2, 2, depth=12, width=16, activation="linear", batchnorm=False)
        net.reinit(init, torch.Generator().manual_seed(0))
        plot.set_spectrum(jacobian_spectrum(net, x), init)
        conds[init] = plot.stats["condition"]
    assert conds["orthogonal"] == pytest.approx(1.0, rel=1e-4)  # float32 weights
    assert conds["xavier_normal"] > 1e3
    assert math.isfinite(conds["xavier_normal"])

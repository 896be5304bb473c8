"""What the network learns, in the window: the panel's data equals the network's predictions on the grid."""
from __future__ import annotations

import numpy as np
import pytest

from gradsim.teaching.learned import boundary_grid, confusion
from gradsim.train.trainer import Trainer
from ui.plots.learned import region_image
from ui.run_controller import RunState


def _finish(window, qtbot, **changes):
    cfg = window.builder.config().with_changes(**changes)
    window.builder.set_config(cfg)
    assert window.start_run()
    qtbot.waitUntil(lambda: window.state is RunState.FINISHED, timeout=60000)
    return cfg


def test_the_dock_is_built_on_demand(window):
    assert window.learned.dock is None  # nothing built at start-up
    window.learned.action.trigger()
    assert window.learned.dock is not None and window.learned.dock.isVisible()
    window.learned.action.trigger()
    assert not window.learned.dock.isVisible()


def test_boundary_data_equals_the_networks_predictions_on_the_grid(window, qtbot):
    cfg = _finish(window, qtbot, steps=25)
    window.learned.show()
    panel = window.learned.panel
    qtbot.waitUntil(lambda: panel.grid is not None and panel.grid.step == 25, timeout=20000)
    # An independent run of the same config (runs are deterministic) gives the same network.
    ref = Trainer(cfg)
    ref.run(25)
    want = boundary_grid(ref)
    np.testing.assert_array_equal(panel.grid.xs, want.xs)
    np.testing.assert_allclose(panel.grid.probs, want.probs, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(panel.image_rgba, region_image(want.probs))
    np.testing.assert_array_equal(panel.grid.points, want.points)
    # Hover: the read-out names the class probabilities of the cell under the pointer.
    g = panel.grid
    np.testing.assert_array_equal(panel.probabilities_at(float(g.xs[5]), float(g.ys[7])), want.probs[7, 5])
    assert panel.probabilities_at(float(g.xs[-1]) + 10, 0.0) is None


def test_digits_show_a_confusion_matrix(window, qtbot):
    cfg = _finish(window, qtbot, dataset="digits", n_samples=300, depth=2, width=16, steps=15)
    window.learned.show()
    panel = window.learned.panel
    qtbot.waitUntil(lambda: panel.confusion is not None, timeout=20000)
    ref = Trainer(cfg)
    ref.run(15)
    np.testing.assert_array_equal(panel.confusion.counts, confusion(ref).counts)
    assert panel.stack.currentWidget() is panel.confusion_view
    assert "accuracy" in panel.header.text()


def test_requests_are_paced_by_their_cost(window, qtbot, monkeypatch):
    """The next grid is asked for no sooner than cost / MAX_SHARE after the last one."""
    import ui.learned_view as lv

    _finish(window, qtbot, steps=5)
    window.learned.show()
    qtbot.waitUntil(lambda: window.learned.panel.grid is not None, timeout=20000)
    c = window.learned
    assert c.last_cost_s > 0
    assert c.next_at - c.done_at == pytest.approx(max(lv.MIN_PERIOD_S, c.last_cost_s / lv.MAX_SHARE))
    n = c.requests
    c._on_mirror_updated(window.run.generation)  # too soon: nothing asked
    assert c.requests == n

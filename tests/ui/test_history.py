"""Step back through the recorded history while paused: the plots show earlier steps, the run is unchanged."""
from __future__ import annotations

import numpy as np

from tests.ui.conftest import engine_facts, wait_engine_settled
from ui.run_controller import RunState

WAIT_MS = 60_000


def _paused_run(window, qtbot, n: int) -> None:
    window.start_run(paused=True)
    window.run.step(n)
    qtbot.waitUntil(lambda: window.mirror.steps_run >= n, timeout=WAIT_MS)
    wait_engine_settled(qtbot, window, WAIT_MS)
    window.refresh_plots_now()


def _last_x(window) -> float:
    x, _ = window.plots.loss_accuracy.loss_curve.getOriginalDataset()
    return float(x[-1])


def test_step_back_moves_every_plot_to_earlier_steps_and_changes_nothing(window, qtbot):
    _paused_run(window, qtbot, 20)
    h = window.history
    mirror = window.mirror
    before = (len(mirror), mirror.layers.copy(), mirror.scalars.copy())
    facts = engine_facts(qtbot, window, WAIT_MS)
    assert _last_x(window) == 19
    h.back_action.trigger()
    h.back_action.trigger()
    h.back_action.trigger()
    assert h.rows == 17 and _last_x(window) == 16
    want = mirror.layer_metric("grad_norm")[16]
    np.testing.assert_allclose(window.plots.depth_profile.values, want, rtol=1e-7)
    assert "step 16 of 19" in window.status.currentMessage()
    h.forward_action.trigger()
    assert _last_x(window) == 17
    # The run and the engine are untouched.
    assert window.mirror is mirror and len(mirror) == before[0]
    np.testing.assert_array_equal(mirror.layers, before[1])
    np.testing.assert_array_equal(mirror.scalars, before[2])
    assert engine_facts(qtbot, window, WAIT_MS)["step_index"] == facts["step_index"] == 20
    h.latest_action.trigger()
    assert h.rows is None and _last_x(window) == 19


def test_resume_or_a_step_returns_to_the_latest_and_a_running_run_cannot_step_back(window, qtbot):
    _paused_run(window, qtbot, 10)
    h = window.history
    h.back(4)
    assert _last_x(window) == 5
    window.step_once()  # one more step: the plots show it
    qtbot.waitUntil(lambda: window.mirror.steps_run >= 11, timeout=WAIT_MS)
    window.refresh_plots_now()
    assert h.rows is None and _last_x(window) == 10
    h.back(2)
    window.builder.steps  # noqa: B018 - the run keeps its config
    window.toggle_run()  # resume
    assert window.state is RunState.RUNNING and h.rows is None
    assert not h.back_action.isEnabled() and not h.back(1)
    assert "paused" in window.status.currentMessage()
    window.toggle_run()


def test_step_back_cuts_a_forked_runs_branch_b_at_the_same_step(window, qtbot):
    _paused_run(window, qtbot, 8)
    window.fork.fork()
    qtbot.waitUntil(lambda: window.run.branch_mirror is not None, timeout=WAIT_MS)
    window.run.step(6)
    qtbot.waitUntil(lambda: window.run.branch_mirror is not None and window.run.branch_mirror.steps_run >= 14
                    and window.mirror.steps_run >= 14, timeout=WAIT_MS)
    wait_engine_settled(qtbot, window, WAIT_MS)
    h = window.history
    h.back(3)
    a, b = h.apply(window.mirror, window.run.branch_mirror)
    assert int(a.steps[-1]) == int(window.mirror.steps[-4])
    assert b is not None and int(b.steps[-1]) == int(a.steps[-1])
    assert window.plots.loss_accuracy.compare is b

"""Fork and compare in the window: branch B from the exact state, toggled alone, drawn on the same axes.

The references are headless runs that never forked (gradsim.train.trainer), so the
window's numbers are checked against an independent computation.
"""
from __future__ import annotations

import csv

import numpy as np
import pytest

from gradsim.commands import Scheduled, SetBatchNorm, SetClip
from gradsim.config import RunConfig
from gradsim.metrics import STEP_INDEX
from gradsim.train.trainer import Trainer
from ui.run_controller import RunState

FORK_AT = 8
MORE = 6


def _scalars(session):
    s = session.scalars.copy()
    s[:, STEP_INDEX["elapsed_s"]] = 0.0
    return s


@pytest.fixture
def forked(window, qtbot, tiny_run_config):
    cfg = tiny_run_config.with_changes(optimizer="momentum", activation="tanh")
    window.builder.set_config(cfg)
    assert window.start_run(paused=True)
    window.run.step(FORK_AT)
    qtbot.waitUntil(lambda: window.mirror is not None and window.mirror.steps_run >= FORK_AT, timeout=30000)
    assert window.fork.fork_action.isEnabled()
    with qtbot.waitSignal(window.run.run_forked, timeout=30000):
        assert window.fork.fork()
    assert window.fork.bar.isVisible() and not window.fork.fork_action.isEnabled()
    return window, cfg


def test_fork_then_toggle_on_b_differs_only_through_it(forked, qtbot, tmp_path):
    window, cfg = forked
    a, b = window.fork.mirrors()
    np.testing.assert_array_equal(a.layers, b.layers)  # B starts with A's whole history
    window.run.send_command(SetBatchNorm(True))  # the toggles go to branch B by default
    window.run.step(MORE)
    target = FORK_AT + MORE
    qtbot.waitUntil(lambda: all(m.steps_run >= target for m in window.fork.mirrors()), timeout=30000)
    window.refresh_plots_now()
    a, b = window.fork.mirrors()
    assert window.toggles.batchnorm.isChecked()  # the toggles show branch B, the one they change
    # B's own changes are listed, marked "B:"; its copied history (start, steps before the fork) is not.
    b_lines = [(int(step), kind) for step, kind, _ in window.event_log.lines() if kind.startswith("B: ")]
    assert (FORK_AT, "B: batchnorm") in b_lines
    assert all(step >= FORK_AT and kind != "B: start" for step, kind in b_lines)
    assert not any(e.kind == "batchnorm" for e in a.events)
    assert [e.step for e in b.events if e.kind == "batchnorm"] == [FORK_AT]

    plain = Trainer(cfg)
    plain.run(target)
    replay = Trainer(cfg, (Scheduled(FORK_AT, SetBatchNorm(True)),))
    replay.run(target)
    np.testing.assert_array_equal(_scalars(a), _scalars(plain.session))
    np.testing.assert_array_equal(a.layers, plain.session.layers)
    np.testing.assert_array_equal(_scalars(b), _scalars(replay.session))
    np.testing.assert_array_equal(b.layers, replay.session.layers)
    np.testing.assert_array_equal(a.layers[:FORK_AT], b.layers[:FORK_AT])
    assert not np.array_equal(a.layers[FORK_AT:], b.layers[FORK_AT:])

    # Drawn on the same axes: B's curves hold B's data.
    plots = window.plots
    _, loss_b = plots.loss_accuracy.loss_curve_b.getOriginalDataset()
    np.testing.assert_array_equal(loss_b, b.column("loss"))
    np.testing.assert_array_equal(plots.depth_profile.values_b, b.layer_metric("grad_norm")[-1])
    lc = plots.layer_curves
    for i, layer in enumerate(lc.layers):
        np.testing.assert_array_equal(lc._pool_b[i].getOriginalDataset()[1], np.clip(b.layer_metric("grad_norm")[:, layer - 1], 1e-20, 1e20))
    assert "B" in lc.legend.texts()
    # The heatmap shows B, or log10 B/A (0 before the fork).
    hm = plots.heatmap
    assert hm.branch_combo.isVisible()
    hm.branch_combo.setCurrentIndex(hm.branch_combo.findData("B"))
    np.testing.assert_allclose(hm.image_data, np.log10(b.layer_metric("grad_norm")).T, rtol=1e-6)
    hm.branch_combo.setCurrentIndex(hm.branch_combo.findData("ratio"))
    with np.errstate(divide="ignore"):
        want = np.log10(b.layer_metric("grad_norm") / a.layer_metric("grad_norm")).T
    np.testing.assert_allclose(hm.image_data, want, rtol=1e-5, atol=1e-6)
    assert np.all(hm.image_data[:, :FORK_AT] == 0)
    assert hm.levels == (-6.0, 6.0)

    # Export: both branches as sessions plus a comparison CSV.
    out = tmp_path / "compare"
    with qtbot.waitSignal(window.worker.export_finished, timeout=30000):
        window.exporter.export_to(str(out))
    from gradsim.session.io import load_session

    la, lb = load_session(out / "branch-A"), load_session(out / "branch-B")
    np.testing.assert_array_equal(la.layers, a.layers)
    np.testing.assert_array_equal(lb.layers, b.layers)
    rows = list(csv.DictReader((out / "comparison.csv").open()))
    assert [int(r["step"]) for r in rows] == list(range(target))
    np.testing.assert_array_equal([float(r["loss_B"]) for r in rows], b.column("loss"))
    np.testing.assert_array_equal([float(r["loss_A"]) for r in rows], a.column("loss"))


def test_fork_needs_a_paused_run(window, qtbot):
    refused = []
    window.run.command_refused.connect(refused.append)
    assert not window.fork.fork()
    assert refused and "Fork" in refused[0]
    assert not window.fork.fork_action.isEnabled()


def test_reset_ends_the_comparison(forked, qtbot):
    window, _ = forked
    window.reset_run()
    assert window.run.branch_mirror is None and not window.fork.bar.isVisible()
    assert not window.plots.heatmap.branch_combo.isVisible()
    assert window.state is RunState.IDLE


def test_after_a_diverges_the_status_bar_follows_branch_b(window, qtbot):
    """A explodes a few steps after the fork; B, clipped, trains on: the window's step and
    speed follow B (both steps shown) instead of freezing at A's last step."""
    cfg = RunConfig(dataset="moons", n_samples=200, depth=4, width=12, batch_size=32, steps=10_000_000,
                    stats_every=5, lr=5e5, activation="relu")
    rescue = SetClip("value", 1e-9)
    a_alone = Trainer(cfg.with_changes(steps=100))
    a_alone.run()
    assert a_alone.diverged_at is not None and a_alone.step_index < 10  # the premise, headless
    window.run.start(cfg, paused=True)
    window.run.step(1)
    qtbot.waitUntil(lambda: window.mirror.steps_run >= 1, timeout=30000)
    with qtbot.waitSignal(window.run.run_forked, timeout=30000):
        assert window.fork.fork()
    window.run.send_command(rescue)  # to branch B
    window.run.resume()
    a_end = a_alone.step_index

    def b_leads() -> bool:
        p = window.run.progress
        return (window.mirror.diverged_at is not None and p.branch_steps is not None
                and p.branch_steps[0] == a_end and p.step == p.branch_steps[1] > a_end + 20 and p.steps_per_s > 0)

    qtbot.waitUntil(b_leads, timeout=60000)
    window.run.pause()
    p = window.run.progress
    assert window.run.branch_mirror.diverged_at is None
    assert window.status.step_label.text().startswith(f"A step {a_end:,}, B step ")
    assert window.status.rate_label.text() != "– steps/s"
    assert window.mirror.steps_run == a_end and window.run.branch_mirror.steps_run >= p.step


def test_a_toggle_sent_right_after_fork_reaches_branch_b(window, qtbot, tiny_run_config):
    """No wait for B's first snapshot: the Fork and the toggle travel in order, so B gets it at the fork step."""
    cfg = tiny_run_config.with_changes(optimizer="momentum", activation="tanh")
    window.run.start(cfg, paused=True)
    window.run.step(FORK_AT)
    qtbot.waitUntil(lambda: window.mirror.steps_run >= FORK_AT, timeout=30000)
    assert window.run.fork()
    assert window.run.forked and not window.run.can_fork()  # known at once, before B's first snapshot
    window.run.send_command(SetBatchNorm(True))  # the toggles go to branch B by default
    window.run.step(MORE)
    target = FORK_AT + MORE
    qtbot.waitUntil(lambda: window.run.branch_mirror is not None and window.run.branch_mirror.steps_run >= target
                    and window.mirror.steps_run >= target, timeout=30000)
    a, b = window.mirror, window.run.branch_mirror
    assert not any(e.kind == "batchnorm" for e in a.events)
    assert [e.step for e in b.events if e.kind == "batchnorm"] == [FORK_AT]
    replay = Trainer(cfg, (Scheduled(FORK_AT, SetBatchNorm(True)),))
    replay.run(target)
    np.testing.assert_array_equal(b.layers[:target], replay.session.layers)


def test_a_fork_the_engine_refuses_leaves_the_run_unforked(window, qtbot, tiny_run_config):
    """If the engine says no (here: its run was dropped behind the window's back), toggles go to the one run again."""
    window.run.start(tiny_run_config, paused=True)
    window.worker.reset_run(None, generation=window.run.generation)  # the engine has no run now
    with qtbot.waitSignal(window.run.command_refused, timeout=30000) as blocker:
        assert window.run.fork()
        assert window.run.forked
    assert blocker.args == ["Fork: no run is active; press Run first"]
    assert not window.run.forked and window.run.can_fork()

"""The main window driven as a user would: builder, run control, live toggles, export, closing.

Tiny configs (depth 4, width 12, tens of steps); waits are on signals and
conditions, never fixed sleeps.
"""
from __future__ import annotations

import json
import time

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from gradsim.commands import SetBatchNorm
from gradsim.config import RunConfig
from tests.ui.conftest import wait_engine_settled
from ui.main_window import MainWindow
from ui.run_controller import RunState

FAILED, FINISHED, IDLE, PAUSED, RUNNING = RunState.FAILED, RunState.FINISHED, RunState.IDLE, RunState.PAUSED, RunState.RUNNING

WAIT_MS = 60_000


def _wait_finished(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.state in (FINISHED, FAILED), timeout=WAIT_MS)
    assert window.state == FINISHED, window.last_error


def _wait_idle_worker(qtbot, window) -> dict:
    """Wait until the engine is paused and the mirror holds everything it did; the trainer's facts."""
    return wait_engine_settled(qtbot, window, WAIT_MS)


# ---------------------------------------------------------------- builder
def test_first_launch_has_a_valid_default_config(qtbot):
    w = MainWindow()
    qtbot.addWidget(w)
    assert w.builder.config() == RunConfig()
    assert w.window_actions.run.isEnabled()
    assert w.state == IDLE
    w.close()


def test_builder_is_built_from_one_table_and_round_trips_every_field(qtbot):
    from ui.panels.builder import FORM_FIELDS, BuilderPanel

    b = BuilderPanel()
    qtbot.addWidget(b)
    cfg = RunConfig(dataset="moons", depth=7, width=33, activation="elu", init="normal", init_std=0.2, init_scale=0.3,
                    batchnorm=True, optimizer="adam", lr=0.002, batch_size=64, clip_mode="value", clip_threshold=0.5,
                    steps=123, seed=9, stats_every=4)
    b.set_config(cfg)
    assert b.config() == cfg
    for f in FORM_FIELDS:
        w = getattr(b, f.name)
        assert w.objectName() == f.name and w.toolTip()
    assert {f.name for f in FORM_FIELDS} <= set(RunConfig.__dataclass_fields__)


def test_builder_outlines_the_field_the_engine_names(window, qtbot):
    """The highlight comes from ConfigError.field: a budget error about depth and width outlines depth."""
    b = window.builder
    b.width.setValue(2048)
    b.depth.setValue(200)
    assert b.config() is None and "param_budget_mb" in b.error()
    assert "#d32f2f" in b.depth.styleSheet() and b.width.styleSheet() == ""
    b.depth.setValue(4)
    assert b.config() is not None and b.depth.styleSheet() == ""


def test_builder_rejects_bad_values_inline_and_disables_run(window, qtbot):
    b = window.builder
    b.lr.setText("fast")
    assert b.config() is None
    assert not window.window_actions.run.isEnabled()
    assert not b.error_label.isHidden()
    assert "lr" in b.error_label.text() and "not a number" in b.error_label.text()
    b.lr.setText("-1")
    assert "lr" in b.error() and "> 0" in b.error()
    assert not window.window_actions.run.isEnabled()
    b.lr.setText("0.05")
    assert b.config() is not None and window.window_actions.run.isEnabled()
    assert b.error_label.isHidden()

    # a value only the engine can judge: batch size larger than the training set
    b.batch_size.setValue(500)
    assert b.config() is None
    assert "batch_size" in b.error() and "160" in b.error()
    assert "#d32f2f" in b.batch_size.styleSheet()
    assert not window.window_actions.run.isEnabled()
    assert window.start_run() is False and window.state == IDLE
    b.batch_size.setValue(32)
    assert window.window_actions.run.isEnabled()


def test_spin_boxes_make_out_of_range_values_impossible(window):
    b = window.builder
    b.depth.setValue(10_000)
    assert b.depth.value() == 200
    b.depth.setValue(0)
    assert b.depth.value() == 1


def test_init_std_only_enabled_for_normal_init(window):
    b = window.builder
    b.init.setCurrentText("he_normal")
    assert not b.init_std.isEnabled() and not b.init_scale.isEnabled()
    b.init.setCurrentText("normal")
    assert b.init_std.isEnabled()
    b.init_std.setText("0.3")
    assert b.config().init_std == pytest.approx(0.3)
    b.init.setCurrentText("uniform")
    assert b.init_scale.isEnabled() and not b.init_std.isEnabled()


def test_preset_loads_config_and_schedule(window):
    preset = window.builder.apply_preset("batchnorm-rescue")
    assert window.builder.config() == preset.config
    assert [s.text() for s in window.builder.schedule()] == ["300:batchnorm=on"]
    assert "300:batchnorm=on" in window.builder.schedule_label.text()
    window.builder.clear_schedule.click()
    assert window.builder.schedule() == ()


# ---------------------------------------------------------------- running
def test_run_from_window_fills_mirror_and_plots(window, qtbot, tiny_run_config):
    window.window_actions.run.trigger()
    assert window.state == RUNNING
    assert window.toggles.activation.isEnabled() and not window.builder.form.isEnabled()
    _wait_finished(qtbot, window)
    m = window.mirror
    assert len(m) == tiny_run_config.steps
    np.testing.assert_array_equal(m.steps, np.arange(tiny_run_config.steps))
    assert np.isfinite(m.column("loss")).all()
    assert m.layers.shape[1] == tiny_run_config.n_layers
    assert [e.kind for e in m.events] == ["start"]
    assert "finished" in window.status.state_label.text()
    assert "40 / 40" in window.status.step_label.text()

    qtbot.waitUntil(lambda: window.plots.has_data(), timeout=WAIT_MS)
    window.refresh_plots_now()
    p = window.plots
    assert p.heatmap.image_data.shape[0] == tiny_run_config.n_layers
    assert p.depth_profile.values.shape == (tiny_run_config.n_layers,)
    x, y = p.loss_accuracy.loss_curve.getData()
    assert len(x) > 0 and np.nanmax(x) == tiny_run_config.steps - 1
    assert window.toggles.activation.isEnabled() is False
    assert window.builder.form.isEnabled()


def test_each_toggle_reaches_the_trainer_and_is_logged(window, qtbot):
    window.builder.steps.setValue(100_000)
    assert window.start_run(paused=True)
    window.step_once()
    _wait_idle_worker(qtbot, window)
    t = window.toggles
    assert t.lr.isEnabled()

    t.activation.setCurrentText("relu")
    t.activation_apply.click()
    t.init.setCurrentText("normal")
    t.init_scale.setText("0.2")
    t.reinit.click()
    t.batchnorm.click()  # off -> on
    t.clip_mode.setCurrentText("norm")
    t.clip_threshold.setText("0.5")
    t.clip_apply.click()
    t.lr.setText("0.01")
    t.lr_apply.click()
    t.optimizer.setCurrentText("adam")
    t.optimizer_apply.click()

    kinds = ["activation", "init", "batchnorm", "clip", "lr", "optimizer"]
    qtbot.waitUntil(lambda: [e.kind for e in window.mirror.events][1:] == kinds, timeout=WAIT_MS)
    trainer = _wait_idle_worker(qtbot, window)  # the engine's own Trainer, read in its process
    assert [e[1] for e in trainer["events"]][1:] == kinds
    assert [e[2] for e in trainer["events"]][1:] == ["relu", "normal:0.2", "on", "norm:0.5", "0.01", "adam"]
    assert trainer["activations"] == ["relu"] * 4
    assert trainer["has_batchnorm"]
    assert trainer["clip"] == ("norm", 0.5)
    assert trainer["lr"] == pytest.approx(0.01)
    assert trainer["optimizer"] == "adam"
    assert [line[1] for line in window.event_log.lines()] == ["start"] + kinds
    # ...and as a labelled marker on every time plot
    window.refresh_plots_now()
    for plot in window.plots.time_plots:
        assert [e.kind for e in plot.markers.events][1:] == kinds

    # the next step runs with them; its row shows clipping and the new learning rate
    window.step_once()
    qtbot.waitUntil(lambda: window.mirror.steps_run == 2, timeout=WAIT_MS)
    assert window.mirror.column("lr")[-1] == pytest.approx(0.01)


def test_toggle_while_running_applies_at_a_step_boundary(window, qtbot):
    window.builder.steps.setValue(100_000)
    window.start_run()
    qtbot.waitUntil(lambda: window.mirror is not None and len(window.mirror) > 3, timeout=WAIT_MS)
    window.toggles.lr.setText("0.2")
    window.toggles.lr_apply.click()
    qtbot.waitUntil(lambda: any(e.kind == "lr" for e in window.mirror.events), timeout=WAIT_MS)
    ev = next(e for e in window.mirror.events if e.kind == "lr")
    qtbot.waitUntil(lambda: window.mirror.steps_run > ev.step + 1, timeout=WAIT_MS)
    lr = window.mirror.column("lr")
    steps = window.mirror.steps
    assert np.allclose(lr[steps >= ev.step], 0.2) and np.allclose(lr[steps < ev.step], 0.05)
    window.toggle_run()
    assert window.state == PAUSED


def test_refused_command_is_shown_not_raised(window, qtbot):
    window.builder.set_config(window.builder.config().with_changes(batch_size=1, steps=1000))
    window.start_run(paused=True)
    window.toggles.batchnorm.click()
    qtbot.waitUntil(lambda: any(line[1] == "refused" for line in window.event_log.lines()), timeout=WAIT_MS)
    assert "batch_size" in window.toggles.error_label.text()
    assert window.state == PAUSED
    window.step_once()
    qtbot.waitUntil(lambda: window.mirror.steps_run == 1, timeout=WAIT_MS)


def test_pause_step_reset(window, qtbot):
    window.builder.steps.setValue(100_000)
    window.toggle_run()
    qtbot.waitUntil(lambda: window.mirror is not None and len(window.mirror) >= 5, timeout=WAIT_MS)
    window.toggle_run()
    assert window.state == PAUSED and window.window_actions.run.text() == "&Resume"
    _wait_idle_worker(qtbot, window)
    n = window.mirror.steps_run
    assert len(window.mirror) == n
    assert [(e.kind, e.step) for e in window.mirror.events] == [("start", 0), ("pause", n)]

    window.window_actions.step.trigger()
    qtbot.waitUntil(lambda: window.mirror.steps_run == n + 1, timeout=WAIT_MS)
    _wait_idle_worker(qtbot, window)
    assert window.mirror.steps_run == n + 1 and len(window.mirror) == n + 1
    assert window.state == PAUSED

    window.toggle_run()  # resume
    qtbot.waitUntil(lambda: window.mirror.steps_run > n + 5, timeout=WAIT_MS)

    window.window_actions.reset.trigger()
    assert window.state == IDLE and window.mirror is None
    assert window.plots.heatmap.image_data.size == 0
    assert window.event_log.lines() == []
    assert window.builder.form.isEnabled() and not window.toggles.lr.isEnabled()
    assert not window.window_actions.export.isEnabled()
    qtbot.waitUntil(lambda: not window.worker.is_running(), timeout=WAIT_MS)

    # Step from idle starts a fresh run, paused after one step
    window.window_actions.step.trigger()
    assert window.state == PAUSED
    qtbot.waitUntil(lambda: window.mirror is not None and window.mirror.steps_run == 1, timeout=WAIT_MS)
    assert [e.kind for e in window.mirror.events] == ["start"]


def test_shortcuts(window):
    shortcuts = {
        window.window_actions.run: "Space",
        window.window_actions.step: "S",
        window.window_actions.reset: "R",
        window.window_actions.export: "Ctrl+E",
        window.window_actions.quit: "Ctrl+Q",
    }
    for action, key in shortcuts.items():
        assert action.shortcut().toString() == key



def test_menus_and_toolbar_list_the_window_actions_in_order(window):
    import dataclasses

    def texts(actions):
        return ["|" if a.isSeparator() else a.text() for a in actions]

    menus = {a.text(): a.menu() for a in window.menuBar().actions()}
    assert list(menus) == ["&File", "&Run", "&View", "E&xercises", "&Help"]
    assert texts(menus["&File"].actions()) == ["&Open session…", "&Follow running session…", "|", "&Export session…", "Save plots as &PNG…", "Save &checkpoint…", "|", "&Quit"]
    assert texts(menus["&Run"].actions()) == ["&Run", "&Step", "R&eset", "|", "&Fork", "|", "Pause on &divergence", "Pause when a &toggle applies", "|",
                                              "Step &back (history)", "Step f&orward (history)", "Back to the &latest step"]
    assert texts(menus["&Help"].actions())[0] == "&Welcome and guided lessons…"
    assert texts(menus["&Help"].actions())[1:] == ["&Glossary…", "&Keyboard shortcuts…", "|", "&Replications…", "|", "Open &log folder", "&About GradSim"]
    view = menus["&View"].actions()
    docks = [d.toggleViewAction() for d in (window.builder_dock, window.toggles_dock, window.event_dock)]
    acts = window.window_actions
    assert view[:3] == [window.teaching.exercise_action, window.teaching.jacobian_action, window.learned.action]
    docks.append(window.diagnosis.dock.toggleViewAction())
    assert view[4:8] == docks and view[8] is acts.view_menu_end  # dock toggles sit above the redraw submenu
    assert view[-3] is acts.toolbar.toggleViewAction()
    assert view[-2].isSeparator() and view[-1] is window.presentation.action
    assert texts(acts.toolbar.actions()) == ["&Run", "&Step", "R&eset", "&Fork", "|", "&Open session…", "&Export session…",
                                             "Save plots as &PNG…", "|", "What the network &learns", "|", "", ""]
    # A dock built on demand is listed once: its own action shows it, no second toggle appears.
    window.learned.show()
    listed = [a.text().replace("&", "") for a in menus["&View"].actions()]
    assert listed.count("What the network learns") == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        acts.run = acts.step  # type: ignore[misc]

def test_space_key_runs_and_pauses(window, qtbot):
    window.builder.steps.setValue(100_000)
    window.activateWindow()
    window.plots.setFocus()
    qtbot.keyClick(window.plots, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: window.state == RUNNING, timeout=5000)
    qtbot.keyClick(window.plots, Qt.Key.Key_Space)
    assert window.state == PAUSED


# ---------------------------------------------------------------- export
def _finished_run(window, qtbot):
    window.start_run()
    _wait_finished(qtbot, window)


def test_export_through_menu_writes_the_four_files(window, qtbot, tmp_path, monkeypatch, tiny_run_config):
    window.builder.steps.setValue(100_000)
    window.start_run()
    window.run.send_command(SetBatchNorm(True))
    qtbot.waitUntil(lambda: window.mirror is not None and len(window.mirror) > 10, timeout=WAIT_MS)
    out = tmp_path / "exported"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(out), "Session folder (*)")))
    with qtbot.waitSignal(window.worker.export_finished, timeout=WAIT_MS) as blocker:
        window.window_actions.export.trigger()  # exported while the run goes on: the worker does it between steps
    assert blocker.args == [str(out)]
    assert sorted(p.name for p in out.iterdir()) == ["events.csv", "layers.csv", "session.json", "steps.csv"]
    meta = json.loads((out / "session.json").read_text())
    assert meta["format"] == "gradsim-session/3"
    assert meta["config"]["depth"] == tiny_run_config.depth
    assert [e["kind"] for e in meta["events"]] == ["start", "batchnorm"]
    n_steps = len((out / "steps.csv").read_text().splitlines()) - 1
    assert n_steps == meta["steps_run"] > 10
    n_layer_rows = len((out / "layers.csv").read_text().splitlines()) - 1
    assert n_layer_rows == n_steps * tiny_run_config.n_layers
    assert window.exporter.last_export == str(out)


def test_export_zip(window, qtbot, tmp_path, monkeypatch):
    _finished_run(window, qtbot)
    out = tmp_path / "s"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(out), "Zip archive (*.zip)")))
    with qtbot.waitSignal(window.worker.export_finished, timeout=WAIT_MS):
        window.window_actions.export.trigger()
    assert (tmp_path / "s.zip").is_file()


def test_export_error_is_shown_and_a_retry_works(window, qtbot, tmp_path, monkeypatch):
    _finished_run(window, qtbot)
    blocker_file = tmp_path / "a-file"
    blocker_file.write_text("not a folder")
    bad = blocker_file / "session"  # its parent is a file: cannot be created, even as root
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(bad), "")))
    with qtbot.waitSignal(window.worker.export_failed, timeout=WAIT_MS) as blocker:
        window.window_actions.export.trigger()
    assert str(bad) in blocker.args[0]
    assert window.last_error.startswith("Export failed")
    dialogs = window.dialogs
    assert dialogs and dialogs[-1].isVisible() and "still in memory" in dialogs[-1].text()
    dialogs[-1].accept()
    assert window.dialogs == []
    assert window.state == FINISHED and len(window.mirror) == 40

    good = tmp_path / "retry"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(good), "")))
    with qtbot.waitSignal(window.worker.export_finished, timeout=WAIT_MS):
        window.window_actions.export.trigger()
    assert len((good / "steps.csv").read_text().splitlines()) == 41


def test_cancelled_export_dialog_does_nothing(window, qtbot, monkeypatch):
    _finished_run(window, qtbot)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: ("", "")))
    window.window_actions.export.trigger()
    assert window.last_error == "" and window.exporter.last_export == ""


def test_save_plots_png(window, qtbot, tmp_path, monkeypatch):
    _finished_run(window, qtbot)
    out = tmp_path / "plots"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(out), "")))
    window.window_actions.save_png.trigger()
    data = (tmp_path / "plots.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- divergence, failure, closing
def test_exploding_preset_diverges_cleanly(window, qtbot):
    preset = window.builder.apply_preset("exploding-relu")
    # the preset itself jumps without diverging (its lesson); at a 30x larger lr it diverges at once
    window.builder.set_config(preset.config.with_changes(lr=1e-3))
    with qtbot.waitSignal(window.worker.run_diverged, timeout=WAIT_MS) as blocker:
        window.toggle_run()
    _wait_finished(qtbot, window)
    step = blocker.args[0]
    assert window.mirror.diverged_at == step
    assert window.status.state_label.text() == f"diverged at step {step}"
    assert "#d32f2f" in window.status.state_label.styleSheet()
    assert ("diverged" in [line[1] for line in window.event_log.lines()])
    window.refresh_plots_now()  # non-finite values must not break a plot
    assert window.plots.heatmap.image_data.shape[0] == 21
    assert window.last_error == ""


def test_worker_error_is_shown_and_app_stays_usable(thread_engine, window, qtbot, monkeypatch):
    """A step that raises (patched: so the engine runs in the worker thread here, the
    fallback; the same loop serves the child process)."""
    from gradsim.train import trainer as trainer_module

    def broken_step(self):
        raise RuntimeError("simulated failure inside a step")

    monkeypatch.setattr(trainer_module.Trainer, "step", broken_step)
    with qtbot.waitSignal(window.worker.failed, timeout=WAIT_MS) as blocker:
        window.toggle_run()
    assert "simulated failure" in blocker.args[0]
    qtbot.waitUntil(lambda: window.state == FAILED, timeout=WAIT_MS)
    assert window.last_error.startswith("Training stopped")
    assert window.dialogs and window.dialogs[-1].isVisible()
    assert window.window_actions.export.isEnabled()  # what was recorded can still be exported
    window.dialogs[-1].accept()

    monkeypatch.undo()
    window.toggle_run()  # a new run works
    _wait_finished(qtbot, window)
    assert len(window.mirror) == 40


def test_close_during_run_stops_worker_fast(qtbot, tiny_run_config):
    w = MainWindow()
    qtbot.addWidget(w)
    w.builder.set_config(tiny_run_config.with_changes(steps=1_000_000))
    w.show()
    w.toggle_run()
    qtbot.waitUntil(lambda: w.mirror is not None and len(w.mirror) > 5, timeout=WAIT_MS)
    assert w.worker.isRunning() and w.worker.is_running()
    assert w.close()
    # stop() waits for the loop, which checks for interruption between steps
    # (a few ms here); how long closing takes is measured in benchmarks/gui_speed.py.
    assert not w.worker.isRunning()


def test_snapshots_are_paced(window, qtbot, recorder):
    window.builder.steps.setValue(300)
    window.set_redraw_mode("smooth")  # the most snapshots a second the worker sends
    window.worker.snapshot.connect(recorder.record)
    t0 = time.perf_counter()
    window.toggle_run()
    _wait_finished(qtbot, window)
    elapsed = time.perf_counter() - t0
    assert len(window.mirror) == 300
    # at most ~30 a second, plus the forced ones (start, finish)
    assert len(recorder.items) <= 30 * elapsed + 5, (len(recorder.items), elapsed)


# ---------------------------------------------------------------- settings, tooltips
def test_settings_remember_config_and_window_state(qtbot, isolated_settings):
    from ui import settings as st

    w = MainWindow()
    qtbot.addWidget(w)
    w.builder.apply_preset("batchnorm-rescue")
    w.builder.depth.setValue(7)
    w.show()
    w.event_dock.toggleViewAction().trigger()  # the user closes the event log
    assert not w.event_dock.isVisible()
    w.close()
    assert list(isolated_settings.rglob("*.ini"))
    assert st.read_bytes(st.settings(), st.KEY_GEOMETRY) is not None

    w2 = MainWindow()
    qtbot.addWidget(w2)
    assert w2.builder.config().depth == 7
    assert w2.builder.config().activation == "sigmoid"
    assert [s.text() for s in w2.builder.schedule()] == ["300:batchnorm=on"]
    assert w2.builder.preset.currentText() == "batchnorm-rescue"
    w2.show()
    assert not w2.event_dock.isVisible()  # the dock layout came back
    assert w2.builder_dock.isVisible()
    w2.close()


def test_a_quit_with_a_session_open_leaves_no_empty_viewer_toolbar_at_the_next_start(qtbot, isolated_settings):
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    w.viewer.bar.setVisible(True)  # as while a saved session is open
    w.close()

    w2 = MainWindow()
    qtbot.addWidget(w2)
    w2.show()
    assert not w2.viewer.bar.isVisible() and w2.viewer.path == ""
    w2.close()


def test_corrupt_settings_fall_back_to_defaults(qtbot):
    from ui import settings as st

    s = st.settings()
    s.setValue(st.KEY_CONFIG, "{not json")
    s.setValue(st.KEY_GEOMETRY, "garbage")
    s.setValue(st.KEY_STATE, 12)
    s.setValue(st.KEY_SCHEDULE, "[\"x:y\"]")
    s.sync()
    w = MainWindow()
    qtbot.addWidget(w)
    assert w.builder.config() == RunConfig()
    assert "defaults" in w.statusBar().currentMessage()
    assert w.builder.schedule() == ()
    w.close()


def test_every_control_has_a_tooltip(window):
    from PySide6.QtWidgets import QAbstractButton, QComboBox, QLineEdit, QSpinBox

    for panel in (window.builder, window.toggles):
        for cls in (QComboBox, QLineEdit, QSpinBox, QAbstractButton):
            for w in panel.findChildren(cls):
                if isinstance(w.parent(), (QComboBox, QSpinBox)):
                    continue  # the line edit inside a combo or spin box
                assert w.toolTip().strip(), f"{cls.__name__} {w.objectName() or w.text() if hasattr(w, 'text') else ''} has no tooltip"
    for a in (window.window_actions.run, window.window_actions.step, window.window_actions.reset, window.window_actions.export, window.window_actions.save_png):
        assert a.toolTip().strip()


def test_dataset_preview_shows_points(window, qtbot):
    window.builder.dataset.setCurrentText("circles")
    qtbot.waitUntil(lambda: window.builder.preview.dataset == "circles" and window.builder.preview.n_points > 0, timeout=WAIT_MS)
    window.builder.dataset.setCurrentText("digits")
    qtbot.waitUntil(lambda: window.builder.preview.dataset == "digits", timeout=WAIT_MS)
    assert "64-D" in window.builder.preview.note.text()


def test_view_menu_toggles_docks(window):
    a = window.event_dock.toggleViewAction()
    assert a in window.window_actions.view_menu.actions()
    a.trigger()
    assert not window.event_dock.isVisible()
    a.trigger()
    assert window.event_dock.isVisible()


def test_plots_redraw_while_running_and_mode_is_remembered(qtbot, tiny_run_config):
    w = MainWindow()
    qtbot.addWidget(w)
    w.builder.set_config(tiny_run_config.with_changes(steps=1_000_000))
    w.show()
    assert w.pacer.mode.key == "fast"
    w.toggle_run()
    qtbot.waitUntil(w.plots.has_data, timeout=WAIT_MS)
    n, step = w.pacer.frames, w.plots.depth_profile.step
    qtbot.waitUntil(lambda: w.pacer.frames > n, timeout=WAIT_MS)  # live, not only at the end
    assert w.state == RUNNING
    assert w.plots.depth_profile.step > step
    w.window_actions.redraw["smooth"].trigger()
    assert w.pacer.mode.key == "smooth" and w.worker._min_interval == pytest.approx(1 / 30)
    n = w.pacer.frames
    qtbot.waitUntil(lambda: w.pacer.frames >= n + 5, timeout=WAIT_MS)
    w.close()

    w2 = MainWindow()
    qtbot.addWidget(w2)
    assert w2.pacer.mode.key == "smooth" and w2.window_actions.redraw["smooth"].isChecked()
    w2.close()

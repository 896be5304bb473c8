"""The live-toggles panel shows the running net's initialisation (from the config, then each re-init)."""
from __future__ import annotations

from gradsim.session.store import Event
from ui.run_controller import RunState


def test_a_new_run_shows_its_init_and_a_reinit_follows(window, qtbot, tiny_run_config):
    toggles = window.toggles
    toggles.init.setCurrentText("xavier_normal")
    window.builder.set_config(tiny_run_config.with_changes(init="normal", init_std=0.02))
    window.start_run(paused=True)
    assert window.state is RunState.PAUSED
    assert toggles.init.currentText() == "normal" and toggles.init_scale.text() == "0.02"
    assert toggles.init_scale.isEnabled()  # a scaled scheme: its std can be edited
    toggles.sync_event(Event(3, "init", "he_normal"))
    assert toggles.init.currentText() == "he_normal" and not toggles.init_scale.isEnabled()
    toggles.sync_event(Event(5, "init", "uniform:0.3"))
    assert toggles.init.currentText() == "uniform" and toggles.init_scale.text() == "0.3"

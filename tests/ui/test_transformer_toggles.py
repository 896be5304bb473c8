"""The toggles panel's transformer rows: shown for transformer runs only, norm=pre|post and
warmup=N sent as commands, a bad warm-up refused with a message and nothing sent, and applied
events followed."""
from __future__ import annotations

from gradsim.commands import SetNormPosition, SetWarmup
from gradsim.config import RunConfig
from gradsim.session.store import Event
from ui.panels.toggles import TogglesPanel

TF = RunConfig(model="transformer", dataset="recall-last", seq_len=8, depth=2, width=16, heads=2, norm_position="post", warmup_steps=0)


def _panel(qtbot, config):
    p = TogglesPanel()
    qtbot.addWidget(p)
    p.sync_config(config)
    p.set_live(True)
    sent = []
    p.command_requested.connect(sent.append)
    return p, sent


def test_the_rows_show_for_transformers_only(qtbot):
    p, _ = _panel(qtbot, TF)
    assert not p.norm_position.isHidden() and not p.warmup.isHidden() and p.norm_position.currentText() == "post"
    p.sync_config(RunConfig())
    assert p.norm_position.isHidden() and p.warmup_apply.isHidden()


def test_norm_and_warmup_are_sent_as_commands_and_a_bad_warmup_is_refused(qtbot):
    p, sent = _panel(qtbot, TF)
    p.norm_position.setCurrentText("pre")
    p.norm_apply.click()
    p.warmup.setText("50")
    p.warmup_apply.click()
    assert sent == [SetNormPosition("pre"), SetWarmup(50)]
    p.warmup.setText("-1")
    p.warmup_apply.click()
    assert len(sent) == 2 and not p.error_label.isHidden() and "-1" in p.error_label.text()
    p.warmup.setText("ten")
    p.warmup_apply.click()
    assert len(sent) == 2 and "'ten'" in p.error_label.text()


def test_applied_events_move_the_controls(qtbot):
    p, _ = _panel(qtbot, TF)
    p.sync_event(Event(3, "norm", "pre"))
    p.sync_event(Event(4, "warmup", "25"))
    assert p.norm_position.currentText() == "pre" and p.warmup.text() == "25"



def test_what_to_try_lists_the_running_familys_fixes_only(qtbot):
    """A transformer run is not told to switch batch norm on (it has no such command); an MLP run is."""
    p, _ = _panel(qtbot, TF)
    tf_tips = p.try_box.text()
    assert "Pre-LN" in tf_tips and "batch norm" not in tf_tips
    p.sync_config(RunConfig())
    assert "batch norm on" in p.try_box.text() and "Pre-LN" not in p.try_box.text()
    p.sync_config(RunConfig(model="lstm", dataset="adding", seq_len=10, depth=1, width=16))
    assert "W_hh" in p.try_box.text() and "batch norm" not in p.try_box.text()


def test_the_warmup_box_shows_the_running_configs_value(qtbot):
    """A run without warm-up shows 0 (not a suggested 100); one with warm-up its own steps."""
    p, _ = _panel(qtbot, TF)
    assert TF.warmup_steps == 0 and p.warmup.text() == "0"
    p.sync_config(RunConfig(**{**TF.to_dict(), "warmup_steps": 40}))
    assert p.warmup.text() == "40"
    p.sync_config(TF)
    assert p.warmup.text() == "0"


WAIT_MS = 120_000


def test_the_window_shows_the_runs_warmup_and_follows_a_toggle(window, qtbot):
    """post-ln has no warm-up: the box says 0 when its run starts, and after a warm-up
    toggle is applied by the engine it says the toggled value (the run's value now)."""
    window.builder.apply_preset("post-ln")
    assert window.builder.config().warmup_steps == 0
    window.toggles.warmup.setText("77")  # a stale edit from before the run
    assert window.start_run(paused=True)
    qtbot.waitUntil(lambda: window.mirror is not None, timeout=WAIT_MS)
    assert window.toggles.warmup.text() == "0"
    window.step_once()
    qtbot.waitUntil(lambda: window.mirror.steps_run >= 1, timeout=WAIT_MS)
    window.toggles.warmup.setText("30")
    window.toggles.warmup_apply.click()
    window.toggles.warmup.setText("5")  # typed after Apply: the applied event puts the run's value back
    window.step_once()
    qtbot.waitUntil(lambda: any(e.kind == "warmup" for e in window.mirror.events), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.toggles.warmup.text() == "30", timeout=WAIT_MS)

"""An exercise that asks for a change during the run pauses it at that step and says what to do."""
from __future__ import annotations

from gradsim.teaching.exercises import EARLIEST_CHANGE_STEP, exercise_files, load_exercise, mid_run_changes
from tests.ui.conftest import wait_engine_settled
from ui.run_controller import RunState

WAIT_MS = 120_000


def _exercise(eid: str):
    return next(ex for ex in map(load_exercise, exercise_files()) if ex.id == eid)


def test_mid_run_changes_come_from_the_event_objectives_the_exercise_does_not_schedule():
    bn = _exercise("batchnorm-rescue")
    assert mid_run_changes(bn) == [(100, "Batch norm switched on during the run (after step 100)")]
    res = _exercise("residual-rescue")
    assert mid_run_changes(res)[0][0] == EARLIEST_CHANGE_STEP  # min_step 1: not before the problem shows
    assert mid_run_changes(_exercise("vanishing-sigmoid")) == []


def test_the_batchnorm_exercise_pauses_at_step_100_and_says_what_to_do(window, qtbot):
    assert window.teaching.open_exercise("batchnorm-rescue")
    ex = window.teaching.active_exercise()
    window.teaching._on_start_requested(ex)  # the panel's Start: the exercise's config in the builder
    window.start_run()
    assert window.pace.pause_at.value() == 100 and "pauses at step 100" in window.status.currentMessage()
    qtbot.waitUntil(lambda: window.state is RunState.PAUSED, timeout=WAIT_MS)
    facts = wait_engine_settled(qtbot, window, WAIT_MS)
    assert facts["step_index"] == 100 == window.mirror.steps_run
    msg = window.status.currentMessage()
    assert "Batch norm switched on" in msg and "Resume" in msg
    assert window.pace.pause_at.value() == 0  # spent: Resume trains on to the end


def test_free_play_and_a_students_own_pause_step_are_left_alone(window, qtbot):
    window.start_run(paused=True)
    assert window.pace.pause_at.value() == 0
    window.reset_run()
    assert window.teaching.open_exercise("batchnorm-rescue")
    window.teaching._on_start_requested(window.teaching.active_exercise())
    window.pace.pause_at.setValue(30)
    window.start_run(paused=True)
    assert window.pace.pause_at.value() == 30 and window.exercise_pace.set_step is None

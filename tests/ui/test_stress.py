"""GUI stress: students do everything wrong on purpose, as fast as the event loop allows.

No exception may reach the Qt event loop (pytest-qt fails the test if one does),
nothing may hang, and no QThread may be left running (conftest's fixture).
"""
from __future__ import annotations

import random


from gradsim.commands import Reinit, SetActivation, SetBatchNorm, SetClip, SetLR, SetOptimizer
from gradsim.config import RunConfig
from tests.ui.conftest import wait_engine_settled
from ui.main_window import MainWindow
from ui.run_controller import RunState

FAILED, FINISHED, PAUSED, RUNNING = RunState.FAILED, RunState.FINISHED, RunState.PAUSED, RunState.RUNNING

WAIT_MS = 60_000
TINY = RunConfig(dataset="moons", n_samples=200, depth=4, width=8, batch_size=32, steps=400, stats_every=3)


def _commands(rng: random.Random):
    return rng.choice([
        SetBatchNorm(True), SetBatchNorm(False), SetActivation(rng.choice(["relu", "tanh", "sigmoid", "leaky_relu"])),
        Reinit(rng.choice(["he_normal", "xavier_normal", "orthogonal"])), SetClip("norm", 1.0), SetClip("value", 0.1),
        SetClip("none"), SetLR(rng.choice([1e-3, 0.1, 1e6])), SetOptimizer(rng.choice(["sgd", "momentum", "adam"])),
    ])


def test_toggles_as_fast_as_the_event_loop_allows(window, qtbot):
    window.builder.set_config(TINY.with_changes(steps=5000))
    assert window.start_run()
    rng = random.Random(0)
    sent = 0
    for _ in range(300):
        window.run.send_command(_commands(rng))
        sent += 1
        qtbot.wait(0)  # let the event loop turn, no fixed sleep
    window.toggle_run()  # pause
    qtbot.waitUntil(lambda: window.state in (PAUSED, FINISHED, FAILED), timeout=WAIT_MS)

    t = wait_engine_settled(qtbot, window, WAIT_MS)  # the engine's Trainer, read in its process
    applied = [e for e in t["events"] if e[1] in ("batchnorm", "activation", "init", "clip", "lr", "optimizer")]
    # every command sent during the run reached the trainer in order (none dropped by a
    # single pending slot); after a divergence the window stops sending them
    assert 0 < len(applied) <= sent
    if t["diverged_at"] is None:
        assert len(applied) == sent
    assert window.state != FAILED, window.last_error
    # the network and optimizer are still consistent
    assert t["consistent"]


def test_start_pause_step_reset_in_rapid_sequence(window, qtbot):
    window.builder.set_config(TINY)
    rng = random.Random(1)
    actions = [window.toggle_run, window.step_once, window.reset_run, lambda: window.start_run(), lambda: window.start_run(paused=True)]
    for _ in range(200):
        rng.choice(actions)()
        qtbot.wait(0)
    assert window.start_run()
    qtbot.waitUntil(lambda: window.state in (FINISHED, FAILED), timeout=WAIT_MS)
    assert window.state == FINISHED, window.last_error
    assert window.mirror is not None and window.mirror.steps_run == TINY.steps


def test_diverging_while_the_user_toggles(window, qtbot):
    window.builder.set_config(TINY.with_changes(activation="relu", init="normal", init_std=2.0, depth=8, lr=1.0, steps=3000))
    assert window.start_run()
    rng = random.Random(2)
    for _ in range(200):
        if window.state != RUNNING:
            break
        window.run.send_command(_commands(rng))
        qtbot.wait(0)
    qtbot.waitUntil(lambda: window.state in (FINISHED, FAILED), timeout=WAIT_MS)
    assert window.state == FINISHED, window.last_error
    window.refresh_plots_now()  # plots take the nan/inf rows without raising


def test_close_while_toggling(qtbot):
    w = MainWindow(persist=False)
    qtbot.addWidget(w)
    w.show()
    w.builder.set_config(TINY.with_changes(steps=1_000_000))
    assert w.start_run()
    rng = random.Random(3)
    for _ in range(50):
        w.run.send_command(_commands(rng))
        qtbot.wait(0)
    assert w.close()
    assert not w.worker.isRunning()

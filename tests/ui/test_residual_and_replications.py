"""Window: live residual / layer-norm toggles and builder fields; Help > Replications...
running a replication in the worker with progress, figure, verdict and session folders."""
from __future__ import annotations

import numpy as np
import pytest

from gradsim import replications
from gradsim.config import RunConfig
from gradsim.replications.framework import SEEDS, Outcome, Replication, Run
from tests.ui.conftest import wait_engine_settled

WAIT_MS = 60_000


def _wait_idle_worker(qtbot, window) -> dict:
    return wait_engine_settled(qtbot, window, WAIT_MS)


def test_residual_and_layernorm_toggles_reach_the_trainer_and_are_logged(window, qtbot):
    window.builder.steps.setValue(100_000)
    assert window.start_run(paused=True)
    window.step_once()
    _wait_idle_worker(qtbot, window)
    t = window.toggles
    assert t.residual.isEnabled() and t.layernorm.isEnabled()
    t.residual_alpha.setText("0.3")
    t.residual.click()  # off -> on with alpha 0.3
    t.layernorm.click()
    qtbot.waitUntil(lambda: [e.kind for e in window.mirror.events][1:] == ["residual", "layernorm"], timeout=WAIT_MS)
    trainer = _wait_idle_worker(qtbot, window)  # white-box: the command reached the engine's Trainer
    assert [e[2] for e in trainer["events"]][1:] == ["on:0.3", "on"]
    assert trainer["residual"] and trainer["residual_alpha"] == pytest.approx(0.3) and trainer["has_layernorm"]
    t.residual.click()  # on -> off
    qtbot.waitUntil(lambda: [e.value for e in window.mirror.events][-1] == "off", timeout=WAIT_MS)
    t.residual_alpha.setText("-2")
    t.residual.click()  # a bad alpha is refused in the panel, nothing is sent
    assert t.error_label.isVisible() and "residual alpha" in t.error_label.text() and not t.residual.isChecked()
    window.step_once()
    qtbot.waitUntil(lambda: window.mirror.steps_run == 2, timeout=WAIT_MS)
    assert [e.kind for e in window.mirror.events][1:] == ["residual", "layernorm", "residual"]


def test_builder_reads_residual_layernorm_and_alpha(window):
    b = window.builder
    b.residual.setChecked(True)
    b.layernorm.setChecked(True)
    assert b.config().residual and b.config().layernorm and b.config().residual_alpha is None
    b.residual_alpha.setText("0.25")
    assert b.config().residual_alpha == 0.25
    b.residual_alpha.setText("abc")
    assert b.config() is None and "residual_alpha" in b.error()
    b.set_config(RunConfig(residual=True, residual_alpha=0.5, layernorm=False))
    assert b.residual.isChecked() and b.residual_alpha.text() == "0.5" and not b.layernorm.isChecked()
    window.toggles.sync_config(RunConfig(residual=True, layernorm=True))
    assert window.toggles.residual.isChecked() and window.toggles.layernorm.isChecked()


class _Tiny(Replication):
    """A real replication through the real runner, small enough for a GUI test."""

    name, title, citation = "tinyrep", "Tiny replication", "nobody 2026"
    claim, setup = "the loss stays finite", "one small run per seed"
    steps = 30

    def runs(self, mode, seed=0):
        return [Run(f"seed{seed}", RunConfig(dataset="moons", n_samples=200, depth=3, width=8, batch_size=16, steps=self.steps, seed=seed))]

    def analyse(self, results, mode):
        ok = all(np.isfinite(r.loss()).all() for r in results.values())
        return Outcome(ok, f"finite: {ok}", "every loss finite", [{"run": k, "loss_end": r.tail_mean("loss")} for k, r in results.items()])

    def draw(self, fig, results, outcome):
        ax = fig.add_subplot(1, 1, 1)
        for r in results.values():
            ax.plot(r.loss())


@pytest.fixture
def tiny_replication(monkeypatch):
    """A replication defined here: the tests that use it list ``thread_engine`` first, since a
    replication registered in this process is unknown to an engine process (the engine's
    cancel and progress through the pipe are tested in tests/engine/test_engine_process.py)."""
    rep = _Tiny()
    monkeypatch.setitem(replications.REPLICATIONS, rep.name, rep)
    import ui.panels.replications as dialog_module

    monkeypatch.setattr(dialog_module, "REPLICATIONS", replications.REPLICATIONS)
    return rep


# The offscreen platform cannot propagate a top-level dialog's size hints and says so.
OFFSCREEN_DIALOG = pytest.mark.qt_log_ignore("does not support propagateSizeHints")


@OFFSCREEN_DIALOG
def test_help_replications_runs_in_the_worker_and_shows_figure_and_verdict(thread_engine, window, qtbot, tmp_path, tiny_replication):
    actions = [a.text() for m in window.menuBar().findChildren(type(window.menuBar().actions()[0].menu())) for a in m.actions()]
    assert "&Replications…" in actions
    dlg = window.show_replications()
    assert dlg.list.count() == len(replications.REPLICATIONS)
    assert "he2015" in dlg.list.item(0).text()
    dlg.select("tinyrep")
    assert "the loss stays finite" in dlg.description.text()
    dlg.out.setText(str(tmp_path / "rep"))
    seen = []
    window.worker.replication_progress.connect(lambda d, t, s: seen.append((d, t)))
    with qtbot.waitSignal(window.worker.replication_finished, timeout=WAIT_MS):
        dlg.run_button.click()
        assert dlg.is_running() and not dlg.run_button.isEnabled()
    assert seen and seen[-1] == (30 * SEEDS["default"],) * 2  # one 30-step run per seed
    assert not dlg.is_running() and dlg.last_result.reproduced
    assert "Verdict: REPRODUCED." in dlg.verdict.toPlainText()
    assert dlg.figure.pixmap() is not None and not dlg.figure.pixmap().isNull()
    assert dlg.sessions.count() == SEEDS["default"] and (tmp_path / "rep" / "runs" / "seed0" / "session.json").is_file()
    assert dlg.progress.value() == dlg.progress.maximum()
    assert dlg.open_run.isEnabled() and dlg.open_folder.isEnabled()
    # a run behind the figure opens as a session in the window (File > Open session's path)
    assert dlg.open_run.text() == "Open selected &session"
    with qtbot.waitSignal(window.viewer.opened, timeout=WAIT_MS) as opened:
        dlg.open_run.click()
    assert opened.args == [str(tmp_path / "rep" / "runs" / "seed0")]


@pytest.mark.qt_log_ignore("does not support propagateSizeHints", "does not support raise")  # offscreen platform
def test_help_replications_keeps_one_dialog_per_window(window, qtbot):
    window.window_actions.replications.trigger()
    dlg = window.show_replications()
    assert dlg.isVisible() and window.show_replications() is dlg
    dlg.close()
    assert window.show_replications() is dlg and dlg.isVisible()  # reopened, with its last result
    dlg.close()


@OFFSCREEN_DIALOG
def test_replication_can_be_cancelled_and_the_live_run_survives(thread_engine, window, qtbot, tmp_path, tiny_replication):
    window.builder.steps.setValue(100_000)
    assert window.start_run(paused=True)
    window.step_once()
    _wait_idle_worker(qtbot, window)
    tiny_replication.steps = 200_000  # would take minutes
    dlg = window.show_replications()
    dlg.select("tinyrep")
    dlg.out.setText(str(tmp_path / "rep"))
    with qtbot.waitSignal(window.worker.replication_progress, timeout=WAIT_MS):
        dlg.start()
    with qtbot.waitSignal(window.worker.replication_failed, timeout=WAIT_MS) as blocker:
        dlg.cancel_button.click()
    assert blocker.args == ["cancelled"] and "Cancelled" in dlg.status.text() and dlg.run_button.isEnabled()
    window.step_once()  # the window's own run is still there and steps on
    qtbot.waitUntil(lambda: window.mirror.steps_run == 2, timeout=WAIT_MS)

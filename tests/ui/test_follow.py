"""File > Follow running session: the window's plots grow as a gradsim.watch run writes its folder.

A tiny torch model is trained in this test process (the test may import torch;
the window's modules must not) under gradsim.watch, in chunks; after each chunk
the window, which reads the folder on its own poll thread, must plot exactly
the rows the files hold (read here with the csv module, not the loader).
"""
from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import numpy as np
import pytest

from gradsim.session.io import export_session, load_session
from gradsim.teaching.diagnose import diagnose
from gradsim.watch.writer import read_growing
from ui.run_controller import RunState

torch = pytest.importorskip("torch")


def _csv(folder: Path, name: str) -> list[dict[str, str]]:
    return list(csv.DictReader((folder / name).read_text().splitlines()))


class TinyRun:
    """A 3-layer MLP on random data, watched into ``out``, trained a chunk at a time."""

    def __init__(self, out: Path) -> None:
        import gradsim.watch

        torch.manual_seed(0)
        self.model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8), torch.nn.ReLU(),
                                         torch.nn.Linear(8, 3))
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.1)
        self.x, self.y = torch.randn(32, 4), torch.randint(0, 3, (32,))
        self.w = gradsim.watch(self.model, self.opt, out=out)

    def train(self, n: int) -> None:
        for _ in range(n):
            loss = torch.nn.functional.cross_entropy(self.model(self.x), self.y)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            self.w.loss(loss)
        self.w.flush()


def _assert_plots_equal_files(window, folder: Path) -> None:
    steps, layers = _csv(folder, "steps.csv"), _csv(folder, "layers.csv")
    n = len(steps)
    window.refresh_plots_now()
    x, y = window.plots.loss_accuracy.loss_curve.getOriginalDataset()
    np.testing.assert_array_equal(x, [int(r["step"]) for r in steps])
    np.testing.assert_array_equal(y, [float(r["loss"]) for r in steps])
    n_units = len(layers) // n
    grad = np.array([float(r["grad_norm"]) for r in layers], np.float32).reshape(n, n_units)
    np.testing.assert_allclose(window.plots.heatmap.image_data, np.log10(grad).T, rtol=1e-6)
    np.testing.assert_allclose(window.plots.depth_profile.values, grad[-1], rtol=1e-7)


def test_following_a_watched_run_plots_every_row_the_files_hold(qtbot, window, tmp_path):
    out = tmp_path / "run"
    run = TinyRun(out)
    run.train(5)
    with qtbot.waitSignal(window.follow.started, timeout=20000):
        assert window.follow.follow(str(out))
    assert window.state is RunState.VIEWING and window.follow.following
    qtbot.waitUntil(lambda: len(window.run.viewed) == 5, timeout=20000)
    _assert_plots_equal_files(window, out)
    # rows are named by module path; a watched run cannot be re-run
    assert [u.name for u in window.run.viewed.units] == ["0", "2", "4"]
    assert window.plots.heatmap._ticks[-1][1] == "4"
    assert not window.viewer.rerun_action.isVisible() and window.viewer.no_rerun.isVisible()

    run.train(7)  # the plots grow while the window follows
    qtbot.waitUntil(lambda: len(window.run.viewed) == 12, timeout=20000)
    _assert_plots_equal_files(window, out)
    assert window.viewer.slider.maximum() == 11 and window.viewer.slider.value() == 11
    assert "training" in window.status.currentMessage()

    # the diagnosis panel says what gradsim diagnose says about the same folder
    window.diagnosis.dock.show()
    window.diagnosis.dock.raise_()
    qtbot.waitUntil(lambda: window.diagnosis.panel.text() == diagnose(read_growing(out)).text(), timeout=20000)

    with qtbot.waitSignal(window.follow.stopped, timeout=20000) as blocker:
        run.w.close()
    assert "the script finished (12 steps)" in blocker.args[0]
    assert "the script finished" in window.status.currentMessage()
    assert not window.follow.following and window.state is RunState.VIEWING
    _assert_plots_equal_files(window, out)


def test_a_folder_that_is_not_a_watched_run_is_refused_and_nothing_changes(qtbot, window, tmp_path):
    from gradsim.session.store import Session

    mlp = export_session(Session(2, {"depth": 1}), tmp_path / "mlp")
    for path, says in ((tmp_path / "nothing", "no such folder"), (mlp, "not a watched run")):
        state = window.state
        assert not window.follow.follow(str(path))
        assert window.state is state and not window.follow.following
        assert says in window.last_error and says in window.status.currentMessage()


def test_an_opened_watched_session_says_it_is_not_replayable(qtbot, window, tmp_path):
    out = tmp_path / "run"
    run = TinyRun(out)
    run.train(3)
    run.w.close()
    with qtbot.waitSignal(window.viewer.opened, timeout=20000):
        window.open_session(str(out))
    assert not window.viewer.rerun_action.isVisible() and not window.viewer.rerun_action.isEnabled()
    assert window.viewer.no_rerun.isVisible() and "not replayable" in window.viewer.no_rerun.text()
    assert "cannot be re-run" in window.status.currentMessage()
    assert window.viewer.rerun() is False and window.state is RunState.VIEWING
    # the panel opens with the session and shows its diagnosis
    assert window.diagnosis.dock.isVisible()
    assert window.diagnosis.panel.text() == diagnose(load_session(out)).text()


def test_main_follow_refuses_a_folder_that_is_not_a_watched_run(tmp_path, subprocess_env):
    env, root, python = subprocess_env
    r = subprocess.run([python, "main.py", "--follow", str(tmp_path)], cwd=root, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip() == f"gradsim: error: --follow: {tmp_path}: holds no session.json; expected the out= folder " \
                               "of a gradsim.watch run (it appears once the script calls gradsim.watch)"

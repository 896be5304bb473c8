"""File > Open session: an exported folder or .zip is shown read-only in every plot.

The expected numbers are read from the exported CSV files with the csv module,
not through the loader, so a loader bug cannot hide itself.
"""
from __future__ import annotations

import csv
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from gradsim.commands import Scheduled, SetBatchNorm
from gradsim.config import RunConfig
from gradsim.session.io import export_session
from ui.run_controller import RunState

STEPS = 24
EVENT_STEP = 10


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny headless run with one toggle, exported as a folder and as a .zip."""
    from gradsim.train.trainer import Trainer

    cfg = RunConfig(dataset="moons", n_samples=120, depth=3, width=8, batch_size=16, steps=STEPS, stats_every=4, activation="tanh")
    t = Trainer(cfg, (Scheduled(EVENT_STEP, SetBatchNorm(True)),))
    t.run()
    root = tmp_path_factory.mktemp("sessions")
    folder = export_session(t.session, root / "run-folder")
    archive = export_session(t.session, root / "run.zip", zip_file=True)
    return folder, archive


def _csv_rows(path: Path, name: str) -> list[dict[str, str]]:
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            text = zf.read(name).decode()
    else:
        text = (path / name).read_text()
    return list(csv.DictReader(text.splitlines()))


def _open(qtbot, window, path) -> None:
    with qtbot.waitSignal(window.viewer.opened, timeout=20000):
        window.open_session(str(path))
    assert window.state is RunState.VIEWING


@pytest.mark.parametrize("which", ["folder", "zip"])
def test_opened_session_plots_equal_the_files(qtbot, window, exported, which):
    path = exported[0] if which == "folder" else exported[1]
    _open(qtbot, window, path)
    steps = _csv_rows(path, "steps.csv")
    layers = _csv_rows(path, "layers.csv")
    n_layers = 4
    assert len(steps) == STEPS and len(layers) == STEPS * n_layers

    loss = np.array([float(r["loss"]) for r in steps])
    acc = np.array([float(r["accuracy"]) for r in steps])
    x, y = window.plots.loss_accuracy.loss_curve.getOriginalDataset()
    np.testing.assert_array_equal(x, [int(r["step"]) for r in steps])
    np.testing.assert_allclose(y, loss, rtol=0, atol=0)
    _, ya = window.plots.loss_accuracy.acc_curve.getOriginalDataset()
    np.testing.assert_allclose(ya, acc, rtol=0, atol=0)

    grad = np.array([float(r["grad_norm"]) for r in layers], np.float32).reshape(STEPS, n_layers)
    np.testing.assert_allclose(window.plots.heatmap.image_data, np.log10(grad).T, rtol=1e-6)
    np.testing.assert_allclose(window.plots.depth_profile.values, grad[-1], rtol=1e-7)
    assert window.plots.depth_profile.step == STEPS - 1
    # The toggle of the run is a marker on the time plots, and the event log lists it.
    assert any(ev.kind == "batchnorm" and ev.step == EVENT_STEP for ev in window.plots.loss_accuracy.markers.events)
    assert any(kind == "batchnorm" for _, kind, _ in window.event_log.lines())
    # Read-only: toggles are dead, export is off, the slider is shown.
    assert not window.window_actions.export.isEnabled()
    assert window.viewer.bar.isVisible()
    # The builder shows the opened run's config and events (what Re-run trains).
    assert window.builder.config().depth == 3 and window.builder.config().activation == "tanh"
    assert [s.text() for s in window.builder.schedule()] == [f"{EVENT_STEP}:batchnorm=on"]


def test_step_slider_scrubs_every_plot(qtbot, window, exported):
    folder = exported[0]
    _open(qtbot, window, folder)
    steps = _csv_rows(folder, "steps.csv")
    layers = _csv_rows(folder, "layers.csv")
    row = EVENT_STEP - 3
    window.viewer.show_row(row)
    x, _ = window.plots.loss_accuracy.loss_curve.getOriginalDataset()
    assert len(x) == row + 1 and x[-1] == int(steps[row]["step"])
    want = [float(r["grad_norm"]) for r in layers if int(r["step"]) == row]
    np.testing.assert_allclose(window.plots.depth_profile.values, want, rtol=1e-7)
    # The toggle at a later step is not shown yet; at the end it is again.
    assert not any(ev.kind == "batchnorm" for ev in window.plots.loss_accuracy.markers.events)
    window.viewer.show_row(STEPS - 1)
    assert any(ev.kind == "batchnorm" for ev in window.plots.loss_accuracy.markers.events)
    assert window.viewer.step_label.text() == f"step {STEPS} of {STEPS}"
    assert window.status.step_label.text() == f"step {STEPS} / {STEPS}"  # the same count in both


def test_the_status_bar_follows_the_slider(qtbot, window, exported):
    folder = exported[0]
    _open(qtbot, window, folder)
    steps = _csv_rows(folder, "steps.csv")
    row = 5
    window.viewer.slider.setValue(row)  # as a drag does: redrawn by the scrub timer
    qtbot.waitUntil(lambda: window.status.step_label.text().startswith(f"step {row + 1} "), timeout=5000)
    assert window.viewer.step_label.text() == f"step {row + 1} of {STEPS}"
    assert window.status.step_label.text() == f"step {row + 1} / {STEPS}"
    assert window.status.loss_label.text() == f"loss {float(steps[row]['loss']):.4g}"
    assert window.status.acc_label.text() == f"batch accuracy {float(steps[row]['accuracy']):.1%}"


def test_commands_are_refused_while_viewing(qtbot, window, exported):
    _open(qtbot, window, exported[0])
    refused = []
    window.run.command_refused.connect(refused.append)
    window.run.send_command(SetBatchNorm(False))
    assert refused and "read-only" in refused[0]


def test_rerun_starts_a_live_run_from_config_and_events(qtbot, window, exported):
    _open(qtbot, window, exported[0])
    assert window.viewer.rerun()
    assert window.state in (RunState.RUNNING, RunState.FINISHED)
    assert window.run.config.depth == 3 and window.run.config.activation == "tanh"
    assert [s.text() for s in window.builder.schedule()] == [f"{EVENT_STEP}:batchnorm=on"]
    assert not window.viewer.bar.isVisible()
    qtbot.waitUntil(lambda: window.state is RunState.FINISHED, timeout=30000)
    # The replay applied the toggle at the same step as the original run.
    assert any(e.kind == "batchnorm" and e.step == EVENT_STEP for e in window.mirror.events)


def _corrupt_copies(folder: Path, tmp_path: Path) -> list[Path]:
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    for name in ("session.json", "steps.csv", "events.csv"):
        (truncated / name).write_text((folder / name).read_text())
    lines = (folder / "layers.csv").read_text().splitlines()
    (truncated / "layers.csv").write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    foreign = tmp_path / "picture.zip"
    foreign.write_bytes(b"\x89PNG\r\n\x1a\n not a zip at all")
    other_json = tmp_path / "other"
    other_json.mkdir()
    (other_json / "session.json").write_text('{"format": "someone-else/3"}')
    return [truncated, foreign, other_json, tmp_path / "does-not-exist"]


def test_corrupt_or_foreign_file_leaves_the_run_intact(qtbot, window, exported, tmp_path):
    window.start_run(paused=True)
    window.run.step(3)
    qtbot.waitUntil(lambda: window.mirror is not None and window.mirror.steps_run >= 3, timeout=30000)
    mirror, generation = window.mirror, window.run.generation
    window.refresh_plots_now()  # the pacer may not have drawn the last steps yet
    n_rows, loss_before = len(mirror), window.plots.loss_accuracy.loss_curve.getOriginalDataset()[1]
    for bad in _corrupt_copies(exported[0], tmp_path):
        with qtbot.waitSignal(window.viewer.open_failed, timeout=20000) as blocker:
            window.open_session(str(bad))
        message = blocker.args[0]
        assert "\n" not in message and str(bad.name) in message
        assert window.state is RunState.PAUSED
        assert window.mirror is mirror and len(mirror) == n_rows and window.run.generation == generation
        assert window.last_error.startswith("Cannot open session")
    window.refresh_plots_now()
    np.testing.assert_array_equal(window.plots.loss_accuracy.loss_curve.getOriginalDataset()[1], loss_before)
    # The run still takes commands and steps.
    window.run.step(1)
    qtbot.waitUntil(lambda: window.mirror.steps_run >= 4, timeout=30000)


def test_cli_open_bad_file_is_one_line_exit_2(subprocess_env, tmp_path):
    env, root, python = subprocess_env
    bad = tmp_path / "nope.zip"
    bad.write_text("hello")
    proc = subprocess.run([python, "main.py", "--open", str(bad)], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gradsim: error: --open") and "nope.zip" in lines[0]


def test_cli_open_with_screenshot(subprocess_env, exported, tmp_path):
    env, root, python = subprocess_env
    shot = tmp_path / "opened.png"
    proc = subprocess.run([python, "main.py", "--open", str(exported[1]), "--screenshot", str(shot)],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert shot.stat().st_size > 10000


def test_dropping_a_session_zip_opens_it(qtbot, window, exported):
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(exported[1]))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.viewer.opened, timeout=20000):
        window.dropEvent(event)
    assert window.state is RunState.VIEWING and len(window.mirror) == STEPS
    # Two files at once are not one session: refused without a change.
    mime2 = QMimeData()
    mime2.setUrls([QUrl.fromLocalFile(str(exported[0])), QUrl.fromLocalFile(str(exported[1]))])
    event2 = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime2, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event2)
    assert not event2.isAccepted() and window.state is RunState.VIEWING


def test_dragging_one_local_path_over_the_window_is_accepted_several_are_not(window, tmp_path):
    from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent

    def drag(*paths):
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
        event = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
        event.setAccepted(False)
        window.dragEnterEvent(event)
        return event.isAccepted()

    assert window.acceptDrops()
    assert drag(tmp_path / "a.zip")
    assert not drag(tmp_path / "a.zip", tmp_path / "b.zip")
    assert not drag()


@pytest.fixture(scope="module")
def fork_export(tmp_path_factory):
    """A forked headless run (B with another learning rate from step 8), exported as the window
    exports a fork: a folder of branch-A, branch-B and comparison.csv."""
    from gradsim.commands import SetLR
    from gradsim.train.fork import export_comparison, fork_trainer
    from gradsim.train.trainer import Trainer

    cfg = RunConfig(dataset="moons", n_samples=120, depth=3, width=8, batch_size=16, steps=STEPS, stats_every=4)
    a = Trainer(cfg)
    a.run(8)
    b = fork_trainer(a)
    b.apply(SetLR(0.5))
    a.run()
    b.run(6)  # a short branch B: it stopped at step 14
    root = tmp_path_factory.mktemp("fork")
    return export_comparison(a.session, b.session, root / "compare"), a.session, b.session


def test_a_saved_fork_folder_reopens_with_both_branches_and_scrubs_them_together(qtbot, window, fork_export):
    folder, a, b = fork_export
    _open(qtbot, window, folder)
    run = window.run
    np.testing.assert_array_equal(run.mirror.layers, a.layers)
    assert run.branch_mirror is not None
    np.testing.assert_array_equal(run.branch_mirror.steps, b.steps)
    np.testing.assert_array_equal(run.branch_mirror.layers, b.layers)
    assert "forked" in window.status.currentMessage()
    window.refresh_plots_now()
    assert window.plots._compare is run.branch_mirror  # the plots draw B against A
    # The slider cuts both branches at the same step.
    window.viewer.show_row(10)
    assert int(run.mirror.steps[-1]) == 10
    assert int(run.branch_mirror.steps[-1]) == 10
    np.testing.assert_array_equal(run.branch_mirror.layers, b.layers[: int(np.searchsorted(b.steps, 10, "right"))])
    window.viewer.show_row(STEPS - 1)  # past B's last step: B whole
    assert int(run.branch_mirror.steps[-1]) == int(b.steps[-1]) == 13
    # Closing it leaves no branch behind.
    window.viewer.close_session()
    assert run.branch_mirror is None and run.viewed_branch is None


def test_a_fork_folder_missing_a_branch_is_refused_in_one_line(qtbot, window, fork_export, tmp_path):
    import shutil

    folder = tmp_path / "half"
    shutil.copytree(fork_export[0], folder)
    shutil.rmtree(folder / "branch-B")
    with qtbot.waitSignal(window.viewer.open_failed, timeout=20000) as sig:
        window.open_session(str(folder))
    assert str(folder) in sig.args[0] and window.state is RunState.IDLE

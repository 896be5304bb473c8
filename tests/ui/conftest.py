"""Fixtures for GUI tests: isolated settings, no dangling threads, a ready window.

QT_QPA_PLATFORM=offscreen is set by tests/conftest.py before Qt is imported.
"""
from __future__ import annotations

import os
import sys
import traceback
from weakref import WeakKeyDictionary

import pytest
from PySide6.QtCore import QCoreApplication, QObject, QSettings, QThread, Slot

from gradsim.config import RunConfig


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path):
    """Point QSettings at tmp_path, so tests never read or write a user's settings (napari's ``_fresh_settings``)."""
    from ui.settings import APPLICATION, ORGANIZATION

    folder = tmp_path / "qsettings"
    folder.mkdir()
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.SystemScope, str(folder / "system"))
    QCoreApplication.setOrganizationName(ORGANIZATION)
    QCoreApplication.setApplicationName(APPLICATION)
    yield folder


@pytest.fixture(autouse=True)
def isolated_autosave(tmp_path, monkeypatch):
    """Crash copies of runs go to tmp_path, never a user's data folder (ui/autosave.py)."""
    folder = tmp_path / "autosave"
    monkeypatch.setenv("GRADSIM_AUTOSAVE_DIR", str(folder))
    return folder


@pytest.fixture(autouse=True)
def unsaved_prompts():
    """A "save your work first?" question no test answered itself answers Discard (a modal box
    would wait forever offscreen); the questions asked are kept, in order. A test that wants
    another answer patches ``QMessageBox.question`` itself. A patcher of its own, so a test's
    ``monkeypatch.undo()`` leaves this one in place."""
    from PySide6.QtWidgets import QMessageBox

    asked: list[str] = []

    def discard(_parent, _title, text, *_args, **_kwargs):
        asked.append(text)
        return QMessageBox.StandardButton.Discard

    patcher = pytest.MonkeyPatch()
    patcher.setattr(QMessageBox, "question", staticmethod(discard))
    yield asked
    patcher.undo()


@pytest.fixture(autouse=True)
def _dangling_qthreads(monkeypatch, qtbot):
    """Fail a test that leaves a QThread running (napari's ``_dangling_qthreads``)."""
    base_start = QThread.start
    started: "WeakKeyDictionary[QThread, str]" = WeakKeyDictionary()

    def start_and_remember(self, *args, **kwargs):
        started[self] = "".join(traceback.format_stack(limit=6)[:-1])
        return base_start(self, *args, **kwargs)

    monkeypatch.setattr(QThread, "start", start_and_remember)
    yield
    dangling = []
    for thread, where in list(started.items()):
        try:
            if thread.isRunning():
                dangling.append((thread, where))
        except RuntimeError:  # the C++ object is gone: it cannot be running
            continue
    for thread, _ in dangling:
        thread.requestInterruption()
        thread.quit()
        thread.wait(5000)
    if dangling:
        places = "\n".join(where for _, where in dangling)
        pytest.fail(f"the test left {len(dangling)} QThread(s) running, started at:\n{places}")


class Recorder(QObject):
    """Collects what a signal carries, through a bound @Slot (cross-thread safe in PySide6 >= 6.8)."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list = []

    @Slot(object)
    def record(self, item: object) -> None:
        self.items.append(item)


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def tiny_run_config() -> RunConfig:
    return RunConfig(dataset="moons", n_samples=200, depth=4, width=12, batch_size=32, steps=40, stats_every=5)


@pytest.fixture
def window(qtbot, tiny_run_config):
    """A shown MainWindow with a tiny config in the builder; closed (worker stopped) afterwards."""
    from ui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.builder.set_config(tiny_run_config)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()
    # close() waits 10 s for the engine; a child still importing torch on a loaded machine can take
    # longer to end (it is ended, never orphaned): wait for that before the dangling-thread check.
    qtbot.waitUntil(lambda: not w.worker.isRunning(), timeout=60_000)


@pytest.fixture
def subprocess_env(tmp_path):
    """Environment for running ``main.py`` in a child process, offscreen, from the repo root."""
    env = dict(os.environ)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env.setdefault("OMP_NUM_THREADS", "1")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg-config")  # never a user's settings
    env["GRADSIM_LOG_DIR"] = str(tmp_path / "logs")  # never a user's log folder
    env["GRADSIM_AUTOSAVE_DIR"] = str(tmp_path / "autosave")  # never a user's data folder
    return env, root, sys.executable


@pytest.fixture
def thread_engine(monkeypatch):
    """Windows made after this run their engine in the worker thread (the fallback), not a child process.

    For the few tests that must patch engine code (a step that fails, a replication
    defined in the test): a patch in this process cannot reach a child. List it
    before ``window`` so the window is made after it.
    """
    monkeypatch.setenv("GRADSIM_ENGINE", "thread")


def engine_facts(qtbot, window, timeout_ms: int = 60_000) -> dict:
    """The live Trainer's state (tests/ui/engine_probes.trainer_facts), asked of the engine as a task."""
    from tests.ui.engine_probes import trainer_facts

    got: list = []
    window.worker.submit(trainer_facts, got.append, got.append, on_trainer=True)
    qtbot.waitUntil(lambda: bool(got), timeout=timeout_ms)
    if isinstance(got[0], BaseException):
        raise got[0]
    return got[0]


def wait_engine_settled(qtbot, window, timeout_ms: int = 60_000) -> dict:
    """Wait until the engine is idle and the mirror holds all it did; returns the trainer's facts."""
    facts: dict = {}

    def settled() -> bool:
        if window.worker.is_running() or window.mirror is None:
            return False
        facts.update(engine_facts(qtbot, window, timeout_ms))
        return window.mirror.steps_run == facts["step_index"] and not window.worker.is_running()

    qtbot.waitUntil(settled, timeout=timeout_ms)
    return facts

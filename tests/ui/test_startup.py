"""Start-up: what is not visible is not built, and the first paint needs neither torch nor pyqtgraph.

(No wall-clock limit here: benchmarks/startup.py measures launch-to-first-paint.)
"""
from __future__ import annotations

import subprocess

import pytest


def test_hidden_docks_and_plots_are_built_on_demand(qtbot):
    from ui.main_window import MainWindow

    w = MainWindow(persist=False)
    qtbot.addWidget(w)
    assert not w.plots.built
    assert w.teaching._exercise is None and w.teaching._jacobian is None and w.learned.dock is None
    with qtbot.waitSignal(w.first_painted, timeout=20000):
        w.show()
    qtbot.waitUntil(lambda: w.plots.built, timeout=20000)  # right after the first paint
    assert w.teaching._exercise is None  # still closed: still not built
    w.teaching.exercise_action.trigger()
    assert w.teaching.exercise_dock.isVisible()
    w.close()


def test_the_window_module_imports_neither_torch_nor_pyqtgraph(subprocess_env):
    env, root, python = subprocess_env
    code = "import sys, ui.main_window; print('torch' in sys.modules, 'pyqtgraph' in sys.modules)"
    out = subprocess.run([python, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


#: Opens every panel the View menu lists (a hidden one is shown, a shown one hidden and shown again),
#: then trains a few steps with them open until "What the network learns" has drawn its grid.
_OPEN_EVERY_PANEL = r"""
import sys, time
from PySide6.QtWidgets import QApplication
app = QApplication([])
from ui.main_window import MainWindow
from ui.run_controller import RunState
w = MainWindow(persist=False)
w.show()

def wait(cond, what):
    deadline = time.monotonic() + 120  # a stuck child, not a speed limit
    while not cond():
        if time.monotonic() > deadline:
            sys.exit("timed out waiting for " + what)
        app.processEvents()
        time.sleep(0.01)

wait(lambda: w.plots.built, "the first paint")
opened = []
for a in w.window_actions.view_menu.actions():
    if a.menu() is not None or a.isSeparator() or not a.isCheckable():
        continue
    if a.isChecked():
        a.trigger()
        app.processEvents()
    a.trigger()
    app.processEvents()
    opened.append((a.text(), 'torch' in sys.modules))
w.builder.set_config(w.builder.config().with_changes(steps=5))
assert w.start_run()
wait(lambda: w.state is RunState.FINISHED, "the run to finish")
wait(lambda: w.learned.panel.grid is not None, "the learned grid")
opened.append(("after a run", 'torch' in sys.modules))
print(repr(opened), flush=True)
w.guard.enabled = False  # nobody is there to answer "save first?"
w.close()
w.deleteLater()
app.processEvents()
"""


def test_no_panel_of_the_view_menu_imports_torch_into_the_window(subprocess_env):
    """Training runs in the engine's process: opening a panel must not load torch (seconds, 200 MB) here."""
    import ast

    env, root, python = subprocess_env
    out = subprocess.run([python, "-c", _OPEN_EVERY_PANEL], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    opened = ast.literal_eval(out.stdout.strip().splitlines()[-1])
    names = [name for name, _ in opened]
    assert "What the network &learns" in names and "&Jacobian spectrum" in names and "&Exercise" in names
    assert [name for name, torch_loaded in opened if torch_loaded] == []


#: A user's script with no ``if __name__ == "__main__":`` guard: it opens the window, trains five
#: steps and asks the engine what it imported. Every execution of the script appends a line to RUNS.
_NO_GUARD = r"""
import os, sys, time
with open(os.environ["GRADSIM_TEST_RUNS"], "a") as f:
    f.write(__name__ + "\n")
from PySide6.QtWidgets import QApplication
app = QApplication.instance() or QApplication([])
from ui.main_window import MainWindow
from ui.run_controller import RunState
from tests.ui.engine_probes import engine_modules
w = MainWindow(persist=False)
w.show()

def wait(cond, what):
    deadline = time.monotonic() + 120  # a stuck child, not a speed limit
    while not cond():
        if time.monotonic() > deadline:
            sys.exit("timed out waiting for " + what)
        app.processEvents()
        time.sleep(0.01)

wait(lambda: w.worker.ready, "the engine")
w.builder.set_config(w.builder.config().with_changes(steps=5))
assert w.start_run()
wait(lambda: w.state is RunState.FINISHED, "the run to finish")
got = []
w.worker.submit(engine_modules, got.append, got.append)
wait(lambda: got, "the engine's answer")
print(repr({"mode": w.worker.engine_mode, "other_pid": w.worker.engine_pid != os.getpid(),
            "window_torch": "torch" in sys.modules, "steps": w.mirror.steps_run, "engine": got[0]}), flush=True)
w.guard.enabled = False  # nobody is there to answer "save first?"
w.close()
w.deleteLater()
app.processEvents()
"""


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_a_script_without_a_main_guard_still_trains_in_a_child_process(subprocess_env, tmp_path, method):
    """The engine child must not run the caller's script again (multiprocessing does that to find
    targets in ``__main__``): it would build a window there, and without a guard the engine could not start."""
    import ast

    env, root, python = subprocess_env
    script = tmp_path / "my_lesson.py"
    script.write_text(_NO_GUARD)
    runs = tmp_path / "runs.txt"
    env = dict(env, GRADSIM_TEST_RUNS=str(runs), GRADSIM_START_METHOD=method)
    out = subprocess.run([python, str(script)], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    facts = ast.literal_eval(out.stdout.strip().splitlines()[-1])
    assert facts["mode"] == "process" and facts["other_pid"] and not facts["window_torch"] and facts["steps"] == 5
    engine = facts["engine"]
    assert engine["torch"] and not engine["pyside6"]
    assert engine["main_file"] != str(script)
    assert runs.read_text().split() == ["__main__"]  # the script ran once: in the window's process
    assert "could not start as a separate process" not in out.stderr

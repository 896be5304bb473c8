"""Start-up: what is not visible is not built, and the first paint needs neither torch nor pyqtgraph.

(No wall-clock limit here: benchmarks/startup.py measures launch-to-first-paint.)
"""
from __future__ import annotations

import subprocess


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

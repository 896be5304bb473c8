"""The packaged app leaves PySide6.QtOpenGL out (packaging/hooks/rthook_no_qtopengl.py).

That is only sound while the window never draws with OpenGL; these tests pin both
halves: the window's plots use plain raster viewports, and with the stand-in the
hook registers, pyqtgraph still imports and builds plots, while any real use of
QtOpenGL gets the hook's sentence instead of a crash.
"""
import subprocess
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtOpenGLWidgets import QOpenGLWidget
from PySide6.QtWidgets import QGraphicsView

HOOK = Path(__file__).resolve().parents[2] / "packaging" / "hooks" / "rthook_no_qtopengl.py"


def test_the_window_never_draws_with_opengl(window):
    window.plots.ensure_built()
    assert pg.getConfigOption("useOpenGL") is False
    views = window.findChildren(QGraphicsView)
    assert len(views) >= 6, "the window's plots are graphics views"
    for view in views:
        assert not isinstance(view.viewport(), QOpenGLWidget), f"{view} draws through OpenGL"


def test_pyqtgraph_works_with_the_stand_in_and_explains_it(tmp_path, subprocess_env):
    env, _, python = subprocess_env
    script = f"""
import runpy, sys
runpy.run_path({str(HOOK)!r})
from PySide6.QtWidgets import QApplication
import pyqtgraph as pg
app = QApplication([])
w = pg.PlotWidget(); w.plot([1, 2, 3]); w.resize(200, 100); w.grab()
import PySide6.QtOpenGL as gl
assert type(gl).__name__ == "_LeftOut", type(gl)
try:
    gl.QOpenGLBuffer
except ImportError as e:
    print("MESSAGE:", e)
else:
    raise SystemExit("no ImportError")
"""
    out = subprocess.run([python, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "MESSAGE: PySide6.QtOpenGL is not part of this GradSim build" in out.stdout
    assert "QtOpenGL.QOpenGLBuffer" in out.stdout

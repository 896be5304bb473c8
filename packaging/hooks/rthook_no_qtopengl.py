"""Runtime hook: the frozen app ships without PySide6.QtOpenGL (8.9 MB of bindings).

Why: PySide6.QtOpenGL binds Qt's OpenGL function tables (QOpenGLFunctions_1_0 ...
_4_5_Core, buffers, shaders): 8.9 MB, the largest Python binding in the bundle.
GradSim never draws with OpenGL (pyqtgraph's ``useOpenGL`` stays off; a test in
tests/ui checks it), yet pyqtgraph imports the module by name when it is imported
(``pyqtgraph/Qt/OpenGLHelpers.py``: ``importlib.import_module(f"{QT_LIB}.QtOpenGL")``)
and only touches its attributes once an OpenGL viewport initialises. So the spec
leaves the binding out and this hook, run before the app, registers a module in
its place that imports fine and answers any attribute with an ImportError naming
what is missing: if OpenGL drawing were ever switched on, the user would get that
sentence, not a crash inside Qt.
"""
import sys
import types

_WHY = ("PySide6.QtOpenGL is not part of this GradSim build (the app draws its plots "
        "without OpenGL: pyqtgraph's useOpenGL must stay off)")


class _LeftOut(types.ModuleType):
    def __getattr__(self, name: str):
        if name.startswith("__"):  # import machinery and introspection: plain module answers
            raise AttributeError(name)
        raise ImportError(f"{_WHY}; asked for QtOpenGL.{name}")


if "PySide6.QtOpenGL" not in sys.modules:
    sys.modules["PySide6.QtOpenGL"] = _LeftOut("PySide6.QtOpenGL", _WHY)

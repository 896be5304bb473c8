"""The engine never imports Qt, pyqtgraph or ui (docs/architecture.md#folders-and-the-order-of-imports)."""
import ast
import pathlib
import subprocess
import sys

ENGINE = pathlib.Path(__file__).resolve().parents[2] / "gradsim"
FORBIDDEN = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "ui", "shiboken6")


def test_no_forbidden_import_in_source():
    bad = []
    for f in ENGINE.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            bad += [f"{f.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert bad == []


def test_engine_runs_with_no_qt_loaded():
    code = (
        "import sys\n"
        "from gradsim.config import RunConfig\n"
        "from gradsim.train.trainer import Trainer\n"
        "import gradsim.cli.main, gradsim.teaching.presets, gradsim.session.io\n"
        "Trainer(RunConfig(depth=2, width=4, steps=2)).run()\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in %r]\n"
        "assert not bad, bad\n" % (FORBIDDEN,)
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ENGINE.parent)

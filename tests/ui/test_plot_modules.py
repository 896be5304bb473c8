"""The plots' value code (clamping, binning, colours, layer picks) loads without Qt.

Why it matters: these modules decide what every plot draws, and they are
tested as plain numpy; a Qt import creeping in would tie them to a display.
The check runs in a fresh interpreter because this test process already has
Qt loaded (tests/ui/conftest.py).
"""
from __future__ import annotations

import subprocess
import sys

import pytest

QT_FREE = ("ui.plots.decimate", "ui.plots.style", "ui.plots.layer_choice")


@pytest.mark.parametrize("module", QT_FREE)
def test_value_modules_import_no_qt(module: str) -> None:
    code = (
        "import importlib, sys\n"
        f"importlib.import_module({module!r})\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} loads Qt: {out.stdout.strip()}"

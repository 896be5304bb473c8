"""Launch-to-first-paint of GradSim's window, next to a bare Qt window's, measured alternately.

    .venv/bin/python benchmarks/first_paint.py [--runs 5]

Prints each run and the medians: GradSim (``python main.py``, which reports its
first paint through GRADSIM_REPORT_FIRST_PAINT), a bare PySide6 QMainWindow
started the same way (the floor: Python + Qt alone), and their ratio. The two
alternate so a busy shared machine slows both alike. Target: the
window paints within 1.0 s of launch; torch and pyqtgraph must not be
imported by then (the line says whether they were).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BARE = r"""
import sys, time
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication(sys.argv)
w = QMainWindow(); w.resize(1500, 940)
class F(QObject):
    def eventFilter(self, o, e):
        if e.type() == QEvent.Type.Paint:
            print(f"first-paint {time.time():.6f} torch={'torch' in sys.modules} pyqtgraph={'pyqtgraph' in sys.modules}", flush=True)
            app.quit()
        return False
f = F(); w.installEventFilter(f); w.show(); app.exec()
"""


def first_paint(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.time()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = ""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("first-paint"):
            break
    proc.wait(60)
    parts = line.split()
    if len(parts) < 2:
        raise SystemExit(f"{cmd[-1]!r} did not report a first paint")
    return float(parts[1]) - t0, " ".join(parts[2:])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    gradsim, bare = [], []
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, GRADSIM_REPORT_FIRST_PAINT="1", XDG_CONFIG_HOME=home, GRADSIM_LOG_DIR=str(Path(home) / "logs"))
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
        for i in range(args.runs):
            g, g_note = first_paint([sys.executable, "main.py"], env)
            b, _ = first_paint([sys.executable, "-c", BARE], env)
            gradsim.append(g)
            bare.append(b)
            print(f"run {i + 1}: GradSim {g:.3f} s ({g_note}), bare Qt window {b:.3f} s", flush=True)
    mg, mb = statistics.median(gradsim), statistics.median(bare)
    print(f"median launch-to-first-paint: GradSim {mg:.3f} s, bare Qt window {mb:.3f} s, ratio {mg / mb:.2f}; "
          f"GradSim's own share {mg - mb:.3f} s; target 1.0 s: {'met' if mg < 1.0 else 'NOT met'} on this machine now")
    return 0


if __name__ == "__main__":
    sys.exit(main())

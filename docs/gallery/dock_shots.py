"""Screenshots of the window with one dock open, at the sizes a classroom uses.

    .venv/bin/python docs/gallery/dock_shots.py --out /tmp/shots            # 1280x720 and 1920x1080
    .venv/bin/python docs/gallery/dock_shots.py --size 1280x720 --dock jacobian --preset exploding-relu

Why: a layout that reads at 1600x1000 can clip titles, axis labels and legends
at 1280x720 once a dock takes a third of the width; these pictures are the
check (look at them) before a layout change is merged.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "1")

DOCKS = ("none", "exercise", "learned", "jacobian", "builder")


def take(app, preset: str, dock: str, size: tuple[int, int], steps: int, out: Path, presenting: bool = False) -> Path:
    from ui.app import _dispose, _run_steps, wait_for
    from ui.main_window import MainWindow

    window = MainWindow(persist=False)
    try:
        window.resize(*size)
        window.show()
        window.builder.apply_preset(preset)
        if dock == "exercise":
            ex = window.teaching.exercise.exercises()[0]
            window.teaching.open_exercise(ex.id)
        elif dock == "learned":
            window.learned.show()
        elif dock == "jacobian":
            window.teaching.jacobian_action.setChecked(True)
        if presenting:
            window.presentation.set_on(True)
            window.resize(*size)
        if dock == "builder":  # before any run: the builder as a student first sees it
            window.refresh_plots_now()
            wait_for(app, lambda: False, 0.5)
            path = out / f"{preset}-builder-{size[0]}x{size[1]}.png"
            window.grab().save(str(path), "PNG")
            return path
        error = _run_steps(app, window, steps)
        if error:
            raise RuntimeError(f"{preset}/{dock}: {error}")
        if dock == "learned":
            panel = window.learned.panel
            window.learned.request()
            wait_for(app, lambda: panel.grid is not None and panel.grid.step >= window.mirror.steps_run, 120)
        elif dock == "jacobian":
            window.teaching.jacobian.compute_requested.emit()
            wait_for(app, lambda: window.teaching.jacobian.values.size > 0, 60)
        elif dock == "exercise":
            window.teaching.exercise.update_from(window.mirror)
        window.refresh_plots_now()
        wait_for(app, lambda: False, 0.3)
        tag = "-present" if presenting else ""
        path = out / f"{preset}-{dock}-{size[0]}x{size[1]}{tag}.png"
        if not window.grab().save(str(path), "PNG"):
            raise OSError(f"cannot write {path}")
        return path
    finally:
        _dispose(window)


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", nargs="*", default=["vanishing-sigmoid"])
    p.add_argument("--dock", nargs="*", default=list(DOCKS), choices=DOCKS)
    p.add_argument("--size", nargs="*", default=["1280x720", "1920x1080"])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--present", action="store_true", help="in presentation mode")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from ui.app import _make_app

    app = _make_app()
    for preset in args.preset:
        for size in args.size:
            w, _, h = size.partition("x")
            for dock in args.dock:
                print(take(app, preset, dock, (int(w), int(h)), args.steps, out, args.present), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

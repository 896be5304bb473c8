"""Regenerate docs/gallery/: one screenshot per preset at its telling moment, and a fork comparison.

    .venv/bin/python docs/gallery/make_gallery.py            # every picture, 1600x1000
    .venv/bin/python docs/gallery/make_gallery.py --only vanishing-sigmoid --size 1280x720 --out /tmp/shots

It drives the real window (the real worker thread, the real plots) headless
with QT_QPA_PLATFORM=offscreen, exactly as a user's clicks would, so a picture
here is what a student sees. Runs are deterministic (seeded), so the pictures
change only when the app does.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "1")


@dataclass(frozen=True)
class Shot:
    name: str
    preset: str
    steps: int
    caption: str
    metric: str = "act_grad_norm"
    setup: Optional[Callable] = None  # window -> error message or None, run after the steps
    learned: bool = False  # open "What the network learns" too


def _fork_batchnorm(app, window) -> Optional[str]:
    """Fork the paused vanishing run; batch norm on in branch B; 500 more steps of each."""
    from ui.app import wait_for

    fork = getattr(window, "fork", None)
    if fork is None:
        return "this build has no fork"
    if not fork.fork():
        return "fork refused: " + window.last_error
    if not wait_for(app, lambda: fork.forked, 60):
        return "the fork did not complete"
    from gradsim.commands import SetBatchNorm

    fork.send_to_branch(1, SetBatchNorm(True))
    target = window.mirror.steps_run + 500
    window.run.step(500)
    if not wait_for(app, lambda: all(m.steps_run >= target for m in fork.mirrors()), 600):
        return "the branches did not take 500 steps"
    window.plots.heatmap.set_branch("ratio")  # where the branches differ, layer by layer
    window.refresh_plots_now()
    wait_for(app, lambda: False, 0.2)
    return None



def _fork_pre_ln(app, window) -> Optional[str]:
    """Fork the Post-LN run at step 0 (the same weights); layer norms moved before each sublayer in branch B."""
    from gradsim.commands import SetNormPosition
    from ui.app import wait_for

    fork = getattr(window, "fork", None)
    if fork is None or not fork.fork():
        return "fork refused: " + window.last_error
    if not wait_for(app, lambda: fork.forked, 60):
        return "the fork did not complete"
    fork.send_to_branch(1, SetNormPosition("pre"))
    target = window.mirror.steps_run + 100
    window.run.step(100)
    if not wait_for(app, lambda: all(m.steps_run >= target for m in fork.mirrors()), 600):
        return "the branches did not take 100 steps"
    window.plots.heatmap.set_branch("ratio")  # log10 B/A, block by block
    window.plots.depth_profile.show_step(0)  # the profiles at the fork: the same weights, the norms moved
    window.refresh_plots_now()
    wait_for(app, lambda: False, 0.2)
    return None

SHOTS = (
    Shot("vanishing-sigmoid", "vanishing-sigmoid", 400,
         "20 sigmoid layers, Xavier init: the backprop signal ||dL/dz|| shrinks about 4x per layer, "
         "so the heatmap goes dark toward layer 1 and the loss barely moves."),
    Shot("batchnorm-rescue", "batchnorm-rescue", 700,
         "The same net with batch norm switched on at step 300: the early layers light up and the loss falls."),
    Shot("exploding-relu", "exploding-relu", 150,
         "ReLU with weights at std 0.5: the backprop signal grows ~2.8x per layer toward the input (bright bottom rows, "
         "a depth profile falling toward the output) and the loss starts in the thousands."),
    Shot("clipping-rescue", "clipping-rescue", 400,
         "Oversized init and a large learning rate, but the gradient norm is clipped at 1: the run stays finite."),
    Shot("healthy-relu-he", "healthy-relu-he", 500,
         "ReLU with He init: the backprop signal keeps its size across depth and every layer learns; "
         "the decision boundary (right) has formed around the classes.", learned=True),
    Shot("deep-tanh-xavier", "deep-tanh-xavier", 500,
         "30 tanh layers with Xavier init near the edge of chaos: the signal decays slowly and the net still trains."),
    Shot("fork-batchnorm", "vanishing-sigmoid", 300,
         "Fork and compare: the vanishing run paused at step 300 and forked; batch norm switched on in branch B only. "
         "Both branches drawn on the same axes from one starting point (B dashed); the heatmap shows log10 B/A: "
         "red where B's backprop signal is larger; after the fork the input-side layers of B get over a million times more.", setup=_fork_batchnorm),
    # recurrent presets: the heatmap is time step x training step (t = 1 = the first input, at the bottom)
    Shot("vanishing-rnn", "vanishing-rnn", 300,
         "A tanh RNN with W_hh at spectral radius ~0.7 over 60 steps: ||dL/dh_t|| falls about 10^8-fold from the last "
         "step to the first (the bottom rows go dark) and the first token's sign stays at chance."),
    Shot("exploding-rnn", "exploding-rnn", 100,
         "Spectral radius ~2.5: at step 0 the signal grows back through time; the first huge SGD updates blow W_hh up "
         "(spectral radius in the readout: thousands), tanh saturates and the loss climbs until it diverges."),
    Shot("clipping-rescue-rnn", "clipping-rescue-rnn", 300,
         "The same start with the gradient norm clipped at 1: no blow-up, the loss settles at the mean predictor's ~0.17; "
         "the readout under the toggles says how many steps were clipped."),
    Shot("irnn", "irnn", 600,
         "IRNN (ReLU, W_hh = identity): the signal through time stays within a small factor from t = 30 to t = 1 and the "
         "net learns to add the two marked numbers."),
    Shot("lstm-remembers", "lstm-remembers", 600,
         "An LSTM on the adding problem at T = 40: the loss falls far below the 0.17 of predicting the mean, which the "
         "tanh RNN of the same size does not leave; the depth profile (over time) has no theory line and says why."),
    # transformer presets: rows are the residual stream entering each block (block units on request)
    Shot("post-ln", "post-ln", 300,
         "An 8-block Post-LN transformer (layer norm after each residual add) learning to carry the last token's class to "
         "the first: ||dL/dx_l|| of the residual stream, block by block, over training.", metric="grad_norm"),
    Shot("pre-ln", "pre-ln", 300,
         "The same start with the norms before each sublayer (Pre-LN): the per-block weight gradients fall toward the "
         "output, where Post-LN's on the same weights stay level.", metric="grad_norm"),
    Shot("fork-pre-ln", "post-ln", 0,
         "Fork and compare: the Post-LN run forked at step 0 and its layer norms moved before each sublayer in branch B "
         "(the same weights): at the fork B's per-block gradient profile (dashed) falls toward the output relative to "
         "A's; the heatmap's log10 B/A spans one decade.",
         metric="grad_norm", setup=_fork_pre_ln),
)


def take(app, shot: Shot, size: tuple[int, int], out: Path) -> Path:
    from ui.app import _dispose, _run_steps, wait_for
    from ui.main_window import MainWindow

    window = MainWindow(persist=False)
    try:
        window.resize(*size)
        window.show()
        window.builder.apply_preset(shot.preset)
        window.plots.set_metric(shot.metric)
        if shot.learned:
            window.learned.show()
        error = _run_steps(app, window, shot.steps)
        if error is None and shot.setup is not None:
            error = shot.setup(app, window)
        if error is None and shot.learned:
            panel = window.learned.panel
            window.learned.request()
            if not wait_for(app, lambda: panel.grid is not None and panel.grid.step >= window.mirror.steps_run, 120):
                error = "the decision boundary did not arrive"
        if error:
            raise RuntimeError(f"{shot.name}: {error}")
        window.refresh_plots_now()
        wait_for(app, lambda: False, 0.3)
        path = out / f"{shot.name}.png"
        if not window.grab().save(str(path), "PNG"):
            raise OSError(f"cannot write {path}")
        return path
    finally:
        _dispose(window)


def write_index(out: Path, shots: tuple[Shot, ...]) -> None:
    lines = ["# Gallery", "", "Screenshots of the window at each preset's telling moment, 1600x1000, regenerated by",
             "`.venv/bin/python docs/gallery/make_gallery.py` (deterministic runs; the heatmap and curves show",
             "||dL/dz||, the backprop signal).", ""]
    for s in shots:
        lines += [f"## {s.name}", "", s.caption, "", f"![{s.name}]({s.name}.png)", ""]
    (out / "README.md").write_text("\n".join(lines))


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", help="names of shots to take (default: all)")
    p.add_argument("--size", default="1600x1000", help="window size WxH (default 1600x1000)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent), help="folder for the PNGs")
    args = p.parse_args(argv)
    w, _, h = args.size.partition("x")
    size = (int(w), int(h))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shots = tuple(s for s in SHOTS if not args.only or s.name in args.only)
    from ui.app import _make_app

    app = _make_app()
    for shot in shots:
        path = take(app, shot, size, out)
        print(f"{shot.name}: {path}", flush=True)
    if out == Path(__file__).resolve().parent:
        write_index(out, SHOTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())

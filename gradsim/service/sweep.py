"""One run of ``gradsim sweep`` as a task, and the client-side writing of its files.

The task trains and exports into a private temporary folder on whichever
machine runs it, then returns the files as bytes with the summary row; the
client writes them under ``--out``. So a Dask worker needs no access to the
client's disk, and local processes and cluster workers share one code path.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from ..commands import Scheduled
from ..config import RunConfig
from ..metrics import LAYER_INDEX

SUMMARY_HEADER = (
    "run", "folder", "dataset", "depth", "width", "activation", "init", "batchnorm", "clip", "optimizer", "lr", "steps", "seed",
    "final_loss", "final_accuracy", "test_accuracy",
    "grad_norm_first_step0", "grad_norm_last_step0", "grad_norm_first_end", "grad_norm_last_end",
    "act_grad_norm_first_step0", "act_grad_norm_last_step0", "act_grad_norm_first_end", "act_grad_norm_last_end",
    "diverged_at",
)


def run_one(cfg: RunConfig, schedule: Sequence[Scheduled], out: Path, label: str = "", progress: Optional[Callable[[int, float], None]] = None):
    """Train one config headless and export it to ``out``; returns the Trainer (``run`` and each sweep run)."""
    import torch

    from ..session.io import export_session
    from ..train.trainer import Trainer

    torch.set_num_threads(1)
    trainer = Trainer(cfg, schedule, label=label)
    report_first = bool(os.environ.get("GRADSIM_REPORT_FIRST_STEP"))  # benchmarks/startup.py reads it

    def cb(rec: Any) -> None:
        if report_first and rec.step == 0:
            print(f"gradsim: first step done at {time.time():.6f}", file=sys.stderr, flush=True)
        if progress is not None:
            progress(rec.step + 1, rec.scalar("loss"))

    trainer.run(callback=cb if (progress is not None or report_first) else None)
    trainer.session.meta["test_accuracy"] = trainer.evaluate()
    export_session(trainer.session, out)
    return trainer


def sweep_task(job: tuple[int, dict[str, Any], list[str], str]) -> tuple[dict[str, Any], dict[str, bytes]]:
    """(summary row, {file name: bytes} of the session export) for one config of the grid."""
    from ..commands import parse_event

    index, cfg_dict, events, folder_name = job
    cfg = RunConfig.from_dict(cfg_dict)
    tmp = Path(tempfile.mkdtemp(prefix="gradsim-sweep-"))
    try:
        out = tmp / "session"
        trainer = run_one(cfg, tuple(parse_event(e) for e in events), out, label=f"sweep run {index}")
        files = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    s = trainer.session
    # single rows (rows_after(-1) copied the whole store); latest(): the final step even when thinned
    first, last = s.first(), s.latest()
    gi, ai = LAYER_INDEX["grad_norm"], LAYER_INDEX["act_grad_norm"]
    g0, a0 = first.layers[:, gi], first.layers[:, ai]
    row = {
        "run": index, "folder": folder_name, "dataset": cfg.dataset, "depth": cfg.depth, "width": cfg.width,
        "activation": cfg.activation, "init": cfg.init, "batchnorm": int(cfg.batchnorm),
        "clip": "none" if cfg.clip_mode == "none" else f"{cfg.clip_mode}:{cfg.clip_threshold:g}",
        "optimizer": cfg.optimizer, "lr": repr(cfg.lr), "steps": s.steps_run, "seed": cfg.seed,
        "final_loss": repr(last.scalar("loss")), "final_accuracy": repr(last.scalar("accuracy")),
        "test_accuracy": repr(s.meta.get("test_accuracy", float("nan"))),
        "grad_norm_first_step0": "%.9g" % g0[0], "grad_norm_last_step0": "%.9g" % g0[-1],
        "grad_norm_first_end": "%.9g" % last.layers[0, gi], "grad_norm_last_end": "%.9g" % last.layers[-1, gi],
        "act_grad_norm_first_step0": "%.9g" % a0[0], "act_grad_norm_last_step0": "%.9g" % a0[-1],
        "act_grad_norm_first_end": "%.9g" % last.layers[0, ai], "act_grad_norm_last_end": "%.9g" % last.layers[-1, ai],
        "diverged_at": "" if trainer.diverged_at is None else trainer.diverged_at,
    }
    return row, files



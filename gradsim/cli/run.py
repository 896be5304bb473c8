"""``gradsim run``: train one network, export its session and print a summary a student can read."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, cast

from ..commands import Scheduled, parse_event
from ..models.family import unit_rows
from ..service.sweep import run_one
from .common import CliError, add_overwrite_flag, refuse_existing_file, refuse_existing_folder
from .config_flags import FLAG_TO_FIELD, add_config_flags, apply_changes, base_config, overrides

if TYPE_CHECKING:
    from ..train.recurrent import RecurrentTrainer
    from ..train.trainer import Trainer
    from .common import SubParsers


def add_parser(sub: SubParsers) -> argparse.ArgumentParser:
    p = sub.add_parser("run", help="train one network and export its session")
    add_config_flags(p)
    p.add_argument("--resume", metavar="CHECKPOINT", help="continue the run saved in CHECKPOINT bit for bit (--steps: its new total)")
    p.add_argument("--checkpoint", metavar="FILE", help="at the end, save a checkpoint to FILE (a new file) to --resume from later")
    add_overwrite_flag(p, "the session files in a non-empty --out folder (or the --out .zip)")
    return p


def progress_bar(total: int, stream: Any) -> Callable[[int, float], None]:
    """A one-line progress bar when ``stream`` is a terminal; nothing otherwise."""
    if not getattr(stream, "isatty", lambda: False)():
        return lambda step, loss: None
    every = max(1, total // 200)

    def show(step: int, loss: float) -> None:
        if step % every and step != total:
            return
        frac = step / total
        bar = "#" * int(30 * frac)
        stream.write(f"\r[{bar:<30}] {step}/{total} loss {loss:.4g}")
        if step == total:
            stream.write("\n")
        stream.flush()

    return show


def _fmt(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else str(x)


def summary(trainer: Trainer) -> str:
    """One paragraph a student can read: final loss/accuracy, gradient flow, divergence."""
    if trainer.config.recurrent:
        from ..train.recurrent import recurrent_summary

        return recurrent_summary(cast("RecurrentTrainer", trainer))
    s = trainer.session
    last = s.latest()  # the run's final step: the store's last row may be older once it thinned
    first = s.first()  # one row; rows_after(-1) copied the whole store (up to 256 MB)
    g0 = first.layer_metric("act_grad_norm") if first is not None else None
    parts = [f"Ran {s.steps_run} steps of a depth-{trainer.config.depth} {trainer.net.activations[0] if trainer.net.activations else ''} net ({trainer.config.init} init) on {trainer.config.dataset}."]
    if last is not None:
        parts.append(
            f"Final loss {_fmt(last.scalar('loss'))}, batch accuracy {_fmt(last.scalar('accuracy'))}, "
            f"test accuracy {_fmt(trainer.session.meta.get('test_accuracy', float('nan')))}."
        )
        # the first and last units that have the metric (every unit of an MLP; a transformer's
        # streams have no weights, its parameter and head units no signal)
        gw_rows, ag_rows = unit_rows(s.units, "grad_norm"), unit_rows(s.units, "act_grad_norm")
        ag = last.layer_metric("act_grad_norm")
        gw = last.layer_metric("grad_norm")
        parts.append(
            f"Gradient norm ||dL/dW|| layer {gw_rows[0] + 1}: {_fmt(float(gw[gw_rows[0]]))}, layer {gw_rows[-1] + 1}: {_fmt(float(gw[gw_rows[-1]]))}; "
            f"backprop signal ||dL/dz|| layer {ag_rows[0] + 1}: {_fmt(float(ag[ag_rows[0]]))}, layer {ag_rows[-1] + 1}: {_fmt(float(ag[ag_rows[-1]]))}"
        )
        if g0 is not None and g0[-1] > 0 and g0[0] > 0 and math.isfinite(g0[0] / g0[-1]):
            ratio = float(g0[0] / g0[-1])
            kind = "vanishing toward the input" if ratio < 0.1 else "exploding toward the input" if ratio > 10 else "healthy"
            parts[-1] += f" (at step 0 layer 1 / last = {ratio:.3g}: {kind})."
        else:
            parts[-1] += "."
    parts.append(f"Diverged at step {trainer.diverged_at} (non-finite loss or gradient)." if trainer.diverged_at is not None else "No divergence.")
    return " ".join(parts)


def _checkpoint_target(args: argparse.Namespace) -> Optional[Path]:
    """--checkpoint FILE, refused before the run when the file exists (not after it)."""
    if args.checkpoint is None:
        return None
    path = Path(args.checkpoint)
    if path.exists():
        raise CliError(f"--checkpoint {path}: the file already exists; give a new file name")
    if not path.parent.is_dir():
        raise CliError(f"--checkpoint {path}: folder {path.parent} does not exist")
    return path


def _resume(args: argparse.Namespace) -> tuple[Trainer, tuple[Scheduled, ...]]:
    from ..session.io import export_session
    from ..train.checkpoint import load_checkpoint, scheduled_of, trainer_from_checkpoint

    extra = [f"--{flag.replace('_', '-')}" for flag in FLAG_TO_FIELD if flag not in ("steps",) and getattr(args, flag, None) is not None]
    extra += [f"--{name}" for name in ("preset", "config", "clip") if getattr(args, name, None) is not None]
    if args.event:
        extra.append("--event")
    if extra:
        raise CliError(f"--resume takes the config from the checkpoint; only --steps, --out and --checkpoint may go with it, not {', '.join(extra)}")
    data = load_checkpoint(args.resume)
    trainer = trainer_from_checkpoint(data, args.steps, where=f"checkpoint {args.resume}")
    schedule = tuple(scheduled_of(data))
    progress = progress_bar(trainer.config.steps, sys.stderr)
    trainer.run(callback=lambda rec: progress(rec.step + 1, rec.scalar("loss")))
    trainer.session.meta["test_accuracy"] = trainer.evaluate()
    export_session(trainer.session, Path(args.out))
    return trainer, schedule


def cmd(args: argparse.Namespace) -> int:
    ckpt = _checkpoint_target(args)
    out = Path(args.out)
    if out.suffix.lower() == ".zip":  # refused before the run, not after it
        refuse_existing_file("--out", out, args.overwrite)
    else:
        refuse_existing_folder("--out", out, args.overwrite)
    if args.resume is not None:
        trainer, schedule = _resume(args)
    else:
        base, events, label = base_config(args)
        cfg = apply_changes(base, overrides(args))
        schedule = tuple(events) + tuple(parse_event(e) for e in args.event)
        trainer = run_one(cfg, schedule, out, label, progress_bar(cfg.steps, sys.stderr))
    if ckpt is not None:
        from ..train.checkpoint import save_checkpoint

        save_checkpoint(trainer, ckpt)
    late = [e.text() for e in schedule if e.step >= trainer.session.steps_run]
    if late:  # e.g. a preset's event past a shorter --steps: say so rather than drop it silently
        print(f"gradsim: note: not applied, the run ended after {trainer.session.steps_run} steps: {', '.join(late)}", file=sys.stderr)
    print(summary(trainer))
    where = f"{out} (a .zip of " if out.suffix.lower() == ".zip" else f"{out}/ ("
    print(f"Session written to {where}session.json, steps.csv, layers.csv, events.csv)")
    if ckpt is not None:
        print(f"Checkpoint written to {ckpt}")
    return 0

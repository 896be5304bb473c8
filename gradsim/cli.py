"""Headless command line: ``python -m gradsim run | sweep | check`` (DESIGN.md section 5).

Every bad value gives one line naming it and exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import csv
import io
import itertools
import math
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from .commands import CommandError, Scheduled, parse_command, parse_event
from .config import ACTIVATIONS, DATASETS, INITS, OPTIMIZERS, ConfigError, RunConfig
from .exercises import ExerciseError
from .metrics import LAYER_INDEX

EXIT_BAD_INPUT = 2


class CliError(Exception):
    """Bad input: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + traceback
        raise CliError(message)


# ------------------------------------------------------------------ parsing
def _positive_float(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    return x


def _clip(text: str) -> tuple[str, float]:
    try:
        cmd = parse_command(f"clip={text}")
    except CommandError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return cmd.mode, cmd.threshold  # type: ignore[attr-defined]


def _add_config_flags(p: argparse.ArgumentParser, multi: bool = False) -> None:
    """The RunConfig flags; with ``multi`` each takes a comma-separated list (sweep)."""
    conv: Callable[[Any], Any] = (lambda f: (lambda s: [f(v) for v in s.split(",")])) if multi else (lambda f: f)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--preset", help="start from a preset in resources/presets")
    src.add_argument("--config", help="start from a config JSON, a preset file or an exported session.json (replays its events)")
    p.add_argument("--dataset", type=conv(str), help=f"one of {', '.join(DATASETS)}")
    p.add_argument("--depth", type=conv(int), help="hidden blocks, 1-200")
    p.add_argument("--width", type=conv(int), help="units per hidden layer, 1-2048")
    p.add_argument("--activation", type=conv(str), help=f"one of {', '.join(ACTIVATIONS)}")
    p.add_argument("--init", type=conv(str), help=f"one of {', '.join(INITS)}")
    p.add_argument("--init-std", type=conv(float), help="std of the 'normal' init")
    p.add_argument("--init-scale", type=conv(float), help="bound of the 'uniform' init")
    bn = p.add_mutually_exclusive_group()
    bn.add_argument("--batchnorm", dest="batchnorm", action="store_const", const=True, default=None)
    bn.add_argument("--no-batchnorm", dest="batchnorm", action="store_const", const=False)
    p.add_argument("--clip", type=conv(_clip), help="none, norm:X or value:X")
    p.add_argument("--optimizer", type=conv(str), help=f"one of {', '.join(OPTIMIZERS)}")
    p.add_argument("--lr", type=conv(_positive_float), help="learning rate > 0")
    p.add_argument("--batch-size", type=conv(int))
    p.add_argument("--steps", type=conv(int))
    p.add_argument("--seed", type=conv(int))
    p.add_argument("--stats-every", type=conv(int), help="sample activation statistics every K steps")
    p.add_argument("--event", action="append", default=[], metavar="STEP:KEY=VALUE", help="a command at a step, e.g. 200:batchnorm=on (repeatable)")
    p.add_argument("--max-memory", type=float, help="cap of the in-memory metric store in MB (default 256)")
    p.add_argument("--out", required=True, help="output folder")


_FLAG_TO_FIELD = {
    "dataset": "dataset",
    "depth": "depth",
    "width": "width",
    "activation": "activation",
    "init": "init",
    "init_std": "init_std",
    "init_scale": "init_scale",
    "batchnorm": "batchnorm",
    "optimizer": "optimizer",
    "lr": "lr",
    "batch_size": "batch_size",
    "steps": "steps",
    "seed": "seed",
    "stats_every": "stats_every",
    "max_memory": "max_memory_mb",
}


def _base(args: argparse.Namespace) -> tuple[RunConfig, tuple[Scheduled, ...], str]:
    from .presets import load_preset, parse_run_file

    if args.preset:
        p = load_preset(args.preset)
        return p.config, p.events, f"preset {p.name}"
    if args.config:
        cfg, events = parse_run_file(args.config)
        return cfg, events, f"config {args.config}"
    return RunConfig(), (), "default config"


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out = {field: getattr(args, flag) for flag, field in _FLAG_TO_FIELD.items() if getattr(args, flag, None) is not None}
    if getattr(args, "clip", None) is not None:
        out["clip"] = args.clip
    return out


def _apply(cfg: RunConfig, changes: dict[str, Any]) -> RunConfig:
    changes = dict(changes)
    clip = changes.pop("clip", None)
    if clip is not None:
        changes["clip_mode"], changes["clip_threshold"] = clip[0], (clip[1] if clip[0] != "none" else cfg.clip_threshold)
    return cfg.with_changes(**changes)


# ------------------------------------------------------------------ run
def _progress(total: int, stream: Any) -> Callable[[int, float], None]:
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


def run_one(cfg: RunConfig, schedule: Sequence[Scheduled], out: Path, label: str = "", progress: Optional[Callable[[int, float], None]] = None):
    """Train one config headless and export it; returns the Trainer."""
    import torch

    from .session_io import export_session
    from .trainer import Trainer

    torch.set_num_threads(1)
    trainer = Trainer(cfg, schedule, label=label)
    cb = (lambda rec: progress(rec.step + 1, rec.scalar("loss"))) if progress else None
    trainer.run(callback=cb)
    trainer.session.meta["test_accuracy"] = trainer.evaluate()
    export_session(trainer.session, out)
    return trainer


def _fmt(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else str(x)


def summary(trainer: Any) -> str:
    """One paragraph a student can read: final loss/accuracy, gradient flow, divergence."""
    s = trainer.session
    last = s.last()
    first = s.first()  # one row; rows_after(-1) copied the whole store (up to 256 MB)
    g0 = first.layer_metric("act_grad_norm") if first is not None else None
    parts = [f"Ran {s.steps_run} steps of a depth-{trainer.config.depth} {trainer.net.activations[0] if trainer.net.activations else ''} net ({trainer.config.init} init) on {trainer.config.dataset}."]
    if last is not None:
        parts.append(
            f"Final loss {_fmt(last.scalar('loss'))}, batch accuracy {_fmt(last.scalar('accuracy'))}, "
            f"test accuracy {_fmt(trainer.session.meta.get('test_accuracy', float('nan')))}."
        )
        ag = last.layer_metric("act_grad_norm")
        gw = last.layer_metric("grad_norm")
        parts.append(
            f"Gradient norm ||dL/dW|| layer 1: {_fmt(float(gw[0]))}, layer {len(gw)}: {_fmt(float(gw[-1]))}; "
            f"backprop signal ||dL/dz|| layer 1: {_fmt(float(ag[0]))}, layer {len(ag)}: {_fmt(float(ag[-1]))}"
        )
        if g0 is not None and g0[-1] > 0 and g0[0] > 0 and math.isfinite(g0[0] / g0[-1]):
            ratio = float(g0[0] / g0[-1])
            kind = "vanishing toward the input" if ratio < 0.1 else "exploding toward the input" if ratio > 10 else "healthy"
            parts[-1] += f" (at step 0 layer 1 / last = {ratio:.3g}: {kind})."
        else:
            parts[-1] += "."
    parts.append(f"Diverged at step {trainer.diverged_at} (non-finite loss or gradient)." if trainer.diverged_at is not None else "No divergence.")
    return " ".join(parts)


def cmd_run(args: argparse.Namespace) -> int:
    base, events, label = _base(args)
    cfg = _apply(base, _overrides(args))
    schedule = tuple(events) + tuple(parse_event(e) for e in args.event)
    out = Path(args.out)
    trainer = run_one(cfg, schedule, out, label, _progress(cfg.steps, sys.stderr))
    print(summary(trainer))
    print(f"Session written to {out}/ (session.json, steps.csv, layers.csv, events.csv)")
    return 0


# ---------------------------------------------------------------- sweep
SUMMARY_HEADER = (
    "run", "folder", "dataset", "depth", "width", "activation", "init", "batchnorm", "clip", "optimizer", "lr", "steps", "seed",
    "final_loss", "final_accuracy", "test_accuracy",
    "grad_norm_first_step0", "grad_norm_last_step0", "grad_norm_first_end", "grad_norm_last_end",
    "act_grad_norm_first_step0", "act_grad_norm_last_step0", "act_grad_norm_first_end", "act_grad_norm_last_end",
    "diverged_at",
)


def _sweep_job(job: tuple[int, dict[str, Any], list[str], str]) -> dict[str, Any]:
    """Runs in a worker process: one config, one session folder, one summary row."""
    index, cfg_dict, events, folder = job
    cfg = RunConfig.from_dict(cfg_dict)
    trainer = run_one(cfg, tuple(parse_event(e) for e in events), Path(folder), label=f"sweep run {index}")
    s = trainer.session
    first, last = s.first(), s.last()  # single rows: rows_after(-1) copied the whole store
    gi, ai = LAYER_INDEX["grad_norm"], LAYER_INDEX["act_grad_norm"]
    g0, a0 = first.layers[:, gi], first.layers[:, ai]
    row = {
        "run": index, "folder": Path(folder).name, "dataset": cfg.dataset, "depth": cfg.depth, "width": cfg.width,
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
    return row


def cmd_sweep(args: argparse.Namespace) -> int:
    from .session_io import write_atomic

    base, events, _ = _base(args)
    grid = _overrides(args)
    keys = list(grid)
    values = [v if isinstance(v, list) else [v] for v in (grid[k] for k in keys)]
    combos = [dict(zip(keys, combo)) for combo in itertools.product(*values)] if keys else [{}]
    configs = [_apply(base, c) for c in combos]  # validate every config before running any
    schedule = [s.text() for s in events] + [parse_event(e).text() for e in args.event]
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"--out {str(out)!r}: cannot create folder ({exc.strerror})") from None
    jobs = []
    for i, (cfg, combo) in enumerate(zip(configs, combos)):
        tag = "-".join(f"{k}{_tag(v)}" for k, v in combo.items()) or "base"
        jobs.append((i, cfg.to_dict(), schedule, str(out / f"run{i:03d}-{tag}")))
    n_jobs = max(1, min(args.jobs or os.cpu_count() or 1, len(jobs)))
    print(f"Sweep: {len(jobs)} runs in {n_jobs} processes -> {out}/", file=sys.stderr)
    rows: list[dict[str, Any]] = []
    if n_jobs == 1:
        for job in jobs:
            rows.append(_sweep_job(job))
            print(f"  done {len(rows)}/{len(jobs)}", file=sys.stderr)
    else:
        with ProcessPoolExecutor(max_workers=n_jobs) as pool:
            for row in pool.map(_sweep_job, jobs):
                rows.append(row)
                print(f"  done {len(rows)}/{len(jobs)}", file=sys.stderr)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=SUMMARY_HEADER, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    write_atomic(out / "summary.csv", buf.getvalue())
    print(f"Wrote {out / 'summary.csv'} ({len(rows)} runs)")
    return 0


def _tag(v: Any) -> str:
    if isinstance(v, tuple):
        return "-".join(str(x) for x in v)
    return str(v).replace("/", "_")


# ---------------------------------------------------------------- check
def cmd_check(args: argparse.Namespace) -> int:
    """Grade submissions from their session data (stored results are never trusted)."""
    from .exercises import grade, load_exercise
    from .session_io import write_atomic

    ex = load_exercise(args.exercise)
    grades = [grade(ex, s) for s in args.submissions]
    ids = [o.id for o in ex.objectives]
    name_w = max([10] + [len(Path(g.submission).name) for g in grades])
    print(f"{ex.title}  ({len(ids)} objectives: {', '.join(ids)})")
    print(f"{'submission':<{name_w}}  score  " + "  ".join(f"{i[:10]:<10}" for i in ids))
    for g in grades:
        marks = [("pass" if r.passed else "FAIL") for r in g.results] or ["-"] * len(ids)
        print(f"{Path(g.submission).name:<{name_w}}  {g.score:5.2f}  " + "  ".join(f"{m:<10}" for m in marks))
        for problem in ([g.error] if g.error else []) + g.config_problems:
            print(f"{'':<{name_w}}    ! {problem}")
        for r in g.results:
            if not r.passed and args.verbose:
                print(f"{'':<{name_w}}    {r.id}: {r.detail}")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["submission", "exercise", "score", "problems"] + ids)
    for g in grades:
        problems = "; ".join(([g.error] if g.error else []) + g.config_problems)
        w.writerow([g.submission, ex.id, f"{g.score:.4f}", problems] + ([int(r.passed) for r in g.results] or [""] * len(ids)))
    out = Path(args.csv)
    try:
        write_atomic(out, buf.getvalue())
    except OSError as exc:
        raise CliError(f"--csv {str(out)!r}: cannot write ({exc.strerror or exc})") from None
    print(f"Scores written to {out}")
    return 0


# ---------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="gradsim", description="GradSim headless engine: train, sweep and export sessions.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="train one network and export its session")
    _add_config_flags(run)
    sweep = sub.add_parser("sweep", help="train a grid of configs in parallel (comma-separated values)")
    _add_config_flags(sweep, multi=True)
    sweep.add_argument("--jobs", type=int, help="processes (default: CPU count)")
    check = sub.add_parser("check", help="grade exercise submissions from their session data")
    check.add_argument("exercise", help="the exercise .toml file")
    check.add_argument("submissions", nargs="+", help="submission folders (session files + submission.json)")
    check.add_argument("--csv", default="scores.csv", help="where to write the scores CSV (default: scores.csv)")
    check.add_argument("-v", "--verbose", action="store_true", help="say why each failed objective failed")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        commands = {"run": cmd_run, "sweep": cmd_sweep, "check": cmd_check}
        return commands[args.command](args)
    except (CliError, ConfigError, CommandError, ExerciseError) as exc:
        print(f"gradsim: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:  # ExportError and friends: the message already names the path
        print(f"gradsim: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("\ngradsim: interrupted", file=sys.stderr)
        return 130


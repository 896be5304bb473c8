"""Headless command line: ``python -m gradsim run | sweep | check | replicate`` (the README's headless-engine section).

Every bad value gives one line naming it and exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import csv
import io
import itertools
import logging
import math
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

from ..commands import CommandError, Scheduled, parse_command, parse_event
from ..config import ACTIVATIONS, DATASETS, INITS, OPTIMIZERS, SCALED_INITS, ConfigError, RunConfig
from ..teaching.exercises import ExerciseError
from ..service.executors import ExecutorError
from ..service.sweep import SUMMARY_HEADER, run_one  # SUMMARY_HEADER: re-exported for scripts
from ..replications.framework import SEEDS, ReplicationError, seed_list

log = logging.getLogger(__name__)

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


def _comma_list(f: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    """A sweep flag's converter: each comma-separated value through ``f``, and a bad
    one named (argparse's own message named the converter, "invalid <lambda> value")."""
    def convert(text: str) -> list[Any]:
        out = []
        for v in text.split(","):
            try:
                out.append(f(v.strip()))
            except ValueError:
                raise argparse.ArgumentTypeError(f"{v.strip()!r} in {text!r} is not a valid {f.__name__} (give comma-separated values)") from None
        return out

    return convert


def _add_config_flags(p: argparse.ArgumentParser, multi: bool = False) -> None:
    """The RunConfig flags; with ``multi`` each takes a comma-separated list (sweep)."""
    conv: Callable[[Any], Any] = _comma_list if multi else (lambda f: f)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--preset", help="start from a preset in resources/presets")
    src.add_argument("--config", help="start from a config JSON, a preset file or an exported session.json (replays its events)")
    p.add_argument("--dataset", type=conv(str), help=f"one of {', '.join(DATASETS)}")
    p.add_argument("--depth", type=conv(int), help="hidden blocks, 1-200")
    p.add_argument("--width", type=conv(int), help="units per hidden layer, 1-2048")
    p.add_argument("--activation", type=conv(str), help=f"one of {', '.join(ACTIVATIONS)}")
    p.add_argument("--init", type=conv(str), help=f"one of {', '.join(INITS)}; normal:STD and uniform:SCALE set the number too")
    p.add_argument("--init-std", type=conv(float), help="std of the 'normal' init")
    p.add_argument("--init-scale", type=conv(float), help="bound of the 'uniform' init")
    p.add_argument("--bias-std", type=conv(float), help="std of the initial biases (default 0: zero biases)")
    bn = p.add_mutually_exclusive_group()
    bn.add_argument("--batchnorm", dest="batchnorm", action="store_const", const=True, default=None)
    bn.add_argument("--no-batchnorm", dest="batchnorm", action="store_const", const=False)
    ln = p.add_mutually_exclusive_group()
    ln.add_argument("--layernorm", dest="layernorm", action="store_const", const=True, default=None, help="layer norm after each hidden Linear (per sample: works at batch size 1)")
    ln.add_argument("--no-layernorm", dest="layernorm", action="store_const", const=False)
    res = p.add_mutually_exclusive_group()
    res.add_argument("--residual", dest="residual", action="store_const", const=True, default=None, help="skip connections: hidden blocks 2..depth become z + alpha * Linear(act(z)) (pre-activation residual)")
    res.add_argument("--no-residual", dest="residual", action="store_const", const=False)
    p.add_argument("--residual-alpha", type=conv(_positive_float), help="alpha of the skip connections (default 1/sqrt(depth))")
    p.add_argument("--clip", type=conv(_clip), help="none, norm:X or value:X")
    p.add_argument("--optimizer", type=conv(str), help=f"one of {', '.join(OPTIMIZERS)}")
    p.add_argument("--lr", type=conv(_positive_float), help="learning rate > 0")
    p.add_argument("--batch-size", type=conv(int))
    p.add_argument("--steps", type=conv(int))
    p.add_argument("--seed", type=conv(int))
    p.add_argument("--stats-every", type=conv(int), help="sample activation statistics every K steps")
    _add_family_flags(p, conv)
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
    "bias_std": "bias_std",
    "batchnorm": "batchnorm",
    "layernorm": "layernorm",
    "residual": "residual",
    "residual_alpha": "residual_alpha",
    "optimizer": "optimizer",
    "lr": "lr",
    "batch_size": "batch_size",
    "steps": "steps",
    "seed": "seed",
    "stats_every": "stats_every",
    "max_memory": "max_memory_mb",
}


def _add_family_flags(p: argparse.ArgumentParser, conv: Callable[[Any], Any]) -> None:
    """The model-family flags (sequence models and transformers), mirroring their RunConfig fields."""
    p.add_argument("--model", type=conv(str), help="model family: mlp (default), rnn, lstm, gru or transformer")
    p.add_argument("--seq-len", type=conv(int), help="tokens per input sequence of sequence models, 2-1000")
    p.add_argument("--heads", type=conv(int), help="attention heads of a transformer (width must be divisible by it)")
    p.add_argument("--norm-position", type=conv(str), help="transformer layer norms: pre (before each sublayer) or post (after each residual add)")
    p.add_argument("--warmup-steps", type=conv(int), help="steps of linear learning-rate warm-up (default 0: none)")


_FLAG_TO_FIELD.update({f: f for f in ("model", "seq_len", "heads", "norm_position", "warmup_steps")})


def _base(args: argparse.Namespace) -> tuple[RunConfig, tuple[Scheduled, ...], str]:
    from ..teaching.presets import load_preset, parse_run_file

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
    init = changes.get("init")
    if isinstance(init, str) and ":" in init:
        # NAME:NUMBER, the spelling events, presets and the window use (normal:0.5):
        # the number goes to the field that scheme reads (init_std or init_scale).
        try:
            cmd = parse_command(f"init={init}")
        except CommandError as exc:
            raise ConfigError(f"--init {init}: {exc}", field="init") from None
        changes["init"] = cmd.scheme  # type: ignore[attr-defined]
        changes[SCALED_INITS[cmd.scheme]] = cmd.scale  # type: ignore[attr-defined]
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


def _fmt(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else str(x)


def summary(trainer: Any) -> str:
    """One paragraph a student can read: final loss/accuracy, gradient flow, divergence."""
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


def _resume(args: argparse.Namespace) -> tuple[Any, tuple[Scheduled, ...]]:
    from ..session.io import export_session
    from ..train.checkpoint import load_checkpoint, scheduled_of, trainer_from_checkpoint

    extra = [f"--{flag.replace('_', '-')}" for flag in _FLAG_TO_FIELD if flag not in ("steps",) and getattr(args, flag, None) is not None]
    extra += [f"--{name}" for name in ("preset", "config", "clip") if getattr(args, name, None) is not None]
    if args.event:
        extra.append("--event")
    if extra:
        raise CliError(f"--resume takes the config from the checkpoint; only --steps, --out and --checkpoint may go with it, not {', '.join(extra)}")
    data = load_checkpoint(args.resume)
    trainer = trainer_from_checkpoint(data, args.steps, where=f"checkpoint {args.resume}")
    schedule = tuple(scheduled_of(data))
    progress = _progress(trainer.config.steps, sys.stderr)
    trainer.run(callback=lambda rec: progress(rec.step + 1, rec.scalar("loss")))
    trainer.session.meta["test_accuracy"] = trainer.evaluate()
    export_session(trainer.session, Path(args.out))
    return trainer, schedule


def cmd_run(args: argparse.Namespace) -> int:
    ckpt = _checkpoint_target(args)
    out = Path(args.out)
    if args.resume is not None:
        trainer, schedule = _resume(args)
    else:
        base, events, label = _base(args)
        cfg = _apply(base, _overrides(args))
        schedule = tuple(events) + tuple(parse_event(e) for e in args.event)
        trainer = run_one(cfg, schedule, out, label, _progress(cfg.steps, sys.stderr))
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


# ---------------------------------------------------------------- sweep
def _run_tasks(pool: Any, fn: Callable[..., Any], tasks: list[tuple], what: str) -> Iterator[tuple[int, Any]]:
    """Submit every task; yield (index, result or the exception) as each finishes, with progress."""
    from concurrent.futures import as_completed

    futures = {pool.submit(fn, *t): i for i, t in enumerate(tasks)}
    for done, fut in enumerate(as_completed(futures), start=1):
        try:
            result: Any = fut.result()
        except Exception as exc:  # one failed task must not lose the others' results
            log.info("%s task %d failed", what, futures[fut], exc_info=True)
            result = exc
        print(f"  {what} {done}/{len(tasks)}", file=sys.stderr)
        yield futures[fut], result


def cmd_sweep(args: argparse.Namespace) -> int:
    from ..service.executors import describe, task_executor
    from ..session.io import write_atomic
    from ..session.io import write_folder
    from ..service.sweep import sweep_task

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
        jobs.append(((i, cfg.to_dict(), schedule, f"run{i:03d}-{tag}"),))
    rows: list[Optional[dict[str, Any]]] = [None] * len(jobs)
    failed: list[str] = []
    with task_executor(args.jobs, args.scheduler, len(jobs)) as pool:
        print(f"Sweep: {len(jobs)} runs {describe(args.jobs, args.scheduler, len(jobs))} -> {out}/", file=sys.stderr)
        for i, result in _run_tasks(pool, sweep_task, jobs, "done"):
            folder = jobs[i][0][3]
            if isinstance(result, BaseException):
                failed.append(f"run {i} ({folder}): {result}")
                continue
            row, files = result
            write_folder(out / folder, files)  # the client writes: workers need no shared disk
            rows[i] = row
    done = [r for r in rows if r is not None]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=SUMMARY_HEADER, lineterminator="\n")
    w.writeheader()
    w.writerows(done)
    write_atomic(out / "summary.csv", buf.getvalue())
    print(f"Wrote {out / 'summary.csv'} ({len(done)} runs)")
    for f in failed:
        print(f"gradsim: error: {f}", file=sys.stderr)
    return 1 if failed else 0


def _tag(v: Any) -> str:
    if isinstance(v, tuple):
        return "-".join(str(x) for x in v)
    return str(v).replace("/", "_")


# ---------------------------------------------------------------- check
def _page_names(subs: list[Any]) -> list[str]:
    """A distinct, file-system-safe feedback page name per submission."""
    import re

    names, seen = [], set()
    for sub in subs:
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", sub.name).strip("._") or "submission"
        name, k = base, 2
        while name.lower() in seen:
            name, k = f"{base}-{k}", k + 1
        seen.add(name.lower())
        names.append(name)
    return names


def cmd_check(args: argparse.Namespace) -> int:
    """Grade submissions: replay each one and compare (unless --no-replay), evaluate, write the CSV."""
    from ..teaching.exercises import load_exercise
    from ..grading.grade import Grade
    from ..service.executors import describe, task_executor
    from ..grading.feedback import make_band, reference_profiles, reference_seeds
    from ..grading.grader import grade_task
    from ..grading.submission import read_submission
    from ..session.io import write_atomic

    ex = load_exercise(args.exercise)
    if args.tolerance is not None and not (0 <= args.tolerance < 0.01):
        raise CliError(f"--tolerance {args.tolerance}: must be >= 0 and below 0.01 (a 1 % edit must still be caught)")
    max_points = args.max_points if args.max_points is not None else float(len(ex.objectives))
    if not (max_points > 0 and math.isfinite(max_points)):
        raise CliError(f"--max-points {args.max_points}: must be a number > 0")
    out_csv = Path(args.csv)
    if not out_csv.parent.is_dir():
        what = "is a file, not a folder" if out_csv.parent.exists() else "does not exist"
        raise CliError(f"--csv {str(out_csv)!r}: folder {str(out_csv.parent)!r} {what}")
    if out_csv.is_dir():  # found before grading, not after every replay has run
        raise CliError(f"--csv {str(out_csv)!r} is a folder; give the name of the CSV file to write")
    feedback_dir = Path(args.feedback) if args.feedback else None
    if feedback_dir is not None:
        try:
            feedback_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CliError(f"--feedback {str(feedback_dir)!r}: cannot create folder ({exc.strerror})") from None
    subs = [read_submission(p) for p in args.submissions]  # read here: workers may not see this disk
    names = _page_names(subs)
    replay = not args.no_replay
    grades: list[Any] = [None] * len(subs)
    n_tasks = len(subs) + (len(reference_seeds(ex)) if feedback_dir else 0)
    with task_executor(args.jobs, args.scheduler, n_tasks) as pool:
        where = describe(args.jobs, args.scheduler, n_tasks)
        print(f"Grading {len(subs)} submission(s) {where}" + (", replaying each" if replay else ""), file=sys.stderr)
        band = None
        if feedback_dir is not None:
            seeds = reference_seeds(ex)
            profiles: list[Any] = [None] * len(seeds)
            for i, result in _run_tasks(pool, reference_profiles, [(ex, s) for s in seeds], "reference run"):
                if isinstance(result, BaseException):
                    raise CliError(f"--feedback: the exercise's reference run (seed {seeds[i]}) failed: {result}")
                profiles[i] = result
            band = make_band(profiles, seeds, max_points)
        tasks = [(ex, sub, replay, args.tolerance, band, name) for sub, name in zip(subs, names)]
        for i, result in _run_tasks(pool, grade_task, tasks, "graded"):
            if isinstance(result, BaseException):  # a crashed worker: that submission is reported, not lost
                grades[i] = Grade(subs[i].path, False, [], [], f"grading failed: {type(result).__name__}: {result}")
                continue
            grades[i] = result.grade
            for fname, data in result.files.items():
                write_atomic(feedback_dir / fname, data)  # type: ignore[operator]
    ids = [o.id for o in ex.objectives]
    name_w = max([10] + [len(Path(g.submission).name) for g in grades])
    print(f"{ex.title}  ({len(ids)} objectives: {', '.join(ids)}; {max_points:g} points)")
    if not replay:
        print("UNVERIFIED (--no-replay): the submitted numbers were trusted, not re-run; an edited CSV would not be noticed.")
    print(f"{'submission':<{name_w}}  score  points  " + "  ".join(f"{i[:10]:<10}" for i in ids) + "  student")
    for g in grades:
        marks = [("pass" if r.passed else "FAIL") for r in g.results] or ["-"] * len(ids)
        flag = "" if g.verified or g.error else "  (unverified)"
        print(f"{Path(g.submission).name:<{name_w}}  {g.score:5.2f}  {g.score * max_points:6.4g}  " + "  ".join(f"{m:<10}" for m in marks) + f"  {g.student}{flag}")
        for problem in g.problems:
            print(f"{'':<{name_w}}    ! {problem}")
        for r in g.results:
            if not r.passed and args.verbose:
                print(f"{'':<{name_w}}    {r.id}: {r.detail}")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["student", "points", "max_points", "submission", "exercise", "score", "verified", "problems"] + ids)
    for g in grades:
        verified = "replayed" if g.verified else ("unverified" if not replay else "")
        w.writerow(
            [g.student, f"{g.score * max_points:.4g}", f"{max_points:g}", g.submission, ex.id, f"{g.score:.4f}", verified, "; ".join(g.problems)]
            + ([int(r.passed) for r in g.results] or [""] * len(ids))
        )
    try:
        write_atomic(out_csv, buf.getvalue())
    except OSError as exc:
        raise CliError(f"--csv {str(out_csv)!r}: cannot write ({exc.strerror or exc})") from None
    print(f"Scores written to {out_csv}" + (f"; feedback pages in {feedback_dir}/" if feedback_dir else ""))
    return 0


# ---------------------------------------------------------------- replicate
def _replication_progress(stream: Any) -> Callable[[int, int, str], None]:
    """A progress bar on a terminal; otherwise one line per run (logs stay readable)."""
    tty = getattr(stream, "isatty", lambda: False)()
    state = {"text": "", "shown": -1}

    def show(done: int, total: int, text: str) -> None:
        if not tty:
            if text != state["text"]:
                state["text"] = text
                stream.write(f"  {text}\n")
                stream.flush()
            return
        frac = done / total if total else 1.0
        pct = int(1000 * frac)
        if pct == state["shown"] and text == state["text"]:
            return
        state["shown"], state["text"] = pct, text
        bar = "#" * int(30 * frac)
        stream.write(f"\r[{bar:<30}] {100 * frac:5.1f}%  {text:<40.40}")
        if done >= total:
            stream.write("\n")
        stream.flush()

    return show


def cmd_replicate(args: argparse.Namespace) -> int:
    from ..replications import REPLICATIONS, get_replication, run_replication

    if args.list:
        width = max(len(n) for n in REPLICATIONS)
        for name, rep in REPLICATIONS.items():
            print(f"{name:<{width}}  {rep.title}")
        return 0
    if not args.name:
        raise CliError("replicate: give a replication NAME (see --list) or --list")
    if not args.out:
        raise CliError("replicate: --out DIR is required")
    if args.full and args.quick:
        raise CliError("replicate: --full and --quick exclude each other")
    rep = get_replication(args.name)
    mode = "full" if args.full else "quick" if args.quick else "default"
    seeds = seed_list(mode, args.seed, args.seeds)  # bad --seed/--seeds: one line, nothing written
    print(f"Replicating {rep.name} ({mode} mode, seeds {seeds[0]}..{seeds[-1]}) -> {args.out}/", file=sys.stderr)
    report = run_replication(rep, args.out, mode, progress=_replication_progress(sys.stderr), seed=args.seed, seeds=args.seeds)
    print(report.verdict)
    print(f"Figure {report.figure}, numbers {report.csv}, {len(report.sessions)} sessions under {Path(args.out) / 'runs'}/")
    return 0 if report.reproduced else 1


# ---------------------------------------------------------------- main
def _add_executor_flags(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--jobs", type=int, help=f"local processes for the {what} (default: CPU count)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="run on an existing Dask cluster, e.g. tcp://host:8786 (needs gradsim[cluster])")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="gradsim", description="GradSim headless engine: train, sweep and export sessions.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="train one network and export its session")
    _add_config_flags(run)
    run.add_argument("--resume", metavar="CHECKPOINT", help="continue the run saved in CHECKPOINT bit for bit (--steps: its new total)")
    run.add_argument("--checkpoint", metavar="FILE", help="at the end, save a checkpoint to FILE (a new file) to --resume from later")
    sweep = sub.add_parser("sweep", help="train a grid of configs in parallel (comma-separated values)")
    _add_config_flags(sweep, multi=True)
    _add_executor_flags(sweep, "runs")
    check = sub.add_parser("check", help="grade exercise submissions: replay each session and compare with its CSVs")
    check.add_argument("exercise", help="the exercise .toml file")
    check.add_argument("submissions", nargs="+", help="submission folders or .zip files (session files + submission.json)")
    check.add_argument("--csv", default="scores.csv", help="where to write the scores CSV (default: scores.csv)")
    check.add_argument("-v", "--verbose", action="store_true", help="say why each failed objective failed")
    check.add_argument("--no-replay", action="store_true", help="fast path: trust the submitted CSVs without re-running them (marked unverified)")
    check.add_argument("--tolerance", type=float, metavar="REL", help="relative tolerance of the replay comparison (default: 0 on the recording build, 1e-3 on another; see docs/exercises.md)")
    check.add_argument("--feedback", metavar="DIR", help="write one HTML feedback page per submission into DIR")
    check.add_argument("--max-points", type=float, help="the grade book's maximum (default: one point per objective)")
    _add_executor_flags(check, "submissions")
    rep = sub.add_parser("replicate", help="re-run a classic paper's experiment and say whether its result is reproduced")
    rep.add_argument("name", nargs="?", help="the replication (see --list)")
    rep.add_argument("--list", action="store_true", help="list the replications")
    rep.add_argument("--full", action="store_true", help="more seeds, steps and depths (slower)")
    rep.add_argument("--quick", action="store_true", help="reduced mode for CI: fewer steps and seeds, the same code path")
    rep.add_argument("--seed", type=int, default=0, help="first seed of the repetitions (default 0)")
    rep.add_argument("--seeds", type=int, help=f"repetitions, one per seed from --seed (default {SEEDS['default']}; --quick {SEEDS['quick']}, --full {SEEDS['full']})")
    rep.add_argument("--out", help="output folder (figure.png, results.csv, seeds.csv, rates.csv, verdict.txt, runs/*)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        commands = {"run": cmd_run, "sweep": cmd_sweep, "check": cmd_check, "replicate": cmd_replicate}
        return commands[args.command](args)
    except (CliError, ConfigError, CommandError, ExerciseError, ExecutorError, ReplicationError) as exc:
        print(f"gradsim: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:  # ExportError and friends: the message already names the path
        print(f"gradsim: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("\ngradsim: interrupted", file=sys.stderr)
        return 130


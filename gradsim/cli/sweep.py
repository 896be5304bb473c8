"""``gradsim sweep``: train a grid of configs in parallel; summary.csv plus one session folder per run."""
from __future__ import annotations

import argparse
import csv
import io
import itertools
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from ..commands import parse_event
from ..service.sweep import SUMMARY_HEADER
from .common import CliError, add_executor_flags, add_overwrite_flag, refuse_existing_folder, run_tasks
from .config_flags import add_config_flags, apply_changes, base_config, overrides

if TYPE_CHECKING:
    from .common import SubParsers


def add_parser(sub: SubParsers) -> argparse.ArgumentParser:
    p = sub.add_parser("sweep", help="train a grid of configs in parallel (comma-separated values)")
    add_config_flags(p, multi=True)
    add_executor_flags(p, "runs")
    add_overwrite_flag(p, "summary.csv and the run folders in a non-empty --out folder")
    return p


def _tag(v: Any) -> str:
    if isinstance(v, tuple):
        return "-".join(str(x) for x in v)
    return str(v).replace("/", "_")


def cmd(args: argparse.Namespace) -> int:
    from ..service.executors import describe, task_executor
    from ..session.io import write_atomic, write_folder
    from ..service.sweep import sweep_task

    base, events, _ = base_config(args)
    grid = overrides(args)
    keys = list(grid)
    values = [v if isinstance(v, list) else [v] for v in (grid[k] for k in keys)]
    combos = [dict(zip(keys, combo)) for combo in itertools.product(*values)] if keys else [{}]
    configs = [apply_changes(base, c) for c in combos]  # validate every config before running any
    schedule = [s.text() for s in events] + [parse_event(e).text() for e in args.event]
    out = Path(args.out)
    refuse_existing_folder("--out", out, args.overwrite)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"--out {str(out)!r}: cannot create folder ({exc.strerror})") from None
    jobs: list[tuple[Any, ...]] = []
    for i, (cfg, combo) in enumerate(zip(configs, combos)):
        tag = "-".join(f"{k}{_tag(v)}" for k, v in combo.items()) or "base"
        jobs.append(((i, cfg.to_dict(), schedule, f"run{i:03d}-{tag}"),))
    rows: list[Optional[dict[str, Any]]] = [None] * len(jobs)
    failed: list[str] = []
    with task_executor(args.jobs, args.scheduler, len(jobs)) as pool:
        print(f"Sweep: {len(jobs)} runs {describe(args.jobs, args.scheduler, len(jobs))} -> {out}/", file=sys.stderr)
        for i, result in run_tasks(pool, sweep_task, jobs, "done"):
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

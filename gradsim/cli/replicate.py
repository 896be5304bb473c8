"""``gradsim replicate``: re-run a classic paper's experiment; exit 0 when its result is reproduced, 1 when not."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..replications.framework import SEEDS, seed_list
from .common import CliError

if TYPE_CHECKING:
    from .common import SubParsers


def add_parser(sub: SubParsers) -> argparse.ArgumentParser:
    p = sub.add_parser("replicate", help="re-run a classic paper's experiment and say whether its result is reproduced")
    p.add_argument("name", nargs="?", help="the replication (see --list)")
    p.add_argument("--list", action="store_true", help="list the replications")
    p.add_argument("--full", action="store_true", help="more seeds, steps and depths (slower)")
    p.add_argument("--quick", action="store_true", help="reduced mode for CI: fewer steps and seeds, the same code path")
    p.add_argument("--seed", type=int, default=0, help="first seed of the repetitions (default 0)")
    p.add_argument("--seeds", type=int, help=f"repetitions, one per seed from --seed (default {SEEDS['default']}; --quick {SEEDS['quick']}, --full {SEEDS['full']})")
    p.add_argument("--out", help="output folder (figure.png, results.csv, seeds.csv, rates.csv, verdict.txt, runs/*)")
    return p


def _replication_progress(stream: Any) -> Callable[[int, int, str], None]:
    """A progress bar on a terminal; otherwise one line per run (logs stay readable)."""
    tty = getattr(stream, "isatty", lambda: False)()
    state: dict[str, Any] = {"text": "", "shown": -1}

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


def cmd(args: argparse.Namespace) -> int:
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

"""Headless command line: ``python -m gradsim run | sweep | check | replicate | diagnose`` (the README's headless-engine section).

One module per subcommand; each exposes ``add_parser(sub)`` and ``cmd(args)``
(``common.Subcommand``), and ``SUBCOMMANDS`` lists them in the order ``--help``
shows. A new subcommand is a new module and one entry there.
Every bad value gives one line naming it and exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from ..commands import CommandError
from ..config import ConfigError
from ..teaching.exercises import ExerciseError
from ..service.executors import ExecutorError
from ..service.sweep import SUMMARY_HEADER  # re-exported for scripts
from ..replications.framework import ReplicationError
from . import check, diagnose, replicate, run, sweep
from .common import EXIT_BAD_INPUT, CliError, Parser, Subcommand

__all__ = ["SUBCOMMANDS", "SUMMARY_HEADER", "CliError", "build_parser", "main"]

SUBCOMMANDS: tuple[Subcommand, ...] = (run, sweep, check, replicate, diagnose)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="gradsim", description="GradSim headless engine: train, sweep and export sessions.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in SUBCOMMANDS:
        command.add_parser(sub).set_defaults(handler=command.cmd)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        status: int = args.handler(args)
        return status
    except (CliError, ConfigError, CommandError, ExerciseError, ExecutorError, ReplicationError) as exc:
        print(f"gradsim: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:  # ExportError and friends: the message already names the path
        print(f"gradsim: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("\ngradsim: interrupted", file=sys.stderr)
        return 130

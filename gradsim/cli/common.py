"""What every subcommand shares: the one-line error, the parser that raises it, the
executor flags and the task loop with progress, and the Subcommand interface main.py
builds the command line from."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, Any, Callable, Iterator, NoReturn, Protocol

log = logging.getLogger(__name__)

EXIT_BAD_INPUT = 2

class CliError(Exception):
    """Bad input: printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not usage + traceback
        raise CliError(message)


if TYPE_CHECKING:
    #: What ``add_subparsers`` returns; a subcommand adds its parser to it.
    SubParsers = argparse._SubParsersAction[Parser]


class Subcommand(Protocol):
    """A module under gradsim/cli that main.py lists: it adds its parser and runs it."""

    def add_parser(self, sub: SubParsers) -> argparse.ArgumentParser:
        """Add this subcommand's parser (with its flags) to ``sub`` and return it."""

    def cmd(self, args: argparse.Namespace) -> int:
        """Run the subcommand; the exit status (bad input raises CliError or another known error)."""


def add_executor_flags(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--jobs", type=int, help=f"local processes for the {what} (default: CPU count)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="run on an existing Dask cluster, e.g. tcp://host:8786 (needs gradsim[cluster])")


def run_tasks(pool: Any, fn: Callable[..., Any], tasks: list[tuple[Any, ...]], what: str) -> Iterator[tuple[int, Any]]:
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

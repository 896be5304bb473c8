"""What every subcommand shares: the one-line error, the parser that raises it, the
executor flags and the task loop with progress, the refusal to replace an output
without ``--overwrite``, and the Subcommand interface main.py builds the command line from."""
from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
from pathlib import Path
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


OVERWRITE_HINT = "use --overwrite to replace it"


def add_overwrite_flag(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--overwrite", action="store_true", help=f"replace {what} when it already exists (default: refuse, nothing written)")


def refuse_existing_folder(flag: str, path: Path, overwrite: bool) -> None:
    """Before any work: a file in the way, or (without ``overwrite``) a folder holding
    anything, is one line naming it; an empty folder is used as it is."""
    if path.exists() and not path.is_dir():
        raise CliError(f"{flag} {str(path)!r} exists and is not a folder")
    if not overwrite and path.is_dir() and next(path.iterdir(), None) is not None:
        raise CliError(f"{flag} {str(path)!r}: the folder exists and is not empty; {OVERWRITE_HINT}")


def refuse_existing_file(flag: str, path: Path, overwrite: bool) -> None:
    """Before any work: without ``overwrite``, an existing ``path`` is one line naming it."""
    if not overwrite and (path.exists() or path.is_symlink()):
        raise CliError(f"{flag} {str(path)!r}: the file exists; {OVERWRITE_HINT}")


def write_new_file(path: Path, data: str) -> bool:
    """Write ``path`` atomically unless a file of that name exists: then False, nothing written.

    The complete file is written under a private name and hard-linked to ``path``:
    a link fails rather than replaces, so a file that appeared meanwhile is kept.
    Where the file system has no hard links, an existence check and a rename do.
    """
    from ..session.io import write_atomic

    tmp = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.new"
    write_atomic(tmp, data)
    try:
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:  # no hard links here (some network or FAT mounts)
            if path.exists() or path.is_symlink():
                return False
            os.replace(tmp, path)
        return True
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass

"""Where independent tasks (grading a submission, training one sweep run) execute.

One ``concurrent.futures.Executor`` interface for three places, so ``check``
and ``sweep`` have one code path:

- in this process (``--jobs 1``: no pickling, easy to debug),
- local worker processes (``--jobs N``, the default uses every core),
- an existing Dask distributed cluster (``--scheduler tcp://host:8786``),
  through ``Client.get_executor()``.

Tasks take and return plain data (bytes, dataclasses): cluster workers need
not share this machine's disk, the client writes every file.
"""
from __future__ import annotations

import contextlib
import gc
import logging
import os
import sys
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any, Callable, Iterator, Optional

#: How long to wait for a scheduler before saying it cannot be reached. A live
#: scheduler on a LAN answers in milliseconds; distributed's own default (30 s,
#: with retries that log tracebacks) is far too long for a mistyped address.
CONNECT_TIMEOUT_S = 5.0


class ExecutorError(RuntimeError):
    """Tasks cannot be run where asked (no Dask installed, scheduler unreachable): one line for the user."""


class InlineExecutor(Executor):
    """Runs each task at submit time in this process (``--jobs 1``)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # delivered through the future, as a pool would
            if isinstance(exc, KeyboardInterrupt):
                raise
            fut.set_exception(exc)
        return fut


def local_jobs(jobs: Optional[int], n_tasks: int) -> int:
    """Processes to use: ``jobs`` (default: CPU count), never more than there are tasks."""
    if jobs is not None and jobs < 1:
        raise ExecutorError(f"--jobs {jobs}: must be 1 or more")
    return max(1, min(jobs or os.cpu_count() or 1, max(1, n_tasks)))


@contextlib.contextmanager
def _quiet(names: tuple[str, ...]) -> Iterator[None]:
    """Silence libraries that log tracebacks while we turn their failure into one line."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _probe(address: str, timeout: float) -> None:
    """Fail fast, with the reason, when nothing listens at a tcp:// or tls:// address.

    ``Client(address)`` to a missing scheduler retries until its timeout and
    logs tracebacks meanwhile (docs/architecture.md#pitfalls-measured-here); a plain socket says
    "connection refused" or "unknown host" at once.
    """
    import socket

    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port

    try:
        scheme, loc = parse_address(address, strict=True)
        host, port = parse_host_port(loc) if scheme in ("tcp", "tls") else (None, None)
    except (ValueError, TypeError) as exc:
        raise ExecutorError(f"--scheduler {address}: not a scheduler address ({exc}); expected tcp://HOST:PORT") from None
    if host is None:
        return
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__).lower()
        raise ExecutorError(f"--scheduler {address}: cannot reach a Dask scheduler there ({reason}); is `dask scheduler` running, and is the address tcp://HOST:PORT?") from None


def connect(address: str, timeout: float = CONNECT_TIMEOUT_S) -> Any:
    """A ``distributed.Client`` for ``address``, or ExecutorError with one clear line."""
    try:
        import dask
        from distributed import Client
    except ImportError:
        raise ExecutorError(f"--scheduler {address}: Dask is not installed; install the cluster extra: pip install 'gradsim[cluster]'") from None
    _probe(address, timeout)
    failure = ""
    with _quiet(("distributed", "tornado", "asyncio")), dask.config.set({"distributed.comm.timeouts.connect": f"{timeout}s"}):
        try:
            return Client(address, timeout=timeout, set_as_default=False)
        except Exception as exc:  # something listens there, but not a scheduler
            logging.getLogger(__name__).debug("no scheduler at %s", address, exc_info=True)
            failure = type(exc).__name__
        # The half-made Client closes itself in __del__ and reports its own
        # timeout as an "Exception ignored" traceback: collect it now, quietly.
        hook = sys.unraisablehook
        sys.unraisablehook = lambda _info: None
        try:
            gc.collect()
        finally:
            sys.unraisablehook = hook
    raise ExecutorError(f"--scheduler {address}: no Dask scheduler answered there within {timeout:g} s ({failure})")


@contextlib.contextmanager
def task_executor(jobs: Optional[int] = None, scheduler: Optional[str] = None, n_tasks: int = 1) -> Iterator[Executor]:
    """The executor for ``--jobs`` / ``--scheduler``; closed (and the client disconnected) on exit."""
    if scheduler:
        client = connect(scheduler)
        try:
            yield client.get_executor(pure=False)  # pure=False: equal inputs are separate tasks, never merged
        finally:
            with _quiet(("distributed", "tornado", "asyncio")):
                client.close()
        return
    n = local_jobs(jobs, n_tasks)
    if n == 1:
        yield InlineExecutor()
        return
    with ProcessPoolExecutor(max_workers=n) as pool:
        yield pool


def describe(jobs: Optional[int], scheduler: Optional[str], n_tasks: int) -> str:
    """Where the tasks run, for the progress line."""
    if scheduler:
        return f"on the Dask cluster at {scheduler}"
    n = local_jobs(jobs, n_tasks)
    return "in this process" if n == 1 else f"in {n} processes"

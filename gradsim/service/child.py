"""The engine's child process: its entry point (:func:`serve`), its pipe and how it starts.

The window's relay thread (ui/worker.py) calls :func:`start_engine_process`;
the child warms up (imports torch), says READY, then runs the serving loop
(gradsim/service/loop.py) over the pipe until Shutdown or until the window's
end of the pipe closes. Nothing here imports Qt, and the child never imports
the window's main module (see :func:`_without_main`). The processes, the
messages and the life cycle are described in docs/architecture.md#the-service.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import pickle
import queue
import signal
import sys
import threading
from typing import Any, Iterator, Optional

from .loop import EngineLoop, OwnerGone, warm_up
from .protocol import SNAPSHOT_HZ, Ready, Report, TaskDone

log = logging.getLogger(__name__)


# ------------------------------------------------------------------ the pipe
class PipeInbox:
    """An inbox over a ``multiprocessing`` Connection; EOF (the owner died) ends the loop."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def get(self, timeout: float) -> Any:
        if not self._conn.poll(timeout):
            raise queue.Empty
        return self._conn.recv()

    def get_nowait(self) -> Any:
        if not self._conn.poll():
            raise queue.Empty
        return self._conn.recv()


def encode_task_payload(payload: Any, ok: bool) -> bytes:
    """Pickle a task's result or exception so the owner can always read it back.

    An exception that does not survive a round trip (a custom ``__init__``)
    becomes a RuntimeError naming it; a result that cannot be pickled becomes
    an error for the caller instead of a lost reply.
    """
    try:
        blob = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
        if not ok:
            pickle.loads(blob)  # exceptions are small: check they can be rebuilt on the other side
        return blob
    except Exception as exc:  # the reply must arrive, whatever it holds
        log.info("a task's %s cannot travel as it is; sending an error that names it", "result" if ok else "exception", exc_info=True)
        if ok:
            err: BaseException = TypeError(f"the task's result ({type(payload).__name__}) cannot be sent back: {exc}")
        else:
            err = RuntimeError(f"{type(payload).__name__}: {payload}")
        return pickle.dumps(err, protocol=pickle.HIGHEST_PROTOCOL)


class PipeOutbox:
    """Reports to the owner through a Connection, written by a sender thread of their own.

    Why a thread: a report waits in the pipe until the owner reads it, and the
    owner is a window whose reader thread needs that process's interpreter
    lock, which painting holds for milliseconds at a time. Written from the
    training loop, a full pipe would stall training on the window's paint, the
    very coupling the child process exists to remove. The sender blocks in
    ``write`` (the lock released), training goes on. Reports keep their order;
    task payloads are pickled here, in the loop, so a reply always arrives readable.
    """

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._queue: "queue.SimpleQueue[Optional[Report]]" = queue.SimpleQueue()
        self._broken = False
        self._thread = threading.Thread(target=self._send_all, name="gradsim-engine-sender", daemon=True)
        self._thread.start()

    def __call__(self, report: Report) -> None:
        if self._broken:
            raise OwnerGone  # the owner is gone: nobody to serve
        if isinstance(report, TaskDone):
            report = dataclasses.replace(report, payload=encode_task_payload(report.payload, report.ok))
        self._queue.put(report)

    def _send_all(self) -> None:
        while True:
            report = self._queue.get()
            if report is None:
                return
            try:
                self._conn.send(report)
            except (BrokenPipeError, EOFError, ConnectionResetError, OSError):
                self._broken = True
                return
            except Exception:  # one report that cannot be pickled: say so, send the rest
                log.exception("a %s report could not be sent to the window", type(report).__name__)

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued, then stop the sender thread."""
        self._queue.put(None)
        self._thread.join(timeout)


def own_session() -> None:
    """Make this process a session of its own (POSIX), so the scheduler sees the engine as
    its own job, not as a thread of the window.

    Why: Linux's autogroup scheduling (on where tasks sit in the root cgroup) shares
    the CPU between *sessions* first. In the window's session the engine would share
    one share with the window's painting: every millisecond of paint would be a
    millisecond less training on a busy machine, and the window would wait behind
    the always-busy engine for its turn (GUI timer latency). As a session of its own
    it gets its own share, as ``gradsim run`` started elsewhere would. Nothing else
    changes: it still ends when the window's end of the pipe closes, and the
    terminal's Ctrl+C reaches the window, which ends it.
    """
    if hasattr(os, "setsid"):
        try:
            os.setsid()
        except OSError:  # already a group leader (never when started by start_engine_process)
            log.debug("the engine process could not start a session of its own", exc_info=True)


def serve(conn: Any, snapshot_hz: float = SNAPSHOT_HZ) -> None:
    """The child process's entry point: warm up, say READY, serve until Shutdown or EOF.

    Ctrl+C in a terminal reaches the whole process group; the window handles it
    and stops this process itself, so the child ignores SIGINT.
    """
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except (ValueError, OSError):  # pragma: no cover - not the main thread
        pass
    own_session()
    outbox = PipeOutbox(conn)
    try:
        warm_up()
        outbox(Ready(os.getpid()))
        EngineLoop(PipeInbox(conn), outbox, snapshot_hz).run()
    except OwnerGone:
        pass
    finally:
        outbox.close()
        try:
            conn.close()
        except OSError:
            pass


# ------------------------------------------------------------------ starting one
#: Modules the forkserver imports once; every engine forked from it starts with torch loaded.
PRELOAD = ["torch", "gradsim.train.trainer", "gradsim.service.child"]


def start_method() -> str:
    """How engine processes start: ``GRADSIM_START_METHOD`` if set, else forkserver where it exists.

    Never a plain fork of the window's process (Qt's threads and locks do not
    survive a fork). The forkserver is a fresh interpreter that imports torch
    once (``PRELOAD``); each engine is then forked from it in milliseconds, so
    a Reset after a crash, or a test suite's many windows, do not pay torch's
    import again. ``spawn`` (Windows, or by choice) pays it per engine.
    """
    import multiprocessing as mp

    chosen = os.environ.get("GRADSIM_START_METHOD", "").strip()
    methods = mp.get_all_start_methods()
    if chosen:
        if chosen not in methods or chosen == "fork":
            raise ValueError(f"GRADSIM_START_METHOD={chosen!r}: use one of {[m for m in methods if m != 'fork']}")
        return chosen
    return "forkserver" if "forkserver" in methods else "spawn"


def start_engine_process(snapshot_hz: float = SNAPSHOT_HZ) -> tuple[Any, Any]:
    """Start a child serving :func:`serve`; returns (process, parent's end of the duplex pipe).

    The child does not import the caller's ``__main__`` (see :func:`_without_main`), so a
    script that opens the window without an ``if __name__ == "__main__":`` guard still gets
    its engine in a child process, and the child never imports Qt.

    The caller waits for the READY report (torch imported) before counting on it;
    it must close the connection and join the process when done.
    """
    import multiprocessing as mp

    ctx = mp.get_context(start_method())
    if ctx.get_start_method() == "forkserver":
        ctx.set_forkserver_preload(PRELOAD)
    parent, child = ctx.Pipe(duplex=True)
    # typeshed's BaseContext lacks Process, which the context of every start method has.
    proc = ctx.Process(target=serve, args=(child, snapshot_hz), name="gradsim-engine", daemon=True)  # type: ignore[attr-defined]
    try:
        with _without_main():
            proc.start()
    finally:
        child.close()  # the child holds its own copy; ours must go so EOF reaches the parent
    return proc, parent


#: Set (in the starting thread only) while an engine process starts.
_starting = threading.local()
#: Keys of multiprocessing's preparation data that make a child import the parent's ``__main__``.
_MAIN_KEYS = ("init_main_from_path", "init_main_from_name")


@contextlib.contextmanager
def _without_main() -> Iterator[None]:
    """While an engine starts in this thread, its child is told nothing of ``__main__``.

    Why: a ``spawn`` or ``forkserver`` child first runs the parent's main module
    again (as ``__mp_main__``) so that targets defined there can be found. The
    engine's target lives here, never in ``__main__``, and re-running the
    caller's script in the engine would build a second window there (and import
    Qt), or, for a script without a ``__main__`` guard, stop the engine from
    starting at all. multiprocessing builds what a child prepares from
    ``multiprocessing.spawn.get_preparation_data`` (every start method, every
    platform); a wrapper installed once drops the main module's keys from it
    for the engine only: other processes, and other threads, see the data as before.
    """
    from multiprocessing import spawn

    original = spawn.get_preparation_data
    if not getattr(original, "_gradsim_hides_main", False):
        def get_preparation_data(name: str) -> dict[str, Any]:
            data = original(name)
            if getattr(_starting, "engine", False):
                for key in _MAIN_KEYS:
                    data.pop(key, None)
            return data

        get_preparation_data._gradsim_hides_main = True  # type: ignore[attr-defined]
        spawn.get_preparation_data = get_preparation_data
    _starting.engine = True
    try:
        yield
    finally:
        _starting.engine = False


def describe_exit(exitcode: Optional[int]) -> str:
    """Words for a process's exit code (negative: the signal that ended it)."""
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"killed by {name}"
    return f"exit status {exitcode}"


if __name__ == "__main__":  # pragma: no cover - not a script
    sys.exit("gradsim.service.child is started by the window (ui/worker.py), not run directly")

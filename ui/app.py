"""QApplication, command-line flags and ``main()``.

Why headless flags live in the app (not in a test helper): the README screenshot
and the CI smoke test must drive the *real* window, with the real worker thread,
exactly as a user's click would. ``--screenshot`` and ``--self-test`` work with
``QT_QPA_PLATFORM=offscreen``. torch is never imported here: the window paints
first, the worker imports torch afterwards.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, NoReturn, Optional, Sequence

from gradsim import __version__

PROG = "gradsim"
#: How long a headless run may take before it is declared stuck.
HEADLESS_TIMEOUT_S = 900.0


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one clear line on stderr, exit status 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{PROG}: error: {message}\n")
        sys.exit(2)


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n} must be at least 1")
    return n


#: The rates ``--speed`` accepts (ui/pace_controls.py's MIN_SPEED, MAX_SPEED; here so a typo costs no Qt import).
MIN_SPEED, MAX_SPEED = 1.0, 100_000.0


def _speed(text: str) -> Optional[float]:
    """``--speed``: 'full' (None) or whole steps a second within the pace controls' range."""
    if text.strip().lower() == "full":
        return None
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number of steps a second "
                                         f"({MIN_SPEED:.0f}-{MAX_SPEED:,.0f}) or 'full'") from None
    if not MIN_SPEED <= n <= MAX_SPEED:
        raise argparse.ArgumentTypeError(f"{n}: steps a second must be {MIN_SPEED:.0f}-{MAX_SPEED:,.0f} (or 'full')")
    return float(n)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description="GradSim: train a deep MLP live and watch its gradients vanish or explode.",
    )
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    p.add_argument("--preset", metavar="NAME", help="load a preset from resources/presets at start")
    p.add_argument("--config", metavar="FILE", help="load a config (a preset, a bare config JSON or an exported session.json)")
    p.add_argument("--open", metavar="SESSION", dest="open_path",
                   help="show an exported session (a folder or a .zip) read-only; with --screenshot, save a picture of it")
    p.add_argument("--follow", metavar="DIR",
                   help="follow a running gradsim.watch session folder: the plots grow as the script trains; with "
                        "--screenshot, save a picture once it holds --steps N steps (or the run ended)")
    p.add_argument("--steps", metavar="N", type=_positive_int, help="maximum steps of the run")
    p.add_argument("--speed", metavar="N", type=_speed,
                   help="training speed: N steps a second (a whole number, 1-100000) or 'full' (the default)")
    p.add_argument("--screenshot", metavar="FILE.png", help="run the steps headless, save a screenshot of the window and exit")
    p.add_argument("--self-test", action="store_true", help="run a small session through the real window, export it, and exit (status 0 when all is well)")
    return p


def _fail_usage(message: str) -> int:
    sys.stderr.write(f"{PROG}: error: {message}\n")
    return 2


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))

    # Validate everything that can be checked without Qt, so a typo costs no window.
    from gradsim.commands import Scheduled
    from gradsim.config import ConfigError, RunConfig
    from gradsim.teaching.presets import load_preset, parse_run_file

    if args.preset and args.config:
        return _fail_usage("give --preset or --config, not both")
    if args.self_test and args.screenshot:
        return _fail_usage("give --self-test or --screenshot, not both")
    if args.open_path and (args.preset or args.config or args.self_test):
        return _fail_usage("give --open alone (with --screenshot if wanted), not with --preset, --config or --self-test")
    if args.follow and (args.open_path or args.preset or args.config or args.self_test):
        return _fail_usage("give --follow alone (with --screenshot and --steps if wanted)")
    if args.follow:
        from gradsim.watch.tail import NotWatchedError, watched_meta

        try:  # before any window: a folder that is not a watched run costs one line, exit 2
            watched_meta(args.follow)
        except NotWatchedError as exc:
            return _fail_usage(f"--follow: {exc}")
    config: Optional[RunConfig] = None
    schedule: tuple[Scheduled, ...] = ()
    try:
        if args.preset:
            load_preset(args.preset)
        if args.config:
            config, schedule = parse_run_file(args.config)
        if args.steps is not None:
            (config or RunConfig()).with_changes(steps=args.steps)
    except ConfigError as exc:
        return _fail_usage(str(exc).splitlines()[0])
    opened = None
    if args.open_path:
        from gradsim.session.ops import SessionOpenError, load_saved_run

        try:  # before any window: a file that is not a session costs one line, exit 2
            opened = load_saved_run(args.open_path)
        except SessionOpenError as exc:
            return _fail_usage(f"--open: {exc}")
    if args.screenshot:
        shot = Path(args.screenshot)
        if shot.suffix.lower() != ".png":
            return _fail_usage(f"--screenshot {args.screenshot}: the file name must end in .png")
        if not shot.resolve().parent.is_dir():
            return _fail_usage(f"--screenshot {args.screenshot}: folder {str(shot.resolve().parent)!r} does not exist")

    headless = bool(args.screenshot or args.self_test)
    app = _make_app()
    from .main_window import MainWindow

    window = MainWindow(persist=not headless)
    window.guard.enabled = not headless  # nobody is there to answer "save first?"
    window.autosave.enabled = not headless  # a headless run is not a student's work
    if os.environ.get("GRADSIM_REPORT_FIRST_PAINT"):
        _report_first_paint(window, app)
    try:
        return _run(app, window, args, config, schedule, opened)
    finally:
        _dispose(window)


def _run(app, window, args: argparse.Namespace, config, schedule, opened=None) -> int:
    """The mode the flags ask for: self-test, screenshot, or the interactive window."""
    if args.self_test:
        return _self_test(app, window)
    if args.follow:
        return _follow(app, window, args)
    if opened is not None:
        window.show()
        window.viewer.show_session(opened[0], args.open_path, branch=opened[1])
        if args.screenshot:
            return _screenshot_now(app, window, args.screenshot)
        _close_on_signals(window)
        return app.exec()
    if args.preset:
        window.builder.apply_preset(args.preset)
    elif config is not None:
        window.builder.set_config(config)
        window.builder.set_schedule(schedule)
    if args.screenshot:
        return _screenshot(app, window, args.screenshot, args.steps)
    if args.steps is not None:
        window.builder.steps.setValue(args.steps)
    if args.speed is not None:
        window.pace.set_speed(args.speed, any_rate=True)
    window.show()
    if not (args.preset or config is not None):  # a first start without a chosen network: the welcome
        window.welcome.maybe_show_first_start()
    _close_on_signals(window)
    return app.exec()


def _follow(app, window, args: argparse.Namespace) -> int:
    """--follow DIR: follow a watched run; with --screenshot, save one once it holds --steps steps or ended."""
    window.show()
    if not window.follow.follow(args.follow):
        sys.stderr.write(f"{PROG}: error: --follow: {window.last_error}\n")
        return 2
    if not args.screenshot:
        _close_on_signals(window)
        return app.exec()
    want = args.steps or 1
    f = window.follow

    def enough() -> bool:
        return not f.following or (f.session is not None and len(f.session) >= want)

    if not wait_for(app, enough, HEADLESS_TIMEOUT_S, poll_ms=50):
        sys.stderr.write(f"{PROG}: error: --follow: {args.follow} did not reach {want} steps within {HEADLESS_TIMEOUT_S:.0f} s\n")
        return 1
    if f.session is None:
        sys.stderr.write(f"{PROG}: error: --follow: {args.follow} recorded no step\n")
        return 1
    wait_for(app, lambda: False, 0.5)  # the axes widen to their labels over a few paints
    return _screenshot_now(app, window, args.screenshot)


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` still exists (POSIX; on Windows os.kill would end it, so: unknown = False)."""
    if os.name == "nt":
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _dispose(window) -> None:
    """Stop the worker and destroy the window while Python and Qt are both fully alive.

    Left to interpreter teardown, pyqtgraph's items are destroyed in arbitrary
    order and the process can die with a segmentation fault after main() has
    returned 0 (seen here with PySide6 6.11 + pyqtgraph 0.14).
    """
    import gc

    from PySide6.QtCore import QCoreApplication, QEvent

    window.stop_worker()
    window.close_now()  # the app is ending: any question about unsaved work was asked at Quit
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()


def _make_app():
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from .about import app_icon
    from .settings import APPLICATION, ORGANIZATION

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else PROG])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationVersion(__version__)
    QGuiApplication.setDesktopFileName("gradsim")
    from .logs import setup_logging

    setup_logging()  # after the names are set: they choose the app-data folder
    app.setWindowIcon(app_icon())
    return app


def _close_on_signals(window) -> None:
    """Ctrl+C or SIGTERM in a terminal close the window cleanly (the worker is stopped, settings saved)."""
    import signal

    from PySide6.QtCore import QTimer

    def close(*_: object) -> None:
        # No question: a signal means "end now", and a modal box would keep the process alive.
        QTimer.singleShot(0, window.close_now)

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(sig, close)
        except (ValueError, OSError):  # not the main thread, or not supported here
            return
    # Python runs signal handlers only when it gets control: wake it a few times a second.
    window._signal_timer = QTimer(window)  # kept alive with the window
    window._signal_timer.timeout.connect(lambda: None)
    window._signal_timer.start(250)


def _report_first_paint(window, app) -> None:
    """Benchmark hook: print when the window first painted, then quit."""

    def painted() -> None:
        print(f"first-paint {time.time():.6f} torch={'torch' in sys.modules}", flush=True)
        app.quit()

    window.first_painted.connect(painted)


def wait_for(app, condition: Callable[[], bool], timeout_s: float, poll_ms: int = 10) -> bool:
    """Run the event loop until ``condition()`` holds (checked every ``poll_ms``) or time runs out."""
    from PySide6.QtCore import QEventLoop, QTimer

    if condition():
        return True
    deadline = time.monotonic() + timeout_s
    loop = QEventLoop()
    timer = QTimer()
    timer.setInterval(poll_ms)
    result = [False]

    def tick() -> None:
        if condition():
            result[0] = True
            loop.quit()
        elif time.monotonic() > deadline:
            loop.quit()

    timer.timeout.connect(tick)
    timer.start()
    loop.exec()
    timer.stop()
    return result[0]


def _run_to_end(app, window, timeout_s: float = HEADLESS_TIMEOUT_S) -> Optional[str]:
    """Start a run from the builder and wait for it to finish; an error message or None."""
    from .run_controller import RunState

    FAILED, FINISHED = RunState.FAILED, RunState.FINISHED

    if not window.start_run():
        return f"the configuration is not valid: {window.builder.error()}"
    if not wait_for(app, lambda: window.state in (FINISHED, FAILED), timeout_s):
        return f"the run did not finish within {timeout_s:.0f} s (state: {window.state})"
    if window.state == FAILED:
        return f"the run failed: {window.last_error}"
    window.refresh_plots_now()
    wait_for(app, lambda: False, 0.05)  # let the plots paint
    return None


def _run_steps(app, window, steps: int, timeout_s: float = HEADLESS_TIMEOUT_S) -> Optional[str]:
    """Start a run paused, take exactly ``steps`` steps (fewer if it ends first), stay paused."""
    from .run_controller import RunState

    FAILED, FINISHED = RunState.FAILED, RunState.FINISHED

    builder = window.builder
    if builder.steps.value() < steps:
        builder.steps.setValue(steps)
    if not window.start_run(paused=True):
        return f"the configuration is not valid: {builder.error()}"
    window.run.step(steps)

    def done() -> bool:
        m = window.mirror
        return window.state in (FINISHED, FAILED) or (m is not None and m.steps_run >= steps)

    if not wait_for(app, done, timeout_s):
        return f"the run did not take {steps} steps within {timeout_s:.0f} s"
    if window.state == FAILED:
        return f"the run failed: {window.last_error}"
    window.refresh_plots_now()
    wait_for(app, lambda: False, 0.1)  # let the plots paint
    return None


def _screenshot(app, window, path: str, steps: Optional[int]) -> int:
    window.show()
    window.raise_()
    error = _run_steps(app, window, steps) if steps else _run_to_end(app, window)
    if error:
        sys.stderr.write(f"{PROG}: error: {error}\n")
        window.close()
        return 1
    ok = window.grab().save(path, "PNG")
    window.close()
    if not ok:
        sys.stderr.write(f"{PROG}: error: cannot write the screenshot {path!r}\n")
        return 1
    print(f"screenshot of step {window.mirror.steps_run if window.mirror else 0} saved to {path}")
    return 0


def _screenshot_now(app, window, path: str) -> int:
    """Save what the window shows now (an opened session) to ``path``."""
    window.raise_()
    window.refresh_plots_now()
    wait_for(app, lambda: False, 0.2)  # let the plots paint
    ok = window.grab().save(path, "PNG")
    window.close()
    if not ok:
        sys.stderr.write(f"{PROG}: error: cannot write the screenshot {path!r}\n")
        return 1
    print(f"screenshot of the saved session saved to {path}")
    return 0


def _self_test(app, window) -> int:
    """Drive the real window: a small run, a live toggle, plots, an export. Exit 0 when all pass."""
    from gradsim.commands import SetBatchNorm
    from gradsim.config import RunConfig

    from .run_controller import RunState

    FINISHED, PAUSED, RUNNING = RunState.FINISHED, RunState.PAUSED, RunState.RUNNING

    failures: list[str] = []

    def check(ok: bool, what: str) -> None:
        print(("ok    " if ok else "FAIL  ") + what, flush=True)
        if not ok:
            failures.append(what)

    window.show()
    steps = 80
    cfg = RunConfig(dataset="moons", n_samples=300, depth=4, width=16, batch_size=32, steps=steps, stats_every=5)
    window.builder.set_config(cfg)
    check(window.builder.is_valid(), "the builder accepts a small config")
    check(window.start_run(paused=True), "a run starts from the builder")
    window.run.send_command(SetBatchNorm(True))
    window.toggle_run()  # paused -> running, as the Run action does
    finished = wait_for(app, lambda: window.state not in (RUNNING, PAUSED), 300)
    check(finished and window.state == FINISHED, f"the run finishes (state: {window.state}"
          + (f"; {window.last_error}" if window.state == "failed" and window.last_error else "") + ")")
    mirror = window.mirror
    n_rows = len(mirror) if mirror is not None else 0
    check(n_rows == steps, f"the window's session holds every step ({n_rows} of {steps})")
    kinds = [e.kind for e in mirror.events] if mirror is not None else []
    check("batchnorm" in kinds, f"the live toggle reached the trainer as an event (events: {kinds})")
    check(any(kind == "batchnorm" for _, kind, _ in window.event_log.lines()), "the event log lists the toggle")
    window.refresh_plots_now()
    check(window.plots.has_data(), "the plots received data")

    with tempfile.TemporaryDirectory(prefix="gradsim-selftest-") as tmp:
        out = Path(tmp) / "session"
        window.exporter.last_export = ""
        window.last_error = ""
        window.exporter.export_to(str(out))
        done = wait_for(app, lambda: bool(window.exporter.last_export or window.last_error), 60)
        check(done and not window.last_error, f"the session exports through the worker {window.last_error}".rstrip())
        names = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
        check(names == ["events.csv", "layers.csv", "session.json", "steps.csv"], f"the export holds the four files ({names})")
    grabbed = window.grab()
    check(not grabbed.isNull() and grabbed.width() > 100, "the window can be grabbed as an image")
    engine_pid = window.worker.engine_pid
    check(window.worker.engine_mode == "process" and engine_pid not in (None, os.getpid()),
          f"training runs in its own engine process (mode: {window.worker.engine_mode or 'not started'}, pid {engine_pid})")
    window.close()
    check(not window.worker.isRunning(), "closing the window stops the training thread")
    check(engine_pid is None or not _process_alive(engine_pid), f"closing the window ends the engine process {engine_pid}")
    if failures:
        sys.stderr.write(f"{PROG}: self-test FAILED: {len(failures)} check(s): {'; '.join(failures)}\n")
        return 1
    print("self-test passed")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

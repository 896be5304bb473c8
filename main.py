"""GradSim's desktop app: ``python main.py`` (also the frozen app's entry point).

Flags: ``--preset NAME``, ``--steps N``, ``--screenshot FILE.png``, ``--self-test``,
``--version``; ``python main.py --help`` lists them.

Training runs in a child process (gradsim/service/child.py). ``freeze_support()``
comes first so that, in the PyInstaller-frozen app, a process started by
multiprocessing (the engine, the forkserver, the resource tracker) runs what it
was started for instead of a second window. The engine child never imports this
file (docs/architecture.md#the-service); nothing is imported at module level all
the same, so any other process multiprocessing starts from here does not pay for Qt.
"""
import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from ui.app import main

    sys.exit(main())

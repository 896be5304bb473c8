"""GradSim's desktop app: ``python main.py`` (also the frozen app's entry point).

Flags: ``--preset NAME``, ``--steps N``, ``--screenshot FILE.png``, ``--self-test``,
``--version``; ``python main.py --help`` lists them.

Training runs in a child process (gradsim/service/loop.py). ``freeze_support()``
comes first so that, in the PyInstaller-frozen app, a process started by
multiprocessing (the engine, the forkserver, the resource tracker) runs what it
was started for instead of a second window. Nothing is imported at module level:
a ``spawn``-started child imports this file as ``__mp_main__`` and must not pay
for Qt.
"""
import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from ui.app import main

    sys.exit(main())

"""GradSim's desktop app: ``python main.py`` (also the frozen app's entry point).

Flags: ``--preset NAME``, ``--steps N``, ``--screenshot FILE.png``, ``--self-test``,
``--version``; ``python main.py --help`` lists them.
"""
import sys

from ui.app import main

if __name__ == "__main__":
    sys.exit(main())

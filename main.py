"""GradSim desktop app: ``python main.py`` (also the frozen app's entry point)."""
import sys

from ui.app import main

if __name__ == "__main__":
    sys.exit(main())

"""The one place the packaging reads GradSim's version from: ``gradsim/__init__.py``.

Parsed as text (not imported) so the spec, the shell scripts and CI read it with any
Python and without the app's dependencies. ``python packaging/version.py`` prints it.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def read_version(root: Path = ROOT) -> str:
    text = (root / "gradsim" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', text, re.MULTILINE)
    if not match:
        raise SystemExit("packaging: no __version__ = '...' line in gradsim/__init__.py")
    return match.group(1)


if __name__ == "__main__":
    sys.stdout.write(read_version() + "\n")

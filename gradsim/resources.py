"""Find the ``resources/`` folder from a source checkout, an installed wheel or a frozen bundle."""
from __future__ import annotations

import os
import sys
from pathlib import Path


def resource_root() -> Path:
    """The ``resources`` folder (GRADSIM_RESOURCES overrides, for tests and packagers)."""
    env = os.environ.get("GRADSIM_RESOURCES")
    candidates = []
    if env:
        candidates.append(Path(env))
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:  # PyInstaller bundle: the spec copies resources/ next to the code
        candidates.append(Path(frozen) / "resources")
    candidates.append(Path(__file__).resolve().parent.parent / "resources")  # source checkout
    candidates.append(Path(sys.prefix) / "share" / "gradsim" / "resources")  # installed wheel
    for c in candidates:
        if (c / "presets").is_dir():
            return c
    return candidates[0]


def resource_path(*parts: str) -> Path:
    """Path of a file under ``resources/`` (it may not exist; callers say so)."""
    return resource_root().joinpath(*parts)

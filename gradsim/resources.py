"""Find GradSim's data files from a source checkout, an installed wheel or a frozen bundle.

One helper for every case (Dangerzone's ``util.get_resource_path()`` does the
same): the top-level ``resources/`` folder is shipped in the wheel as the
package ``gradsim_resources`` (pyproject.toml maps it) and found through
``importlib.resources``; a PyInstaller bundle carries it as ``_MEIPASS/resources``.
"""
from __future__ import annotations

import importlib.resources
import os
import sys
from pathlib import Path

#: The installed name of the top-level resources/ folder.
PACKAGE = "gradsim_resources"


def _installed() -> Path | None:
    """The folder of the ``gradsim_resources`` package (wheel or editable install), if any."""
    try:
        root = importlib.resources.files(PACKAGE)
    except ModuleNotFoundError:
        return None
    # Wheels install unpacked, so this is a real folder; anything else (a zip) is not used.
    return root if isinstance(root, Path) else None


def resource_root() -> Path:
    """The ``resources`` folder (GRADSIM_RESOURCES overrides, for tests and packagers)."""
    candidates: list[Path] = []
    env = os.environ.get("GRADSIM_RESOURCES")
    if env:
        candidates.append(Path(env))
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:  # PyInstaller bundle: the spec copies resources/ next to the code
        candidates.append(Path(frozen) / "resources")
    installed = _installed()
    if installed is not None:
        candidates.append(installed)
    candidates.append(Path(__file__).resolve().parent.parent / "resources")  # a checkout without an install
    for c in candidates:
        if (c / "presets").is_dir():
            return c
    return candidates[0]


def resource_path(*parts: str) -> Path:
    """Path of a file under ``resources/`` (it may not exist; callers say so)."""
    return resource_root().joinpath(*parts)

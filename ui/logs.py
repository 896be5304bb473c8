"""Logging for the window: a rotating log file in the platform's app-data folder.

Why: an error a student meets in a lab must reach whoever fixes it. Every broad
``except`` logs its traceback here, Help > Open log folder shows the file, and
the error dialog's "Copy details" puts the details on the clipboard. The
folder comes from Qt's ``QStandardPaths`` (AppDataLocation), so it is the
platform's usual place (``~/.local/share/GradSim/GradSim/logs`` on Linux).
The engine (gradsim/) only logs to named loggers; it never configures them.
"""
from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QStandardPaths

LOG_NAME = "gradsim.log"
MAX_BYTES = 1_000_000
BACKUPS = 3
FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s]: %(message)s"

_handler: logging.Handler | None = None


def log_dir() -> Path:
    """The folder of the log file (GRADSIM_LOG_DIR overrides it, e.g. for tests)."""
    override = os.environ.get("GRADSIM_LOG_DIR")
    if override:
        return Path(override)
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or tempfile.gettempdir()) / "logs"


def log_file() -> Path:
    return log_dir() / LOG_NAME


def setup_logging(level: int = logging.INFO) -> Path | None:
    """Send the root logger's records to the rotating file (once); returns its path, or None
    when the folder cannot be written (then records go to stderr only, as before)."""
    global _handler
    if _handler is not None:
        return Path(getattr(_handler, "baseFilename", "")) or None
    path = log_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")
    except OSError as exc:
        sys.stderr.write(f"gradsim: cannot write the log file {path}: {exc.strerror or exc}\n")
        return None
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > level:
        root.setLevel(level)
    _handler = handler
    sys.excepthook = _log_uncaught
    return path


def _log_uncaught(exc_type, exc, tb) -> None:  # sys.excepthook signature
    """An exception nobody caught (e.g. in a slot): logged with its traceback, then shown as usual."""
    logging.getLogger("gradsim.uncaught").error("uncaught exception", exc_info=(exc_type, exc, tb))
    sys.__excepthook__(exc_type, exc, tb)

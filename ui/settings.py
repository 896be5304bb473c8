"""QSettings helpers: one place for the settings file, its keys and safe reading.

Why a module: every stored value is read with a type and a fallback, so a
corrupt or hand-edited settings file degrades to defaults with a message
instead of crashing the window (Dangerzone's ``settings.py`` does the same).
Keys are ``"group/key"`` names (Orange's ``canvas/__main__.py``). The
window's default size lives here too: it is what the saved geometry falls back to.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QByteArray, QSettings, QSize
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMainWindow

from gradsim.commands import CommandError, Scheduled, parse_event
from gradsim.config import ConfigError, RunConfig

ORGANIZATION = "GradSim"
APPLICATION = "GradSim"

KEY_GEOMETRY = "window/geometry"
KEY_STATE = "window/state"
KEY_CONFIG = "builder/config"
KEY_PRESET = "builder/preset"
KEY_SCHEDULE = "builder/schedule"
KEY_REDRAW = "plots/redraw_mode"
KEY_EXPORT_DIR = "export/last_dir"
KEY_STUDENT = "exercise/student"  # the name or ID a student types for submissions

log = logging.getLogger(__name__)

#: Bumped when the saved window layout (docks, toolbars) changes incompatibly.
STATE_VERSION = 1


def settings() -> QSettings:
    """The application's settings, always in INI format (same on every platform, easy to inspect).

    Tests redirect it with ``QSettings.setPath(IniFormat, UserScope, tmp_path)``.
    """
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


def read_bytes(s: QSettings, key: str) -> Optional[QByteArray]:
    """A stored QByteArray, or None when missing or of the wrong type."""
    try:
        value = s.value(key, None)
    except Exception:  # a corrupt entry must never stop the window
        log.warning("settings: %s could not be read; using the default", key, exc_info=True)
        return None
    if isinstance(value, QByteArray) and not value.isEmpty():
        return value
    if isinstance(value, (bytes, bytearray)) and value:
        return QByteArray(bytes(value))
    return None


def read_str(s: QSettings, key: str, default: str = "") -> str:
    try:
        value = s.value(key, default, type=str)
    except Exception:  # a corrupt entry must never stop the window
        log.warning("settings: %s could not be read; using the default", key, exc_info=True)
        return default
    return value if isinstance(value, str) else default


def load_config(s: QSettings) -> tuple[RunConfig, Optional[str]]:
    """The last configuration, or RunConfig's defaults and a message saying why not."""
    text = read_str(s, KEY_CONFIG)
    if not text:
        return RunConfig(), None
    try:
        return RunConfig.from_json(text, where="saved configuration"), None
    except ConfigError as exc:
        return RunConfig(), f"The saved configuration could not be used ({exc}); using the defaults."


def save_config(s: QSettings, config: RunConfig) -> None:
    s.setValue(KEY_CONFIG, json.dumps(config.to_dict(), sort_keys=True))


def load_schedule(s: QSettings) -> tuple[tuple[Scheduled, ...], Optional[str]]:
    """The scheduled events of the last preset, as ``STEP:KEY=VALUE`` strings in the file."""
    text = read_str(s, KEY_SCHEDULE)
    if not text:
        return (), None
    try:
        items = json.loads(text)
        if not isinstance(items, list):
            raise ValueError("not a list")
        return tuple(parse_event(str(item)) for item in items), None
    except (ValueError, CommandError) as exc:
        return (), f"The saved scheduled events could not be used ({exc}); none are scheduled."


def save_schedule(s: QSettings, schedule: tuple[Scheduled, ...]) -> None:
    s.setValue(KEY_SCHEDULE, json.dumps([item.text() for item in schedule]))


def save_builder(s: QSettings, config: Optional[RunConfig], schedule: tuple[Scheduled, ...], preset: str) -> None:
    """What the builder shows: its config, the preset's scheduled events, the preset's name."""
    if config is not None:
        save_config(s, config)
    save_schedule(s, schedule)
    s.setValue(KEY_PRESET, preset)


@dataclass
class Restored:
    """What the window gets back from the settings file, and what could not be used."""

    config: RunConfig
    config_ok: bool = True  # the saved config was used (else: defaults, no schedule or preset)
    schedule: tuple[Scheduled, ...] = ()
    preset: str = ""
    export_dir: str = ""
    redraw_mode: str = ""
    notes: list[str] = field(default_factory=list)


def default_size(window: QMainWindow) -> QSize:
    """The window's size when no geometry is saved: 1500x940, shrunk to the screen's free area
    (on a 1280x720 lab laptop the window must fit on screen, not hang off its edge). The
    offscreen platform (tests, headless screenshots) has no real screen: it keeps the full size."""
    size = QSize(1500, 940)
    screen = window.screen()
    if screen is None or QGuiApplication.platformName() == "offscreen":
        return size
    return size.boundedTo(screen.availableGeometry().size())


def restore_window(window: QMainWindow) -> Restored:
    """Restore geometry and dock layout onto ``window``; read the rest for the window to apply.

    Every value falls back to its default with a note (Dangerzone's settings do
    the same): a corrupt or hand-edited file never stops the window.
    """
    s = settings()
    broken = []
    geometry = read_bytes(s, KEY_GEOMETRY)
    if geometry is not None and not window.restoreGeometry(geometry):
        broken.append("window geometry")
    state = read_bytes(s, KEY_STATE)
    if state is not None and not window.restoreState(state, STATE_VERSION):
        broken.append("dock layout")
    config, msg = load_config(s)
    schedule, msg2 = load_schedule(s)
    out = Restored(
        config,
        msg is None,
        schedule if msg is None else (),
        read_str(s, KEY_PRESET) if msg is None else "",
        read_str(s, KEY_EXPORT_DIR),
        read_str(s, KEY_REDRAW),
    )
    out.notes = [m for m in (msg, msg2) if m]
    if broken:
        out.notes.append("The saved " + " and ".join(broken) + " could not be restored; using the defaults.")
    for note in out.notes:
        log.warning("settings: %s", note)
    return out


def save_window(window: QMainWindow, config: Optional[RunConfig], schedule: tuple[Scheduled, ...], preset: str, export_dir: str, redraw_mode: str) -> None:
    """Everything the window remembers, written at once (at exit)."""
    s = settings()
    s.setValue(KEY_GEOMETRY, window.saveGeometry())
    s.setValue(KEY_STATE, window.saveState(STATE_VERSION))
    save_builder(s, config, schedule, preset)
    s.setValue(KEY_EXPORT_DIR, export_dir)
    s.setValue(KEY_REDRAW, redraw_mode)
    s.sync()


def default_export_dir() -> str:
    return str(Path.home())

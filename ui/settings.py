"""QSettings helpers: one place for the settings file, its keys and safe reading.

Why a module: every stored value is read with a type and a fallback, so a
corrupt or hand-edited settings file degrades to defaults with a message
instead of crashing the window (Dangerzone's ``settings.py`` does the same).
Keys are ``"group/key"`` names (Orange's ``canvas/__main__.py``).
"""
from __future__ import annotations

import json
from typing import Any, Optional

from PySide6.QtCore import QByteArray, QSettings

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
    except Exception:  # noqa: BLE001 - a corrupt entry must never stop the window
        return None
    if isinstance(value, QByteArray) and not value.isEmpty():
        return value
    if isinstance(value, (bytes, bytearray)) and value:
        return QByteArray(bytes(value))
    return None


def read_str(s: QSettings, key: str, default: str = "") -> str:
    try:
        value = s.value(key, default, type=str)
    except Exception:  # noqa: BLE001
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


def save_value(s: QSettings, key: str, value: Any) -> None:
    s.setValue(key, value)

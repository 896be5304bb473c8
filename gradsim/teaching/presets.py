"""Presets (resources/presets/*.json) and run files: a preset, a bare config or a session.json.

A preset is JSON merged over RunConfig's defaults, with a ``schema_version``
and a migration step so older files keep loading as fields are renamed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..commands import CommandError, Scheduled, command_from_event, parse_event
from ..config import ConfigError, RunConfig
from ..events import COMMAND_KINDS
from ..metrics import PARAM_METRICS
from ..resources import resource_path
from ..safe_json import parse_json
from ..session.io import READABLE_FORMATS

SCHEMA_VERSION = 1
MAX_RUN_FILE_BYTES = 10 * 1024 * 1024


#: Per-layer metrics a preset may open the plots on ("view": {"metric": ...}).
VIEW_METRICS = PARAM_METRICS + ("act_grad_norm",)


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    config: RunConfig
    events: tuple[Scheduled, ...]
    #: The per-layer metric that shows this preset's story; the window opens its
    #: plots on it ("" keeps what the user has). Exploding-relu's explosion, for
    #: one, is visible in ||dL/dz|| and flat in ||dL/dW||.
    view_metric: str = ""


def _view_metric(data: Any, where: str) -> str:
    view = data.get("view", {})
    if not isinstance(view, dict):
        raise ConfigError(f"{where}: 'view' must be an object like {{\"metric\": \"act_grad_norm\"}}")
    metric = view.get("metric", "")
    if metric and metric not in VIEW_METRICS:
        raise ConfigError(f"{where}: view metric {metric!r} is not known; allowed: {', '.join(VIEW_METRICS)}")
    return str(metric)


def migrate_preset(data: dict[str, Any]) -> dict[str, Any]:
    """Bring an older preset up to SCHEMA_VERSION (version 0 had a top-level ``clip`` string)."""
    version = data.get("schema_version", 0)
    if version == 0:
        data = dict(data)
        cfg = dict(data.get("config", {}))
        clip = cfg.pop("clip", None)
        if isinstance(clip, str):
            mode, _, thr = clip.partition(":")
            cfg["clip_mode"] = mode
            if thr:
                cfg["clip_threshold"] = float(thr)
        data["config"] = cfg
        data["schema_version"] = 1
    return data


def preset_names() -> list[str]:
    folder = resource_path("presets")
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def load_preset(name: str) -> Preset:
    path = resource_path("presets", f"{name}.json")
    if not path.is_file():
        raise ConfigError(f"preset {name!r} is not known; allowed: {', '.join(preset_names()) or '(no presets found)'}")
    return preset_from_file(path)


def _read_json(path: Path) -> Any:
    try:
        size = path.stat().st_size
        if size > MAX_RUN_FILE_BYTES:
            raise ConfigError(f"{path}: {size:,} bytes is too large for a config ({MAX_RUN_FILE_BYTES:,} at most)")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        return _read_json(path / "session.json")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    try:
        return parse_json(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} line {exc.lineno}: not valid JSON ({exc.msg})") from None


def _events(items: Any, where: str) -> tuple[Scheduled, ...]:
    if not isinstance(items, list):
        raise ConfigError(f"{where}: 'events' must be a list")
    out = []
    for item in items:
        try:
            if isinstance(item, str):
                out.append(parse_event(item))
            elif isinstance(item, dict):  # session.json form {step, kind, value}
                kind, step = item.get("kind"), item.get("step")
                if kind not in COMMAND_KINDS:
                    continue  # start, pause, diverged, note: annotations, not commands
                if isinstance(step, bool) or not isinstance(step, int) or step < 0:
                    raise ConfigError(f"{where}: event step {step!r} must be a whole number >= 0")
                cmd = command_from_event(kind, str(item.get("value", "")))
                assert cmd is not None
                out.append(Scheduled(step, cmd))
            else:
                raise ConfigError(f"{where}: event {item!r} must be a 'STEP:KEY=VALUE' string")
        except CommandError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return tuple(out)


def preset_from_file(path: Path) -> Preset:
    data = _read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("config", {}), dict):
        raise ConfigError(f"{path}: a preset is a JSON object with 'name', 'description', 'config' and 'events'")
    data = migrate_preset(data)
    cfg = RunConfig.from_dict(data.get("config", {}), where=str(path))
    return Preset(str(data.get("name", path.stem)), str(data.get("description", "")), cfg, _events(data.get("events", []), str(path)),
                  _view_metric(data, str(path)))


def parse_run_file(path: str | Path) -> tuple[RunConfig, tuple[Scheduled, ...]]:
    """(config, schedule) from a preset, a bare config JSON, or an exported session (file or folder)."""
    path = Path(path)
    data = _read_json(path)
    where = str(path)
    fmt = data.get("format") if isinstance(data, dict) else None
    if fmt is not None:
        return session_run(data, where)
    if isinstance(data, dict) and ("schema_version" in data or "config" in data):
        p = preset_from_file(path if path.is_file() else path / "session.json")
        return p.config, p.events
    return RunConfig.from_dict(data, where=where), ()


def session_run(data: Any, where: str = "session.json") -> tuple[RunConfig, tuple[Scheduled, ...]]:
    """(config, schedule) of an exported session.json's contents: what a replay runs.

    Annotations (start, pause, note, diverged) are not commands and are left out.
    """
    fmt = data.get("format") if isinstance(data, dict) else None
    if fmt not in READABLE_FORMATS:
        raise ConfigError(f"{where}: format {fmt!r} is not supported; expected one of {', '.join(map(repr, READABLE_FORMATS))}")
    return RunConfig.from_dict(data.get("config"), where=where), _events(data.get("events", []), where)

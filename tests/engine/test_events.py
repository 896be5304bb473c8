"""gradsim.events is the one list of event kinds: the parsers, the writers and the readers agree with it."""
from __future__ import annotations

import ast
from pathlib import Path

from gradsim import commands, events
from gradsim.grading import replay

ROOT = Path(__file__).resolve().parents[2]


def test_command_kinds_are_the_command_parsers():
    assert list(commands.PARSERS) == list(events.COMMAND_KINDS)
    assert tuple(commands.COMMAND_KINDS) == events.COMMAND_KINDS


def test_families_are_disjoint_and_every_kind_is_described():
    assert not set(events.COMMAND_KINDS) & set(events.ANNOTATION_KINDS)
    assert list(events.EVENT_KINDS) == [*events.COMMAND_KINDS, *events.ANNOTATION_KINDS]
    blank = [k for k, text in events.EVENT_KINDS.items() if not text.strip()]
    assert blank == []
    assert set(events.TRAINER_ANNOTATIONS) <= set(events.ANNOTATION_KINDS)
    assert all(events.is_command(k) for k in events.COMMAND_KINDS)
    assert not any(events.is_command(k) for k in events.ANNOTATION_KINDS)


def _literal_kinds_written(folder: Path) -> dict[str, str]:
    """kind -> where, for every ``add_event(step, "kind", ...)`` with a literal kind in the sources."""
    found: dict[str, str] = {}
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_event"
                    and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
                found[node.args[1].value] = f"{path.relative_to(ROOT)}:{node.lineno}"
    return found


def test_every_kind_the_engine_writes_is_registered():
    written = _literal_kinds_written(ROOT / "gradsim")
    # The engine writes each annotation somewhere, or the window sends it (commands.Annotate);
    # a kind nobody writes would be dead weight here.
    assert set(events.ANNOTATION_KINDS) <= set(written) | set(commands.WINDOW_ANNOTATIONS)
    unknown = {k: where for k, where in written.items() if k not in events.EVENT_KINDS}
    assert unknown == {}


def test_replay_carries_over_exactly_the_window_annotations():
    assert set(replay.ANNOTATIONS) == {"pause", "note", "prediction"}

"""Code comments point to documents a user has: never to the design notes kept
outside the repository ("DESIGN.md") nor to issue numbers of the tracker, which
a clone does not carry. docs/architecture.md is where the reasons live."""
from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
FOLDERS = ("gradsim", "ui", "tests", "benchmarks", "packaging")
OUTSIDE = re.compile(r"DESIGN\.md|\bissues? \d+\b")


def pointers(paths: list[pathlib.Path]) -> list[str]:
    here = pathlib.Path(__file__).resolve()
    return [
        f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
        for p in paths
        if p.resolve() != here
        for i, line in enumerate(p.read_text().splitlines(), start=1)
        if OUTSIDE.search(line)
    ]


def test_no_comment_points_outside_the_repository():
    files = [p for d in FOLDERS for p in sorted((ROOT / d).rglob("*.py")) if "build" not in p.parts] + [ROOT / "main.py"]
    assert pointers(files) == []


def test_the_check_sees_a_pointer(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("# see issue 13\nx = 1\n")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert pointers([f]) == ["x.py:1: # see issue 13"]
    finally:
        ROOT = saved

"""No silent overwrites: run, sweep and check refuse an existing output (one line, exit 2,
nothing changed on disk) unless --overwrite; check without --csv writes a new file."""
import csv
import json
import os
from datetime import datetime
from pathlib import Path

import pytest

from gradsim.cli import check as check_cmd
from gradsim.cli import run as run_cmd
from gradsim.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
EXERCISE = ROOT / "resources" / "exercises" / "01-vanishing-sigmoid.toml"
TINY = ["--dataset", "moons", "--depth", "3", "--width", "8", "--batch-size", "32", "--steps", "4", "--stats-every", "2"]


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes (and every folder), to show nothing changed."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root) + "/"] = b""
        for f in filenames:
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, root)] = Path(p).read_bytes()
    return out


def _one_refusal_line(capsys, path) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("gradsim: error:") and repr(str(path)) in err[0] and "use --overwrite to replace it" in err[0]
    return err[0]


def _no_training(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("the run started although its output was refused")

    monkeypatch.setattr(run_cmd, "run_one", refuse)


def test_run_refuses_a_non_empty_out_folder_before_training(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run1"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    before = _snapshot(tmp_path)
    _no_training(monkeypatch)
    assert main(["run", *TINY, "--out", str(out)]) == 2
    assert "the folder exists and is not empty" in _one_refusal_line(capsys, out)
    assert _snapshot(tmp_path) == before


def test_run_refuses_an_existing_zip(tmp_path, monkeypatch, capsys):
    out = tmp_path / "r.zip"
    out.write_bytes(b"an older export")
    _no_training(monkeypatch)
    assert main(["run", *TINY, "--out", str(out)]) == 2
    assert "the file exists" in _one_refusal_line(capsys, out)
    assert out.read_bytes() == b"an older export" and sorted(os.listdir(tmp_path)) == ["r.zip"]


def test_run_refuses_a_file_where_the_folder_goes(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run1"
    out.write_text("x")
    _no_training(monkeypatch)
    assert main(["run", *TINY, "--out", str(out), "--overwrite"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"gradsim: error: --out {str(out)!r} exists and is not a folder"]
    assert out.read_text() == "x"


def test_run_refuses_before_resuming_a_checkpoint(tmp_path, monkeypatch, capsys):
    out = tmp_path / "part2"
    out.mkdir()
    (out / "steps.csv").write_text("old")
    import gradsim.train.checkpoint as ckpt

    monkeypatch.setattr(ckpt, "load_checkpoint", lambda *a, **k: pytest.fail("the checkpoint was read although --out was refused"))
    assert main(["run", "--resume", str(tmp_path / "c.ckpt"), "--out", str(out)]) == 2
    _one_refusal_line(capsys, out)
    assert (out / "steps.csv").read_text() == "old"


def test_run_into_an_empty_folder_and_with_overwrite(tmp_path):
    out = tmp_path / "run1"
    out.mkdir()  # an empty folder made beforehand is not an overwrite
    assert main(["run", *TINY, "--seed", "1", "--out", str(out)]) == 0
    assert json.loads((out / "session.json").read_text())["config"]["seed"] == 1
    assert main(["run", *TINY, "--seed", "2", "--out", str(out)]) == 2
    assert json.loads((out / "session.json").read_text())["config"]["seed"] == 1
    assert main(["run", *TINY, "--seed", "2", "--out", str(out), "--overwrite"]) == 0
    assert json.loads((out / "session.json").read_text())["config"]["seed"] == 2
    assert sorted(os.listdir(out)) == ["events.csv", "layers.csv", "session.json", "steps.csv"]
    z = tmp_path / "r.zip"
    assert main(["run", *TINY, "--out", str(z)]) == 0
    first = z.read_bytes()
    assert main(["run", *TINY, "--seed", "5", "--out", str(z), "--overwrite"]) == 0
    assert z.read_bytes() != first


SWEEP = ["sweep", "--dataset", "moons", "--depth", "2,3", "--width", "4", "--steps", "2", "--jobs", "1"]


def test_sweep_refuses_a_non_empty_out_folder(tmp_path, capsys):
    out = tmp_path / "sw"
    assert main([*SWEEP, "--out", str(out)]) == 0
    capsys.readouterr()
    before = _snapshot(tmp_path)
    assert main([*SWEEP, "--width", "5", "--out", str(out)]) == 2
    _one_refusal_line(capsys, out)
    assert _snapshot(tmp_path) == before
    assert main([*SWEEP, "--width", "5", "--out", str(out), "--overwrite"]) == 0
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["width"] for r in rows] == ["5", "5"]
    for r in rows:
        assert json.loads((out / r["folder"] / "session.json").read_text())["config"]["width"] == 5


def _check(tmp_path, *extra):
    # A missing submission grades (to an error row) without a replay: the CSV is still written.
    return main(["check", str(EXERCISE), str(tmp_path / "missing"), "--jobs", "1", *extra])


def test_check_refuses_an_existing_csv_before_grading(tmp_path, capsys):
    scores = tmp_path / "scores.csv"
    scores.write_text("last week's grades\n")
    before = _snapshot(tmp_path)
    assert _check(tmp_path, "--csv", str(scores), "--feedback", str(tmp_path / "pages")) == 2
    err = _one_refusal_line(capsys, scores)
    assert "the file exists" in err
    assert _snapshot(tmp_path) == before  # no feedback folder either
    assert _check(tmp_path, "--csv", str(scores), "--overwrite") == 0
    rows = list(csv.DictReader(scores.open()))
    assert len(rows) == 1 and rows[0]["submission"] == str(tmp_path / "missing") and "no such submission" in rows[0]["problems"]


def test_check_without_csv_writes_a_new_timestamped_file_never_replacing_one(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(check_cmd, "_now", lambda: datetime(2026, 1, 2, 3, 4, 5))
    taken = tmp_path / "scores-20260102-030405.csv"
    taken.write_text("graded earlier this second\n")
    written = []
    for _ in range(2):
        assert _check(tmp_path) == 0
        last = capsys.readouterr().out.strip().splitlines()[-1]
        assert last.startswith("Scores written to ")
        written.append(last.removeprefix("Scores written to "))
    assert written == ["scores-20260102-030405-2.csv", "scores-20260102-030405-3.csv"]
    assert taken.read_text() == "graded earlier this second\n"
    for name in written:
        rows = list(csv.DictReader((tmp_path / name).open()))
        assert [r["submission"] for r in rows] == [str(tmp_path / "missing")]
    assert not (tmp_path / "scores.csv").exists()
    assert sorted(os.listdir(tmp_path)) == sorted([taken.name, *written])  # no temporary file left


def test_write_new_file_keeps_a_file_that_exists(tmp_path):
    from gradsim.cli.common import write_new_file

    p = tmp_path / "a.csv"
    assert write_new_file(p, "one\n") is True and p.read_text() == "one\n"
    assert write_new_file(p, "two\n") is False and p.read_text() == "one\n"
    assert os.listdir(tmp_path) == ["a.csv"]

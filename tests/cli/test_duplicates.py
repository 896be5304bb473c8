"""check flags one student name on several submissions and copied run files, in the table and the CSV."""
import csv
import json
import shutil

import pytest

from gradsim.cli.duplicates import duplicate_flags
from gradsim.cli.main import main
from gradsim.grading.submission import SubmissionFiles
from gradsim.teaching.exercises import parse_exercise, write_submission
from gradsim.train.trainer import Trainer

EXERCISE = '''
id = "dup"
title = "Duplicates"
preset = "vanishing-sigmoid"
config = { depth = 3, width = 6, n_samples = 64, batch_size = 32, steps = 4, stats_every = 2, dataset = "moons" }
[[objectives]]
id = "ran"
kind = "no_divergence"
steps = 4
'''


def _sub(path, **files):
    return SubmissionFiles(path, {k.replace("_", "."): v for k, v in files.items()})


def test_flags_name_the_other_submissions():
    run_a = {"steps_csv": b"step,loss\n0,1.5\n", "layers_csv": b"step,layer\n0,1\n"}
    subs = [
        _sub("s/alice", **run_a),
        _sub("s/al2", **run_a),                                          # alice's files under another name
        _sub("s/bob", steps_csv=run_a["steps_csv"], layers_csv=b"other"),  # one file the same: not a copy
        _sub("s/eve", **run_a),
        _sub("s/none1", steps_csv=b"", layers_csv=b""),                  # empty files match nothing
        _sub("s/none2", steps_csv=b"", layers_csv=b""),
        _sub("s/x", steps_csv=b"ab", layers_csv=b"c"),                   # the two files' boundary counts
        _sub("s/y", steps_csv=b"a", layers_csv=b"bc"),
    ]
    students = ["Alice  Example", "alice example", "Bob", "", "", "", "Bob", "x"]
    labels = ["alice", "al2", "bob", "eve", "none1", "none2", "x", "y"]
    flags = duplicate_flags(subs, students, labels)
    same = "identical steps.csv and layers.csv to"
    assert flags == [
        ["same student name as al2", f"{same} al2, eve"],
        ["same student name as alice", f"{same} alice, eve"],
        ["same student name as x"],
        [f"{same} alice, al2"],
        [],
        [],
        ["same student name as bob"],
        [],
    ]


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    root = tmp_path_factory.mktemp("klass")
    (root / "ex.toml").write_text(EXERCISE)
    ex = parse_exercise(EXERCISE, "ex.toml")

    def honest(folder, student):
        t = Trainer(ex.config, ex.events)
        t.run()
        return write_submission(root / folder, ex, t.session, {}, student=student)

    alice = honest("alice", "Alice Example")
    shutil.copytree(alice, root / "mallory")  # copied files, another name typed in
    meta = json.loads((root / "mallory" / "submission.json").read_text())
    meta["student"] = "Mallory"
    (root / "mallory" / "submission.json").write_text(json.dumps(meta))
    honest("carol", "alice example")  # her own run, alice's name
    honest("dave", "Dave")
    return root


def test_check_prints_and_writes_the_flags(klass, tmp_path, capsys):
    out_csv = tmp_path / "scores.csv"
    subs = [str(klass / n) for n in ("alice", "mallory", "carol", "dave")]
    assert main(["check", str(klass / "ex.toml"), *subs, "--csv", str(out_csv), "--jobs", "1"]) == 0
    printed = capsys.readouterr().out.splitlines()
    rows = list(csv.DictReader(out_csv.open()))
    assert list(rows[0])[:10] == ["student", "points", "max_points", "submission", "exercise", "score", "verified", "problems", "flags", "ran"]
    copy = "identical steps.csv and layers.csv to"
    assert [r["flags"] for r in rows] == [
        f"same student name as carol; {copy} mallory",
        f"{copy} alice",
        "same student name as alice",
        "",
    ]
    assert [r["score"] for r in rows] == ["1.0000"] * 4  # flags are for the teacher: no score changes

    def notes_under(name):
        i = next(k for k, line in enumerate(printed) if line.startswith(name + " "))
        block = []
        for line in printed[i + 1:]:
            if not line.startswith(" "):
                break
            block.append(line.strip())
        return block

    assert notes_under("alice") == ["? same student name as carol", f"? {copy} mallory"]
    assert notes_under("mallory") == [f"? {copy} alice"]
    assert notes_under("carol") == ["? same student name as alice"]
    assert notes_under("dave") == []

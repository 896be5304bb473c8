"""check prints the class report's flags (one student named twice, copied data) in its table and its CSV."""
import csv
import json
import shutil

import pytest

from gradsim.cli.main import main
from gradsim.commands import parse_event
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


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    root = tmp_path_factory.mktemp("klass")
    (root / "ex.toml").write_text(EXERCISE)
    ex = parse_exercise(EXERCISE, "ex.toml")

    def honest(folder, student, toggle=None):
        t = Trainer(ex.config, tuple(ex.events) + ((parse_event(toggle),) if toggle else ()))
        t.run()
        return write_submission(root / folder, ex, t.session, {}, student=student)

    alice = honest("alice", "Alice Example")
    shutil.copytree(alice, root / "mallory")  # copied files, another name typed in
    meta = json.loads((root / "mallory" / "submission.json").read_text())
    meta["student"] = "Mallory"
    (root / "mallory" / "submission.json").write_text(json.dumps(meta))
    honest("carol", "alice  EXAMPLE")  # her own run, alice's name
    honest("dave", "Dave")
    honest("erin", "Erin", toggle="2:lr=0.01")  # the same choice of their own at the same step
    honest("frank", "Frank", toggle="2:lr=0.01")
    shutil.copytree(alice, root / "late" / "alice")  # alice again, from another folder
    return root


def test_check_prints_and_writes_the_flags(klass, tmp_path, capsys):
    out_csv = tmp_path / "scores.csv"
    names = ["alice", "mallory", "carol", "dave", "erin", "frank", "late/alice"]
    assert main(["check", str(klass / "ex.toml"), *(str(klass / n) for n in names), "--csv", str(out_csv), "--jobs", "1"]) == 0
    printed = capsys.readouterr().out.splitlines()
    rows = list(csv.DictReader(out_csv.open()))
    assert list(rows[0])[:10] == ["student", "points", "max_points", "submission", "exercise", "score", "verified", "problems", "flags", "ran"]
    a1, a2 = str(klass / "alice"), str(klass / "late" / "alice")  # two folders named alice: named by path
    same_run = "same run (config, seed and events) as"
    expected = [
        [f"same student name as carol, {a2}", f"identical data as mallory, {a2}"],
        [f"identical data as {a1}, {a2}"],
        [f"same student name as {a1}, {a2}"],
        [],
        [f"{same_run} frank"],
        [f"{same_run} erin"],
        [f"same student name as {a1}, carol", f"identical data as {a1}, mallory"],
    ]
    assert [r["flags"] for r in rows] == ["; ".join(f) for f in expected]
    assert [r["score"] for r in rows] == ["1.0000"] * len(names)  # flags are for the teacher: no score changes

    blocks = []  # the "?" lines under each row of the table, in order
    start = next(k for k, line in enumerate(printed) if line.startswith("submission "))
    for line in printed[start + 1:]:
        if line.startswith("Scores written"):
            break
        if line.startswith(" "):
            blocks[-1][1].append(line.strip())
        else:
            blocks.append((line.split()[0], []))
    assert [b[0] for b in blocks] == [n.split("/")[-1] for n in names]
    assert [b[1] for b in blocks] == [[f"? {f}" for f in e] for e in expected]


def test_labels_tell_apart_submissions_of_the_same_name():
    from gradsim.cli.check import _labels
    from gradsim.grading.submission import SubmissionFiles

    subs = [SubmissionFiles(p) for p in ("a/x", "b/x", "y.zip", "a/x", "z")]
    assert _labels(subs) == ["a/x", "b/x", "y.zip", "a/x (#2)", "z"]


def test_report_writes_the_class_page_with_the_same_flags_and_refuses_to_replace_it(klass, tmp_path, capsys):
    report, pages = tmp_path / "report", tmp_path / "report" / "feedback"
    args = ["check", str(klass / "ex.toml"), *(str(klass / n) for n in ("alice", "mallory", "dave")), "--jobs", "1",
            "--csv", str(tmp_path / "s.csv"), "--report", str(report)]
    assert main([*args, "--feedback", str(pages)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == f"Scores written to {tmp_path / 's.csv'}; feedback pages in {pages}/; class report {report / 'index.html'}"
    html = (report / "index.html").read_text()
    assert "3 submission(s)" in html and "identical data as mallory" in html and "identical data as alice" in html
    assert '<a href="feedback/dave.html">dave</a>' in html and (pages / "dave.html").is_file()
    before = html
    assert main([*args, "--overwrite"]) == 0  # --overwrite replaces both the CSV and the page
    capsys.readouterr()
    rewritten = (report / "index.html").read_text()
    assert "feedback/dave.html" not in rewritten and rewritten != before  # written again without --feedback: no links
    (tmp_path / "s.csv").unlink()
    assert main(args) == 2  # the page is there: refused before grading, nothing written
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"gradsim: error: --report {str(report / 'index.html')!r}: the file exists; use --overwrite to replace it"]
    assert not (tmp_path / "s.csv").exists()
    assert (report / "index.html").read_text() == rewritten

"""The class report: its numbers are the grades', its flags find copies and duplicate names."""
from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from gradsim.commands import parse_event
from gradsim.grading.class_report import entry_for, find_flags, objective_rates, wrong_answers, write_class_report
from gradsim.grading.grader import grade_files
from gradsim.grading.submission import read_submission
from gradsim.teaching.exercises import parse_exercise, write_submission
from gradsim.train.trainer import Trainer

from .test_grading import TINY


@pytest.fixture(scope="module")
def tiny():
    return parse_exercise(TINY, "tiny.toml")


def _submit(ex, folder, student, answers=None, seed=None, toggle=None):
    cfg = ex.config if seed is None else ex.config.__class__(**{**ex.config.to_dict(), "seed": seed})
    events = tuple(ex.events) + ((parse_event(toggle),) if toggle else ())
    t = Trainer(cfg, tuple(sorted(events, key=lambda s: s.step)))
    t.run()
    ans = answers if answers is not None else {a.id: a.quantity.value(t.session) for a in ex.answers}
    write_submission(folder, ex, t.session, ans, student=student)
    return folder


@pytest.fixture(scope="module")
def graded_class(tiny, tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    folders = [
        _submit(tiny, root / "ann", "Ann"),
        _submit(tiny, root / "bob", "Bob", answers={"q": 123.0}),  # a wrong answer
        _submit(tiny, root / "cy", "Cy", answers={"q": 123.0}, seed=7),  # the same wrong answer, another seed
    ]
    shutil.copytree(root / "ann", root / "ann-copy")  # a copy handed in under another name...
    folders.append(root / "ann-copy")
    folders.append(_submit(tiny, root / "ann2", "  ann ", seed=11))  # ...and a second submission by Ann
    entries = []
    for f in folders:
        sub = read_submission(f)
        entries.append(entry_for(sub, grade_files(tiny, sub), f.name, tiny))
    return root, entries


def test_flags_name_copies_and_duplicate_students(graded_class):
    _, entries = graded_class
    flags = find_flags(entries)
    assert any("identical data as ann-copy" in f for f in flags["ann"])
    assert any("identical data as ann" in f for f in flags["ann-copy"])
    assert any(f.startswith("same student name as") and "ann2" in f for f in flags["ann"])
    # bob ran exactly what the exercise prescribes, as ann did: the same numbers, and not a copy
    assert flags["bob"] == [] and flags["cy"] == []


def test_same_own_choices_are_flagged_where_the_bytes_differ(tiny, tmp_path):
    runs = [("dee", "Dee", "6:lr=0.02"), ("eve", "Eve", "6:lr=0.02"), ("fay", "Fay", "8:lr=0.02")]
    entries = []
    for folder, student, toggle in runs:
        f = _submit(tiny, tmp_path / folder, student, toggle=toggle)
        sub = read_submission(f)
        entries.append(entry_for(sub, grade_files(tiny, sub), folder, tiny))
    assert entries[0].data_digest != entries[1].data_digest  # exported separately: the wall-clock column differs
    flags = find_flags(entries)
    assert flags["dee"] == ["same run (config, seed and events) as eve"]
    assert flags["eve"] == ["same run (config, seed and events) as dee"]
    assert flags["fay"] == []


def test_rates_and_wrong_answers_count_the_grades(graded_class, tiny):
    _, entries = graded_class
    rates = {r["id"]: r for r in objective_rates(tiny, entries)}
    for i, o in enumerate(tiny.objectives):
        want = sum(e.grade.results[i].passed for e in entries)
        assert rates[o.id]["passed"] == want and rates[o.id]["n"] == len(entries)
    assert rates["q"]["passed"] == 3  # ann, her copy and ann2 answered from their sessions
    (q,) = wrong_answers(tiny, entries)
    assert q["wrong"] == [("123", 2)] and q["n_wrong"] == 2


def test_the_page_shows_the_numbers_and_links_feedback(graded_class, tiny, tmp_path):
    _, entries = graded_class
    out = tmp_path / "report"
    path = write_class_report(out, tiny, entries, max_points=3.0, feedback_dir=tmp_path / "report" / "feedback")
    html = path.read_text()
    assert "5 submission(s)" in html and "flagged" in html
    assert html.count("data:image/png;base64,") == 2  # the histogram and the profile grid
    assert '<a href="feedback/bob.html">bob</a>' in html
    assert "123 (2)" in html
    rates = objective_rates(tiny, entries)
    for r in rates:
        assert f"{r['passed']} / 5" in html
    assert re.search(r"identical data as ann-copy", html)
    assert "No predictions were recorded" in html


def test_a_student_name_is_text_not_markup(tiny, tmp_path):
    f = _submit(tiny, tmp_path / "evil", "<script>alert(1)</script>")
    sub = read_submission(f)
    html = write_class_report(tmp_path / "r", tiny, [entry_for(sub, grade_files(tiny, sub), "evil", tiny)], 3.0).read_text()
    assert "<script>alert" not in html and "&lt;script&gt;" in html


def test_the_report_counts_the_predictions_that_were_right(tiny, tmp_path):
    """Two students predict opposite directions for the same toggle: exactly one is right, by the
    outcome measured here from the session's own layer 1 signal (median of log10 over the 50 steps
    before vs from the toggle), and the page says so in words, not as the raw event value."""
    from gradsim.commands import Annotate, SetLR
    from gradsim.events import PREDICTION

    def run(folder, student, signal):
        t = Trainer(tiny.config.with_changes(steps=40), tiny.events)
        t.run(steps=20)
        t.apply(Annotate(PREDICTION, f"toggle=lr=2;signal={signal};decades={0 if signal == 'stays' else 1}"))
        t.apply(SetLR(2.0))
        t.run()
        write_submission(tmp_path / folder, tiny, t.session, {}, student=student)
        return t.session

    sessions = [run("up", "Up", "grows"), run("down", "Down", "shrinks"), run("flat", "Flat", "stays")]
    s = sessions[0]
    col = np.log10(s.layer_metric("act_grad_norm")[:, 0].astype(float))
    before, after = np.median(col[(s.steps >= 0) & (s.steps < 20)]), np.median(col[(s.steps >= 20) & (s.steps < 70)])
    change = after - before
    truth = "grows" if change > np.log10(2) else "shrinks" if change < -np.log10(2) else "stays"
    entries = []
    for folder in ("up", "down", "flat"):
        sub = read_submission(tmp_path / folder)
        entries.append(entry_for(sub, grade_files(tiny, sub), folder, tiny))
    rights = {e.name: e.predictions[0].right for e in entries}
    assert rights == {"up": truth == "grows", "down": truth == "shrinks", "flat": truth == "stays"}
    html = write_class_report(tmp_path / "r", tiny, entries, 3.0).read_text()
    assert "3 prediction(s) recorded by 3 student(s)" in html and "<strong>1 right</strong>, 2 wrong" in html
    assert "lr=2.0: grows by 1 decade" in html and "toggle=lr=2;signal" not in html

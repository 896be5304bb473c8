"""Exercises on a student's own model: graded on a real gradsim.watch session, always UNVERIFIED.

Each session here is a small torch model trained in the test with gradsim.watch;
the objective values are checked against the test's own record of the same
training (parameter deltas read around every ``optimizer.step()``), and every
way of dressing up a submission (edited numbers, a claim in submission.json, an
edited session.json) is shown to stay unverified or to score 0.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import gradsim.watch
from gradsim.cli.main import main
from gradsim.grading.grader import grade, grade_task
from gradsim.grading.feedback import Band
from gradsim.grading.submission import read_submission
from gradsim.session.io import load_session
from gradsim.teaching.exercises import ExerciseError, load_exercise, parse_exercise, watched_exercise_files, write_submission

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "resources" / "exercises" / "watched" / "own-model-balance.toml"
STEPS = 120
WINDOW = 20


def _train(out: Path, model: nn.Module, opt: torch.optim.Optimizer, steps: int = STEPS) -> list[list[float]]:
    """Train on a fixed toy task with gradsim.watch; return the test's own update ratio of
    every unit at every step (||W_after - W_before|| / ||W_before||, in float64)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 4, generator=g)
    y = (x[:, 0] * x[:, 1] > 0).long()
    units = [m for m in model.modules() if list(m.parameters(recurse=False))]
    ratios = []
    with gradsim.watch(model, opt, out=out) as w:
        for _ in range(steps):
            idx = torch.randint(0, 256, (32,), generator=g)
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            before = [m.weight.detach().double().clone() for m in units]
            opt.step()
            ratios.append([float((m.weight.detach().double() - b).norm() / b.norm()) for m, b in zip(units, before)])
            w.loss(loss)
    return ratios


def _healthy(out):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))
    return _train(out, model, torch.optim.Adam(model.parameters(), lr=3e-3))


def _vanishing(out):
    """A deep sigmoid MLP trained with plain SGD: the first layer hardly moves (deeper, its update
    rounds to exactly 0 in float32)."""
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for i in range(8):
        layers += [nn.Linear(4 if i == 0 else 32, 32), nn.Sigmoid()]
    model = nn.Sequential(*layers, nn.Linear(32, 2))
    return _train(out, model, torch.optim.SGD(model.parameters(), lr=0.5))


def _median_ratio(ratios, first=0, last=-1):
    tail = ratios[-WINDOW:]
    return float(np.median([r[first] / r[last] for r in tail])), float(np.median([r[first] for r in tail]))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("watched")
    return {"healthy": (base / "healthy", _healthy(base / "healthy")),
            "vanishing": (base / "vanishing", _vanishing(base / "vanishing"))}


@pytest.fixture(scope="module")
def ex():
    return load_exercise(SHIPPED)


def _submit(folder, ex, run_dir, answers, student="Ada"):
    return write_submission(folder, ex, load_session(run_dir), answers, student=student)


def test_the_shipped_watched_exercise_is_found_and_kept_out_of_the_simulator_list(monkeypatch):
    monkeypatch.setenv("GRADSIM_RESOURCES", str(ROOT / "resources"))
    from gradsim.teaching.exercises import exercise_files

    assert watched_exercise_files() == [SHIPPED]
    assert SHIPPED not in exercise_files()  # the window's Exercise dock runs exercises in the simulator
    e = load_exercise(SHIPPED)
    assert e.watched and [o.id for o in e.objectives] == ["balanced", "trained", "healthy", "ratio_first"]


def test_a_healthy_own_model_is_graded_unverified_with_the_right_numbers(tmp_path, runs, ex):
    run_dir, ratios = runs["healthy"]
    want_ratio, want_first = _median_ratio(ratios)
    sub = _submit(tmp_path / "ada", ex, run_dir, {"ratio_first": want_first})
    g = grade(ex, sub)  # replay asked for: a watched exercise never replays
    assert g.error == "" and g.config_problems == []
    assert g.verified is False and g.watched and g.check_status == "unverified"
    assert "cannot be re-run" in g.replay_note
    res = {r.id: r for r in g.results}
    assert res["balanced"].value == pytest.approx(want_ratio, rel=1e-5)
    assert 0.1 <= want_ratio <= 10 and res["balanced"].passed
    assert res["trained"].passed and res["healthy"].passed, res["healthy"].detail
    assert res["ratio_first"].value == pytest.approx(want_first, rel=1e-5) and res["ratio_first"].passed
    assert g.score == 1.0
    # a wrong answer (a decade off) is marked wrong
    g2 = grade(ex, _submit(tmp_path / "bob", ex, run_dir, {"ratio_first": want_first * 10}))
    assert not {r.id: r for r in g2.results}["ratio_first"].passed and g2.score == 0.75


def test_a_vanishing_own_model_fails_the_balance_and_the_diagnosis(tmp_path, runs, ex):
    run_dir, ratios = runs["vanishing"]
    want_ratio, want_first = _median_ratio(ratios)
    g = grade(ex, _submit(tmp_path / "cy", ex, run_dir, {"ratio_first": want_first}))
    res = {r.id: r for r in g.results}
    assert want_ratio < 0.1
    assert res["balanced"].value == pytest.approx(want_ratio, rel=1e-5) and not res["balanced"].passed
    assert not res["healthy"].passed and "vanishing" in res["healthy"].detail
    assert res["trained"].passed and res["ratio_first"].passed
    assert g.verified is False and g.score == 0.5


def _forge_layers(folder: Path, unit: int, col: str, factor: float) -> None:
    """Multiply one column of one unit in every row of layers.csv (an edit by hand)."""
    path = folder / "layers.csv"
    rows = list(csv.reader(path.open()))
    c = rows[0].index(col)
    for r in rows[1:]:
        if int(r[1]) == unit:
            r[c] = repr(float(r[c]) * factor)
    with path.open("w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


def test_no_forgery_makes_a_watched_grade_verified(tmp_path, runs, ex):
    run_dir, ratios = runs["vanishing"]
    ratio, want_first = _median_ratio(ratios)
    sub = _submit(tmp_path / "eve", ex, run_dir, {"ratio_first": want_first})
    # edited numbers: the first layer's update ratio scaled up to fake a balanced model
    _forge_layers(sub, 1, "update_ratio", 1.0 / ratio)
    g = grade(ex, sub)
    assert {r.id: r for r in g.results}["balanced"].passed  # what the files say: graded as handed in...
    assert g.verified is False and g.check_status == "unverified"  # ...and never called verified
    # a claim in submission.json changes nothing
    meta = json.loads((sub / "submission.json").read_text())
    meta.update(verified=True, results=[{"id": o.id, "passed": True} for o in ex.objectives])
    (sub / "submission.json").write_text(json.dumps(meta))
    assert grade(ex, sub).verified is False
    # session.json claiming to be replayable: still a watched session, still unverified
    sj = json.loads((sub / "session.json").read_text())
    sj["replayable"] = True
    (sub / "session.json").write_text(json.dumps(sj))
    assert grade(ex, sub).verified is False
    # passed off as a simulator run: not a watched session (or not a session at all), so score 0
    for where in ("top", "both"):
        sj["model"] = "mlp"
        if where == "both":
            sj["config"]["model"] = "mlp"
        (sub / "session.json").write_text(json.dumps(sj))
        g = grade(ex, sub)
        assert g.verified is False and g.score == 0.0 and g.error, where


def test_a_watched_session_cannot_pass_a_replayed_exercise(tmp_path, runs):
    """Handed in for a simulator exercise, a watched session fails its replay: score 0, not verified."""
    from .test_grading import TINY

    tiny = parse_exercise(TINY, "tiny")
    sub = write_submission(tmp_path / "sub", tiny, load_session(runs["healthy"][0]), {})
    g = grade(tiny, sub)
    assert g.verified is False and g.score == 0.0 and "cannot replay" in g.error


def test_the_simulator_exercises_still_replay_and_a_simulator_session_is_refused_here(tmp_path, ex):
    from gradsim.train.trainer import Trainer

    from .test_grading import TINY

    tiny = parse_exercise(TINY, "tiny")
    t = Trainer(tiny.config, tiny.events)
    t.run()
    sim = write_submission(tmp_path / "sim", tiny, t.session, {})
    assert grade(tiny, sim).verified is True
    g = grade(ex, sim)
    assert g.error and "'mlp' session" in g.error and g.score == 0.0 and not g.verified


def test_check_cli_feedback_csv_and_report_say_unverified_and_why(tmp_path, runs, ex, capsys):
    _, ratios = runs["healthy"]
    ada = _submit(tmp_path / "ada", ex, runs["healthy"][0], {"ratio_first": _median_ratio(ratios)[1]})
    cy = _submit(tmp_path / "cy", ex, runs["vanishing"][0], {"ratio_first": 1.0}, student="Cy")
    csv_path, fb, rep = tmp_path / "scores.csv", tmp_path / "fb", tmp_path / "report"
    assert main(["check", str(SHIPPED), str(ada), str(cy), "--csv", str(csv_path), "--feedback", str(fb),
                 "--report", str(rep), "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "UNVERIFIED (a watched exercise)" in out
    rows = list(csv.DictReader(csv_path.open()))
    assert [r["student"] for r in rows] == ["Ada", "Cy"]
    for r in rows:
        assert r["verified"].startswith("unverified: ") and "cannot be replayed" in r["verified"]
    assert (rows[0]["points"], rows[0]["balanced"], rows[0]["healthy"]) == ("4", "1", "1")
    assert (rows[1]["balanced"], rows[1]["healthy"], rows[1]["ratio_first"]) == ("0", "0", "0")
    page = (fb / "ada.html").read_text()
    assert "UNVERIFIED" in page and "cannot be re-run" in page and "no expected band" in page
    assert "Checked by re-running" not in page
    report = (rep / "index.html").read_text()
    assert "UNVERIFIED" in report and "no submission could be re-run" in report


def test_grade_task_page_without_a_band(runs, tmp_path, ex):
    sub = read_submission(_submit(tmp_path / "ada", ex, runs["healthy"][0], {"ratio_first": 0.01}))
    out = grade_task(ex, sub, feedback=Band((), (), (), (), (), 4.0), page_name="ada")
    assert out.grade.watched and "UNVERIFIED" in out.files["ada.html"].decode()


def test_window_is_the_median_of_the_last_rows(runs):
    """A quantity's ``window``: the median over that many recorded rows up to the step."""
    s = load_session(runs["healthy"][0])
    text = SHIPPED.read_text().replace("window = 20\nmin", "window = 7\nmin")
    e = parse_exercise(text, "x")
    q = e.objectives[0].quantity
    ur = s.layer_metric("update_ratio").astype(np.float64)
    assert q.window == 7 and q.value(s) == pytest.approx(np.median(ur[-7:, 0] / ur[-7:, -1]), rel=1e-12)
    assert "median of the last 7 recorded steps" in q.describe()


@pytest.mark.parametrize("change, needle", [
    (('model = "watched"', 'model = "watched"\npreset = "vanishing-sigmoid"'), "key 'preset': a watched exercise"),
    (('model = "watched"', 'model = "cnn"'), "key 'model': 'cnn' is not allowed"),
    (("activations = true", "depth = 3"), "require.depth': not a key gradsim.watch records"),
    (('verdict = "healthy"', 'verdict = "sick"'), "'sick' is not allowed"),
    (("window = 20\nmin", "window = 0\nmin"), "key 'window': 0 must be >= 1"),
])
def test_bad_watched_exercise_files_say_what_is_allowed(change, needle):
    text = SHIPPED.read_text()
    assert change[0] in text
    with pytest.raises(ExerciseError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        parse_exercise(text.replace(change[0], change[1], 1), "x")


def test_diagnosis_objective_present_false(runs):
    text = '''
id = "no-vanishing"
title = "t"
model = "watched"
[[objectives]]
id = "nv"
kind = "diagnosis"
verdict = "vanishing"
present = false
'''
    e = parse_exercise(text, "x")
    healthy, vanishing = (load_session(runs[k][0]) for k in ("healthy", "vanishing"))
    assert e.evaluate(healthy)[0].passed and not e.evaluate(vanishing)[0].passed
    assert e.objectives[0].required() == "gradsim diagnose does not find vanishing"

"""Predict, then toggle: the prediction format, its event, and its outcome on real runs.

The outcome is checked against an independent computation from the exported
layers.csv (read with the csv module, medians with the statistics module).
"""
from __future__ import annotations

import csv
import json
import math
import statistics

import numpy as np
import pytest

from gradsim.commands import Annotate, CommandError, SetBatchNorm, Reinit, SetClip
from gradsim.events import ANNOTATION_KINDS, PREDICTION, is_command
from gradsim.metrics import STEP_METRICS
from gradsim.grading.replay import first_mismatch, replay
from gradsim.session.io import export_session, load_session
from gradsim.teaching.predictions import (
    DEFAULT_WINDOW, MAX_DECADES, STAYS_DECADES, Prediction, PredictionError, comparison_text, direction_of,
    evaluate_prediction, format_prediction, parse_prediction, prediction_events,
)
from gradsim.grading.grader import grade
from gradsim.teaching.exercises import ExerciseError, parse_exercise, write_submission
from gradsim.teaching.presets import load_preset
from gradsim.train.trainer import Trainer


def _vanishing(steps: int = 100):
    return load_preset("vanishing-sigmoid").config.with_changes(steps=steps)


def _run_with(config, step, toggle, prediction=None):
    """Train to ``step``, record the prediction (if any) and apply ``toggle``, train to the end."""
    t = Trainer(config)
    t.run(steps=step)
    if prediction is not None:
        t.apply(Annotate(PREDICTION, format_prediction(prediction)))
    t.apply(toggle)
    t.run()
    return t


def _csv_outcome(folder, toggle_step, window):
    """log10(after/before) of layer 1's ||dL/dz|| medians, read from the exported layers.csv."""
    with open(folder / "layers.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["layer"]) == 1]
    by_step = {int(r["step"]): float(r["act_grad_norm"]) for r in rows}
    before = [math.log10(v) for s, v in by_step.items() if toggle_step - window <= s < toggle_step]
    after = [math.log10(v) for s, v in by_step.items() if toggle_step <= s < toggle_step + window]
    return statistics.median(after) - statistics.median(before)


# ------------------------------------------------------------------ format
def test_registered_as_an_annotation():
    assert PREDICTION in ANNOTATION_KINDS and not is_command(PREDICTION)


def test_format_and_parse_round_trip():
    p = Prediction("batchnorm=on", "grows", 2)
    assert format_prediction(p) == "toggle=batchnorm=on;signal=grows;decades=2"
    assert parse_prediction(format_prediction(p)) == p
    q = Prediction("clip=norm:1.0", "stays", 0, window=20)
    assert format_prediction(q) == "toggle=clip=norm:1.0;signal=stays;decades=0;window=20"
    assert parse_prediction(format_prediction(q)) == q
    assert Prediction("batchnorm=true", "shrinks", 1).toggle == "batchnorm=on"  # one spelling, as events.csv writes it


@pytest.mark.parametrize("value, names", [
    ("toggle=batchnorm=on;signal=soars;decades=2", "soars"),
    ("toggle=batchnorm=on;signal=grows;decades=7", "decades=7"),
    ("toggle=batchnorm=on;signal=grows;decades=-1", "decades='-1'"),
    ("toggle=batchnorm=on;signal=grows;decades=1.5", "decades='1.5'"),
    ("toggle=batchnorm=on;signal=stays;decades=2", "decades=2"),
    ("toggle=batchnorm=maybe;signal=grows;decades=2", "batchnorm=maybe"),
    ("toggle=warp=9;signal=grows;decades=2", "warp"),
    ("signal=grows;decades=2", "toggle is missing"),
    ("toggle=batchnorm=on;signal=grows;decades=2;colour=red", "colour"),
    ("toggle=batchnorm=on;signal=grows;signal=stays;decades=2", "signal is given twice"),
    ("toggle=batchnorm=on;signal=grows;decades=2;window=0", "window=0"),
    ("nonsense", "'nonsense' is not KEY=VALUE"),
])
def test_bad_values_get_one_message_naming_them(value, names):
    with pytest.raises(PredictionError) as err:
        parse_prediction(value)
    assert names in str(err.value)
    assert "\n" not in str(err.value)


def test_decades_range_is_the_spin_box_range():
    assert Prediction("lr=0.1", "grows", MAX_DECADES).decades == 6
    with pytest.raises(PredictionError, match="0 to 6"):
        Prediction("lr=0.1", "grows", MAX_DECADES + 1)


def test_direction_tolerance_is_a_factor_two():
    assert STAYS_DECADES == pytest.approx(math.log10(2))
    assert direction_of(math.log10(1.9)) == "stays" and direction_of(-math.log10(1.9)) == "stays"
    assert direction_of(math.log10(2.1)) == "grows" and direction_of(-math.log10(2.1)) == "shrinks"
    assert direction_of(math.inf) == "grows" and direction_of(-math.inf) == "shrinks" and direction_of(math.nan) == ""


# ------------------------------------------------------------------ the annotation in a run
def test_annotate_refuses_bad_kinds_and_text():
    with pytest.raises(CommandError, match="'batchnorm'"):
        Annotate("batchnorm", "on")
    with pytest.raises(CommandError, match="one line"):
        Annotate(PREDICTION, "a\nb")


def test_recorded_prediction_changes_no_number_and_exports_and_replays(tmp_path):
    cfg = _vanishing(60)
    plain = _run_with(cfg, 30, SetBatchNorm(True))
    pred = Prediction("batchnorm=on", "grows", 2)
    marked = _run_with(cfg, 30, SetBatchNorm(True), pred)
    assert np.array_equal(plain.session.layers, marked.session.layers, equal_nan=True)
    timed = [i for i, m in enumerate(STEP_METRICS) if m != "elapsed_s"]  # wall-clock time differs on every run
    assert np.array_equal(plain.session.scalars[:, timed], marked.session.scalars[:, timed], equal_nan=True)
    kinds = [(e.step, e.kind, e.value) for e in marked.session.events if e.step == 30]
    assert kinds == [(30, PREDICTION, format_prediction(pred)), (30, "batchnorm", "on")]  # the prediction comes first
    folder = export_session(marked.session, tmp_path / "s")
    assert "prediction,toggle=batchnorm=on;signal=grows;decades=2" in (folder / "events.csv").read_text()
    loaded = load_session(folder)
    assert [(e, p) for e, p in prediction_events(loaded)] == [(marked.session.events[1], pred)]
    again = replay(json.loads((folder / "session.json").read_text()))
    assert first_mismatch(loaded, again, 0.0) is None
    assert any(e.kind == PREDICTION and e.step == 30 for e in again.events)  # carried over, not re-applied


def test_batchnorm_on_a_vanishing_sigmoid_grows_the_early_signal(tmp_path):
    pred = Prediction("batchnorm=on", "grows", 2)
    t = _run_with(_vanishing(100), 50, SetBatchNorm(True), pred)
    [(event, p)] = prediction_events(t.session)
    out = evaluate_prediction(t.session, event.step, p)
    want = _csv_outcome(export_session(t.session, tmp_path / "s"), 50, DEFAULT_WINDOW)
    assert out.toggle_step == 50 and out.complete and out.unit == t.session.units[0].name
    assert out.decades == pytest.approx(want, abs=1e-6)  # float32 CSV cells vs the store's float32
    assert out.direction == "grows" and want > math.log10(2)
    assert "grew by" in comparison_text(p, out) and "you predicted the early signal grows by 2 decades" in comparison_text(p, out)


def test_tiny_reinit_of_a_healthy_net_shrinks_the_early_signal(tmp_path):
    cfg = load_preset("healthy-relu-he").config.with_changes(steps=80, depth=8)
    pred = Prediction("init=normal:0.01", "shrinks", 3, window=40)
    t = _run_with(cfg, 40, Reinit("normal", 0.01), pred)
    out = evaluate_prediction(t.session, 40, pred)
    want = _csv_outcome(export_session(t.session, tmp_path / "s"), 40, 40)
    assert out.decades == pytest.approx(want, abs=1e-6)
    assert out.direction == "shrinks" and want < -math.log10(2)


def test_clipping_off_when_nothing_is_clipped_stays(tmp_path):
    cfg = load_preset("healthy-relu-he").config.with_changes(steps=80, depth=6)
    pred = Prediction("clip=none", "stays", 0, window=40)
    t = _run_with(cfg, 40, SetClip("none"), pred)
    out = evaluate_prediction(t.session, 40, pred)
    want = _csv_outcome(export_session(t.session, tmp_path / "s"), 40, 40)
    assert out.decades == pytest.approx(want, abs=1e-6)
    assert out.direction == "stays" and abs(want) <= math.log10(2)


def test_outcome_waits_for_the_window_and_names_a_missing_toggle():
    t = Trainer(_vanishing(100))
    t.run(steps=50)
    pred = Prediction("batchnorm=on", "grows", 1)
    t.apply(Annotate(PREDICTION, format_prediction(pred)))
    none_yet = evaluate_prediction(t.session, 50, pred)
    assert none_yet.direction == "" and "was not applied" in none_yet.detail
    t.apply(SetBatchNorm(True))
    t.run(steps=10)
    partial = evaluate_prediction(t.session, 50, pred)
    assert not partial.complete and partial.toggle_step == 50
    t.run(steps=40)
    assert evaluate_prediction(t.session, 50, pred).complete


# ------------------------------------------------------------------ the exercise objective
PREDICT_EXERCISE = '''
id = "predict-bn"
title = "Predict batch norm"
preset = "vanishing-sigmoid"
config = { steps = 100 }
hide_marks = true
[[objectives]]
id = "predicted"
kind = "prediction"
toggle = "batchnorm=true"
'''


def test_prediction_objective_right_and_wrong_on_real_runs(tmp_path):
    ex = parse_exercise(PREDICT_EXERCISE, "p.toml")
    [obj] = ex.objectives
    assert obj.toggle == "batchnorm=on" and ex.hide_marks
    right = _run_with(ex.config, 50, SetBatchNorm(True), Prediction("batchnorm=on", "grows", 2))
    wrong = _run_with(ex.config, 50, SetBatchNorm(True), Prediction("batchnorm=on", "shrinks", 2))
    silent = _run_with(ex.config, 50, SetBatchNorm(True))
    r_right, r_wrong, r_silent = (ex.evaluate(t.session)[0] for t in (right, wrong, silent))
    truth = evaluate_prediction(right.session, 50, Prediction("batchnorm=on", "grows", 2))
    assert r_right.passed and r_right.value == pytest.approx(truth.decades) and "grew by" in r_right.detail
    assert not r_wrong.passed and "predicted the early signal shrinks by 2 decades" in r_wrong.detail
    assert not r_silent.passed and "no prediction was recorded before batchnorm=on" in r_silent.detail
    # The size counts only when the exercise asks for it: 2 decades predicted, ~14 measured.
    sized = parse_exercise(PREDICT_EXERCISE.replace('toggle = "batchnorm=true"', 'toggle = "batchnorm=on"\ndecades_tol = 1'), "p.toml")
    assert not sized.evaluate(right.session)[0].passed
    six = _run_with(ex.config, 50, SetBatchNorm(True), Prediction("batchnorm=on", "grows", 6)).session
    gap = abs(6 - truth.decades)
    loose = parse_exercise(PREDICT_EXERCISE.replace('toggle = "batchnorm=true"', f"decades_tol = {math.ceil(gap * 10) / 10 + 0.1}"), "p.toml")
    tight = parse_exercise(PREDICT_EXERCISE.replace('toggle = "batchnorm=true"', f"decades_tol = {math.floor(gap * 10) / 10 - 0.1}"), "p.toml")
    assert loose.evaluate(six)[0].passed and not tight.evaluate(six)[0].passed
    # Graded from the submission: the replay carries the prediction over and grades it the same.
    g_right = grade(ex, write_submission(tmp_path / "right", ex, right.session, {}))
    g_wrong = grade(ex, write_submission(tmp_path / "wrong", ex, wrong.session, {}))
    assert g_right.verified and g_right.score == 1.0 and g_wrong.score == 0.0
    meta = json.loads((tmp_path / "right" / "submission.json").read_text())
    assert meta["results"] == [{"id": "predicted"}]  # hide_marks: no mark to read in the file either


def test_only_the_first_prediction_for_the_toggle_counts():
    ex = parse_exercise(PREDICT_EXERCISE, "p.toml")
    t = Trainer(ex.config)
    t.run(steps=30)
    t.apply(Annotate(PREDICTION, format_prediction(Prediction("batchnorm=on", "shrinks", 1))))
    t.apply(SetBatchNorm(True))
    t.run(steps=30)
    t.apply(SetBatchNorm(False))
    t.apply(Annotate(PREDICTION, format_prediction(Prediction("batchnorm=on", "grows", 1, window=20))))
    t.apply(SetBatchNorm(True))
    t.run()
    assert not ex.evaluate(t.session)[0].passed  # guessing again after seeing the outcome does not help


@pytest.mark.parametrize("line, names", [
    ('toggle = "batchnorm=maybe"', "key 'toggle'"),
    ("decades_tol = -1", "key 'decades_tol'"),
    ("window = 3", "key 'window'"),
])
def test_bad_prediction_objectives_are_refused(line, names):
    with pytest.raises(ExerciseError, match=names):
        parse_exercise(PREDICT_EXERCISE.replace('toggle = "batchnorm=true"', line), "p.toml")
    with pytest.raises(ExerciseError, match="hide_marks"):
        parse_exercise(PREDICT_EXERCISE.replace("hide_marks = true", 'hide_marks = "yes"'), "p.toml")

"""Replay-verified grading: honest work passes bit for bit, any edited number is caught and named.

The replay comparison is checked against an independent edit of the files
(CSV text changed by hand here), never against its own code path.
"""
import base64
import csv
import io
import json
import re
import zipfile

import numpy as np
import pytest

from gradsim.cli.main import main
from gradsim.teaching.exercises import exercise_files, load_exercise, parse_exercise, write_submission
from gradsim.grading.grader import grade
from gradsim.grading.grader import grade_task
from gradsim.grading.feedback import make_band, reference_profiles
from gradsim.grading.replay import CROSS_BUILD_RTOL, first_mismatch, replay, tolerance_for
from gradsim.grading.submission import read_submission
from gradsim.metrics import LAYER_METRICS, STEP_METRICS
from gradsim.session.io import load_session
from gradsim.train.trainer import Trainer

# A small exercise in the shape of the real ones: a config, live events, every objective kind we grade.
TINY = '''
id = "tiny"
title = "Tiny sigmoid net"
preset = "vanishing-sigmoid"
config = { depth = 4, width = 8, n_samples = 128, batch_size = 32, steps = 12, stats_every = 4, dataset = "moons" }
events = ["3:batchnorm=on", "5:init=he_normal", "7:clip=norm:0.5", "9:activation=tanh", "10:optimizer=adam", "10:lr=0.01"]
[require]
activation = "sigmoid"
[[objectives]]
id = "vanishes"
kind = "layer_ratio"
text = "At step 0, layer 1's backprop signal is below the last hidden layer's"
metric = "act_grad_norm"
layer_a = 1
layer_b = "last_hidden"
step = 0
op = "<"
value = 1.0
[[objectives]]
id = "ran"
kind = "no_divergence"
steps = 12
[[objectives]]
id = "q"
kind = "answer"
question = "Ratio of layer 1 to the last hidden layer at step 0?"
compute = "layer_ratio"
metric = "act_grad_norm"
layer_a = 1
layer_b = "last_hidden"
step = 0
rel_tol = 0.05
'''


@pytest.fixture(scope="module")
def tiny():
    return parse_exercise(TINY, "tiny.toml")


def _honest(ex, folder, student="", answers=None):
    t = Trainer(ex.config, ex.events)
    t.run()
    t.session.add_event(5, "note", "looked at the heatmap")  # an annotation the replay cannot know
    ans = answers if answers is not None else {a.id: a.quantity.value(t.session) for a in ex.answers}
    return write_submission(folder, ex, t.session, ans, student=student)


@pytest.fixture(scope="module")
def honest(tiny, tmp_path_factory):
    return _honest(tiny, tmp_path_factory.mktemp("subs") / "alice", student="Alice Example")


def _copy(src, dst):
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def _edit_layers(folder, step, layer, metric, factor):
    """Multiply one cell of layers.csv by ``factor`` as a text editor would."""
    path = folder / "layers.csv"
    rows = list(csv.reader(io.StringIO(path.read_text())))
    col = rows[0].index(metric)
    for r in rows[1:]:
        if int(r[0]) == step and int(r[1]) == layer:
            old = float(r[col])
            r[col] = repr(old * factor)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    path.write_text(buf.getvalue())
    return old


# ------------------------------------------------------------------ replay itself
def test_honest_submission_replays_bit_for_bit_and_scores_one(tiny, honest):
    submitted = load_session(honest)
    replayed = replay(json.loads((honest / "session.json").read_text()))
    assert first_mismatch(submitted, replayed, 0.0) is None  # bitwise, not merely close
    assert np.array_equal(submitted.layers, replayed.layers, equal_nan=True)
    cols = [i for i, m in enumerate(STEP_METRICS) if m != "elapsed_s"]
    assert np.array_equal(submitted.scalars[:, cols], replayed.scalars[:, cols], equal_nan=True)
    g = grade(tiny, honest)
    assert g.score == 1.0 and g.verified and g.error == "" and "bitwise" in g.replay_note
    assert g.student == "Alice Example"
    kinds = [(e.step, e.kind) for e in replayed.events if e.kind not in ("start",)]
    assert kinds == [(3, "batchnorm"), (5, "init"), (5, "note"), (7, "clip"), (9, "activation"), (10, "optimizer"), (10, "lr")]


def test_wrong_answer_scores_lower(tiny, tmp_path):
    sub = _honest(tiny, tmp_path / "bob", answers={"q": 123.0})
    g = grade(tiny, sub)
    assert g.verified and g.error == "" and g.score == pytest.approx(2 / 3)
    assert not next(r for r in g.results if r.id == "q").passed


def test_edited_csv_one_layer_by_half_again_is_refused_with_the_mismatch_named(tiny, honest, tmp_path):
    sub = _copy(honest, tmp_path / "mallory")
    old = _edit_layers(sub, 4, 2, "act_grad_norm", 1.5)
    g = grade(tiny, sub)
    assert g.score == 0.0 and not g.verified
    assert "step 4, layer 2, act_grad_norm" in g.error
    m = re.search(r"submitted ([^,]+), replayed ([^ ]+)", g.error)
    assert float(m.group(1)) == pytest.approx(old * 1.5, rel=1e-6) and float(m.group(2)) == pytest.approx(old, rel=1e-6)
    # the fast path cannot see it, and says so
    assert grade(tiny, sub, replay=False).score == 1.0 and not grade(tiny, sub, replay=False).verified


def test_every_metric_of_every_recorded_step_tampered_by_one_percent_is_caught(tiny, honest):
    """Each cell, moved by 1 % (an empty or zero cell: filled in), is the first mismatch, named exactly."""
    submitted = load_session(honest)
    replayed = replay(json.loads((honest / "session.json").read_text()))
    rtol = tolerance_for(submitted.meta["versions"]).rtol
    checked = 0
    for i, step in enumerate(submitted.steps.tolist()):
        for c, name in enumerate(STEP_METRICS):
            if name == "elapsed_s":
                continue  # wall-clock time: never compared, never used by the grader
            old = submitted._scalars[i, c]
            submitted._scalars[i, c] = old * 1.01 if old != 0 and np.isfinite(old) else 0.01
            m = first_mismatch(submitted, replayed, rtol)
            submitted._scalars[i, c] = old
            assert m is not None and (m.step, m.layer, m.what) == (step, None, name)
            checked += 1
        for j in range(submitted.n_layers):
            for c, name in enumerate(LAYER_METRICS):
                old = submitted._layers[i, j, c]
                submitted._layers[i, j, c] = old * np.float32(1.01) if old != 0 and np.isfinite(old) else 0.01
                m = first_mismatch(submitted, replayed, rtol)
                submitted._layers[i, j, c] = old
                assert m is not None and (m.step, m.layer, m.what) == (step, j + 1, name), (step, j, name, m)
                checked += 1
    assert checked == len(submitted) * ((len(STEP_METRICS) - 1) + submitted.n_layers * len(LAYER_METRICS))
    assert first_mismatch(submitted, replayed, rtol) is None  # restored


def test_relabelled_config_with_forged_profile_is_refused(tmp_path):
    """The issue's attack: a healthy ReLU run relabelled sigmoid, dL/dz scaled 0.25 per layer toward the input."""
    ex = load_exercise(next(f for f in exercise_files() if "01-" in f.name))
    relu = Trainer(ex.config.with_changes(activation="relu", init="he_normal"), ex.events)
    relu.run()
    sub = write_submission(tmp_path / "forger", ex, relu.session, {"q_ratio": 1.0})
    meta = json.loads((sub / "session.json").read_text())
    meta["config"].update(activation="sigmoid", init=ex.config.init)
    (sub / "session.json").write_text(json.dumps(meta))
    layers = list(csv.reader(io.StringIO((sub / "layers.csv").read_text())))
    cols, n = [layers[0].index(m) for m in ("grad_norm", "bias_grad_norm", "update_norm", "update_ratio", "act_grad_norm")], ex.config.depth + 1
    for r in layers[1:]:
        for col in cols:
            r[col] = repr(float(r[col]) * 0.25 ** (n - int(r[1])))
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(layers)
    (sub / "layers.csv").write_text(buf.getvalue())
    ans = json.loads((sub / "submission.json").read_text())
    forged = load_session(sub)
    ans["answers"] = {"q_ratio": float(forged.layer_metric("act_grad_norm")[0, 0] / forged.layer_metric("act_grad_norm")[0, n - 2])}
    (sub / "submission.json").write_text(json.dumps(ans))
    assert grade(ex, sub, replay=False).score == 1.0  # what the old grader gave
    g = grade(ex, sub)
    assert g.score == 0.0 and "does not match its replay at step 0" in g.error


def test_truncated_and_missing_files_score_zero_with_a_problem(tiny, honest, tmp_path):
    cut = _copy(honest, tmp_path / "cut")
    text = (cut / "layers.csv").read_text()
    (cut / "layers.csv").write_text(text[: len(text) // 2])
    g = grade(tiny, cut)
    assert g.score == 0.0 and "layers.csv" in g.error
    nosub = _copy(honest, tmp_path / "nosub")
    (nosub / "submission.json").unlink()
    assert grade(tiny, nosub).error == "submission.json is missing"
    (nosub / "submission.json").write_text("[" * 100_000)  # hostile nesting: a problem, not a RecursionError
    assert grade(tiny, nosub).error.startswith("submission.json: nested too deeply")
    g = grade(tiny, tmp_path / "never-handed-in")
    assert g.score == 0.0 and "no such submission" in g.error
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    assert "not a submission folder or a valid .zip" in grade(tiny, junk).error
    broken = tmp_path / "broken.zip"  # a damaged download: the archive opens, a member does not decompress
    with zipfile.ZipFile(broken, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(honest.iterdir()):
            zf.write(f, f.name)
    data = bytearray(broken.read_bytes())
    mid = data.find(b"layers.csv") + 400
    data[mid : mid + 64] = bytes(64)
    broken.write_bytes(bytes(data))
    g = grade(tiny, broken)
    assert g.score == 0.0 and g.error.startswith("cannot read")


def test_zipped_submission_is_graded_like_its_folder(tiny, honest, tmp_path):
    """Issue 9's defect: a correct zipped submission scored 0 ("submission.json is missing")."""
    z = tmp_path / "alice.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in sorted(honest.iterdir()):
            zf.write(f, f"alice/{f.name}")  # zipped with its folder, as a file manager does
    gz, gf = grade(tiny, z), grade(tiny, honest)
    assert gz.error == "" and gz.verified and gz.score == gf.score == 1.0
    assert [r.to_dict() for r in gz.results] == [r.to_dict() for r in gf.results] and gz.student == gf.student


def test_older_submission_without_student_still_grades(tiny, honest, tmp_path):
    old = _copy(honest, tmp_path / "old")
    meta = json.loads((old / "submission.json").read_text())
    del meta["student"]
    (old / "submission.json").write_text(json.dumps(meta))
    g = grade(tiny, old)
    assert g.score == 1.0 and g.student == ""


def test_another_build_is_compared_at_the_documented_tolerance(tiny, honest, tmp_path):
    sub = _copy(honest, tmp_path / "lab-pc")
    meta = json.loads((sub / "session.json").read_text())
    meta["versions"]["torch"] = "2.12.0+cpu"
    (sub / "session.json").write_text(json.dumps(meta))
    tol = tolerance_for(meta["versions"])
    assert not tol.same_build and tol.rtol == CROSS_BUILD_RTOL and "torch 2.12.0+cpu -> " in tol.note
    _edit_layers(sub, 8, 3, "weight_norm", 1 + 1e-4)  # a last-bits-sized difference: accepted
    g = grade(tiny, sub)
    assert g.score == 1.0 and g.verified and "another build" in g.replay_note
    _edit_layers(sub, 8, 3, "weight_norm", 1.01)  # a 1 % edit: still caught
    g = grade(tiny, sub)
    assert g.score == 0.0 and "step 8, layer 3, weight_norm" in g.error and "torch 2.12.0+cpu" in g.error


def test_unreplayable_session_json_is_a_problem_not_a_crash(tiny, honest, tmp_path):
    sub = _copy(honest, tmp_path / "bad")
    meta = json.loads((sub / "session.json").read_text())
    meta["events"].append({"step": 2, "kind": "activation", "value": "sine"})
    (sub / "session.json").write_text(json.dumps(meta))
    g = grade(tiny, sub)
    assert g.score == 0.0 and g.error.startswith("cannot replay:") and "sine" in g.error


# ------------------------------------------------------------------ feedback
def test_feedback_page_has_score_objectives_values_and_a_headless_picture(tiny, honest):
    band = make_band([reference_profiles(tiny, s) for s in (0, 1)], (0, 1), max_points=10)
    sub = read_submission(honest)
    meta = json.loads(sub.files["submission.json"])
    meta["student"] = "<script>alert(1)</script>"
    sub.files["submission.json"] = json.dumps(meta).encode()
    out = grade_task(tiny, sub, feedback=band, page_name="alice")
    page = out.files["alice.html"].decode()
    assert "10 / 10" in page and "(100&nbsp;%)" in page
    assert "<script>alert" not in page and "&lt;script&gt;" in page  # untrusted text is escaped
    for o in tiny.objectives:
        assert o.required().replace("'", "&#39;").replace("<", "&lt;") in page
    value = out.grade.results[0].value
    assert f"{value:.4g}" in page  # the student's own value, beside the requirement
    png = base64.b64decode(re.search(r"base64,([A-Za-z0-9+/=]+)", page).group(1))
    assert png.startswith(b"\x89PNG") and len(png) > 5000


def test_check_cli_lms_columns_unverified_label_and_feedback(tiny, honest, tmp_path, capsys):
    ex_file = tmp_path / "tiny.toml"
    ex_file.write_text(TINY)
    bob = _honest(tiny, tmp_path / "bob", answers={"q": 5.0})
    csv_path, fb = tmp_path / "scores.csv", tmp_path / "fb"
    assert main(["check", str(ex_file), str(honest), str(bob), "--csv", str(csv_path), "--max-points", "6", "--feedback", str(fb), "--jobs", "1"]) == 0
    rows = list(csv.DictReader(csv_path.open()))
    assert list(rows[0])[:8] == ["student", "points", "max_points", "submission", "exercise", "score", "verified", "problems"]
    assert (rows[0]["student"], rows[0]["points"], rows[0]["max_points"], rows[0]["verified"]) == ("Alice Example", "6", "6", "replayed")
    assert (rows[1]["student"], rows[1]["points"], rows[1]["q"]) == ("", "4", "0")
    assert sorted(p.name for p in fb.iterdir()) == ["alice.html", "bob.html"]
    capsys.readouterr()
    assert main(["check", str(ex_file), str(honest), "--csv", str(csv_path), "--no-replay", "--jobs", "1", "--overwrite"]) == 0
    assert "UNVERIFIED" in capsys.readouterr().out
    assert next(csv.DictReader(csv_path.open()))["verified"] == "unverified"


@pytest.mark.parametrize("args, needle", [(["--tolerance", "0.05"], "--tolerance 0.05"), (["--max-points", "0"], "--max-points 0"), (["--jobs", "0"], "--jobs 0")])
def test_check_bad_flags_are_one_line_exit_2(honest, tmp_path, capsys, args, needle):
    ex_file = tmp_path / "tiny.toml"
    ex_file.write_text(TINY)
    assert main(["check", str(ex_file), str(honest), "--csv", str(tmp_path / "s.csv")] + args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]

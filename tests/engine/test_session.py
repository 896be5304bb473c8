"""The bounded store, the export format of docs/session-format.md, and loading it back."""
import json
import os
import zipfile

import numpy as np
import pytest

from gradsim.session import io as session_io
from gradsim.commands import parse_event
from gradsim.config import RunConfig
from gradsim.metrics import LAYER_METRICS, STEP_METRICS
from gradsim.session.store import Session, StepRecord
from gradsim.session.io import ExportError, SessionFormatError, export_session, load_session
from gradsim.train.trainer import Trainer


def _record(step, n_layers=3, stats=True):
    layers = np.full((n_layers, len(LAYER_METRICS)), step, np.float32)
    if not stats:
        layers[:, 6:] = np.nan
    scalars = np.zeros(len(STEP_METRICS))
    scalars[0] = step
    return StepRecord(step, scalars, layers, stats)


def test_memory_stays_under_budget_for_any_length():
    budget_mb = 0.05
    s = Session(n_layers=3, max_memory_mb=budget_mb)
    for step in range(20_000):
        s.append(_record(step))
    assert s.nbytes <= budget_mb * 1e6
    assert len(s) <= s.capacity
    assert s.record_every > 1 and (s.steps % s.record_every == 0).all()
    assert s.steps[0] == 0 and s.steps[-1] > 19_000 - 2 * s.record_every  # old and new both kept
    assert np.all(np.diff(s.steps) == s.record_every)
    assert s.steps_run == 20_000


def test_thinning_keeps_the_divergence_row():
    s = Session(n_layers=2, max_memory_mb=0.005)
    for step in range(s.capacity):
        s.append(_record(step, 2))
    rec = _record(s.capacity + 1, 2)
    rec.scalars[STEP_METRICS.index("diverged")] = 1.0
    assert s.append(rec)
    assert s.steps[-1] == s.capacity + 1


def _small_run(tmp_path, **kw):
    cfg = RunConfig(dataset="moons", n_samples=200, depth=3, width=16, batch_size=32, steps=12, stats_every=4, **kw)
    t = Trainer(cfg, [parse_event("6:batchnorm=on"), parse_event("8:clip=norm:0.5")])
    t.run()
    return t


def test_export_has_exactly_the_documented_format(tmp_path):
    t = _small_run(tmp_path)
    out = export_session(t.session, tmp_path / "run")
    assert sorted(os.listdir(out)) == ["events.csv", "layers.csv", "session.json", "steps.csv"]
    meta = json.loads((out / "session.json").read_text())
    assert meta["format"] == "gradsim-session/3"
    assert set(meta) >= {"format", "model", "units", "config", "events", "record_every", "versions", "created", "steps_run", "diverged_at"}
    assert meta["config"] == t.config.to_dict() and meta["steps_run"] == 12 and meta["diverged_at"] is None
    assert set(meta["versions"]) == {"gradsim", "torch", "numpy", "python", "platform"}
    steps = (out / "steps.csv").read_text().splitlines()
    assert steps[0] == ("step,loss,accuracy,grad_norm_total,grad_norm_applied,clipped,lr,diverged,elapsed_s,"
                        "theory_in_domain,theory_gain_error,test_accuracy")
    assert len(steps) == 13 and steps[1].startswith("0,")
    # held-out accuracy on the statistics' rows (every stats_every = 4 steps) only, empty elsewhere
    held = {int(r.split(",")[0]): r.split(",")[-1] for r in steps[1:]}
    assert sorted(k for k, v in held.items() if v != "") == [0, 4, 8]
    assert all(0.0 <= float(v) <= 1.0 for v in held.values() if v != "")
    layers = (out / "layers.csv").read_text().splitlines()
    assert layers[0] == "step,layer,grad_norm,bias_grad_norm,weight_norm,update_norm,update_ratio,act_grad_norm,act_mean,act_std,act_saturation,act_dead,pred_gain"
    assert len(layers) == 1 + 12 * 4
    assert layers[1].startswith("0,1,") and layers[5].startswith("1,1,")
    assert layers[5].endswith(",,,,,")  # step 1: stats and prediction not sampled -> empty cells
    assert not layers[1].endswith(",")  # step 0: stats and prediction recorded
    assert layers[4].startswith("0,4,") and layers[4].endswith(",")  # no prediction for the output layer
    # pred_gain at step 0, at the events (steps 6 and 8) and every stats_every (0, 4, 8) steps only
    cells = [r.split(",") for r in layers[1:]]
    with_pred = sorted({int(c[0]) for c in cells if c[-1] != ""})
    assert with_pred == [0, 4, 6, 8]
    assert all(float(c[-1]) > 0 for c in cells if c[-1] != "")
    events = (out / "events.csv").read_text().splitlines()
    assert events == ["step,kind,value", "0,start,config", "6,batchnorm,on", "8,clip,norm:0.5"]


@pytest.mark.parametrize("as_zip", [False, True])
def test_load_gives_back_the_same_session(tmp_path, as_zip):
    t = _small_run(tmp_path)
    out = export_session(t.session, tmp_path / ("run.zip" if as_zip else "run"))
    back = load_session(out)
    s = t.session
    assert np.array_equal(back.steps, s.steps)
    assert np.array_equal(back.scalars, s.scalars, equal_nan=True)
    assert np.array_equal(back.layers, s.layers, equal_nan=True)
    assert np.array_equal(back.has_stats, s.has_stats)
    assert back.events == s.events and back.config == s.config and back.record_every == s.record_every
    # and exporting the loaded session gives byte-identical files
    again = export_session(back, tmp_path / "again")
    for name in ("steps.csv", "layers.csv", "events.csv"):
        ref = (out / name).read_text() if not as_zip else zipfile.ZipFile(out).read(name).decode()
        assert (again / name).read_text() == ref


def test_version_1_files_still_load_with_pred_gain_empty(tmp_path):
    """A gradsim-session/1 export (no pred_gain column) loads; the prediction is NaN."""
    t = _small_run(tmp_path)
    out = export_session(t.session, tmp_path / "v2")
    meta = json.loads((out / "session.json").read_text())
    meta["format"] = "gradsim-session/1"
    (out / "session.json").write_text(json.dumps(meta))
    rows = (out / "layers.csv").read_text().splitlines()
    (out / "layers.csv").write_text("\n".join(r.rsplit(",", 1)[0] for r in rows) + "\n")  # drop the last column
    back = load_session(out)
    pred = back.layer_metric("pred_gain")
    assert np.isnan(pred).all()
    others = [i for i, m in enumerate(LAYER_METRICS) if m != "pred_gain"]
    assert np.array_equal(back.layers[:, :, others], t.session.layers[:, :, others], equal_nan=True)
    assert np.array_equal(back.has_stats, t.session.has_stats)
    # a v1 file with a v2 header (or the other way round) is refused with a clear message
    (out / "layers.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(SessionFormatError, match="expected header"):
        load_session(out)


def test_nonfinite_values_written_as_nan_inf(tmp_path):
    s = Session(n_layers=2, config=RunConfig(depth=1).to_dict())
    rec = _record(0, 2)
    rec.layers[0, 0], rec.layers[1, 0], rec.layers[0, 1] = np.inf, -np.inf, np.nan
    rec.scalars[0] = np.nan
    s.append(rec)
    out = export_session(s, tmp_path / "r")
    assert (out / "layers.csv").read_text().splitlines()[1].startswith("0,1,inf,nan,")
    assert (out / "layers.csv").read_text().splitlines()[2].startswith("0,2,-inf,")
    assert (out / "steps.csv").read_text().splitlines()[1].startswith("0,nan,")
    back = load_session(out)
    assert np.array_equal(back.layers, s.layers, equal_nan=True)


def _exported(tmp_path):
    return export_session(_small_run(tmp_path).session, tmp_path / "good")


@pytest.mark.parametrize(
    "name, mutate, needle",
    [
        ("steps.csv", lambda t: t[: len(t) // 2], "steps.csv line"),
        ("layers.csv", lambda t: "\n".join(t.splitlines()[:-3]) + "\n", "layers.csv"),
        ("layers.csv", lambda t: t.replace("0,1,", "0,1,abc", 1), "is not a number"),
        ("steps.csv", lambda t: "wrong,header\n" + t, "expected header"),
        ("session.json", lambda t: t[:20], "not valid JSON"),
        ("session.json", lambda t: t.replace("gradsim-session/3", "gradsim-session/9"), "format is"),
        ("session.json", lambda t: json.dumps({**json.loads(t), "config": {**json.loads(t)["config"], "depth": "x"}}), "depth"),
        ("events.csv", lambda t: t + "12,note\n", "events.csv line"),
    ],
)
def test_malformed_or_truncated_files_give_clear_errors(tmp_path, name, mutate, needle):
    out = _exported(tmp_path)
    f = out / name
    f.write_text(mutate(f.read_text()))
    with pytest.raises(SessionFormatError) as err:
        load_session(out)
    assert needle in str(err.value)


def test_missing_file_and_not_a_session(tmp_path):
    out = _exported(tmp_path)
    (out / "events.csv").unlink()
    with pytest.raises(SessionFormatError, match="events.csv is missing"):
        load_session(out)
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(SessionFormatError, match="valid .zip"):
        load_session(tmp_path / "junk.zip")
    with pytest.raises(SessionFormatError, match="no such"):
        load_session(tmp_path / "nowhere")


def test_hostile_zip_is_read_by_name_never_extracted(tmp_path):
    out = _exported(tmp_path)
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("../../escape/session.json", (out / "session.json").read_text())
        for n in ("steps.csv", "layers.csv", "events.csv"):
            zf.writestr(n, (out / n).read_text())
    with pytest.raises(SessionFormatError, match="session.json is missing"):
        load_session(z)
    assert not (tmp_path.parent / "escape").exists()


def test_export_to_unwritable_place_leaves_nothing_and_retry_works(tmp_path):
    t = _small_run(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="is a file, not a folder"):
        export_session(t.session, blocker / "run")  # parent is a file (mkdir alone said "File exists")
    with pytest.raises(ExportError, match="is a file, not a folder"):
        export_session(t.session, blocker / "deeper" / "run")
    with pytest.raises(ExportError, match="not a folder"):
        export_session(t.session, blocker)
    assert blocker.read_text() == "x"
    assert len(t.session) == 12
    assert export_session(t.session, tmp_path / "ok").is_dir()


def test_export_failing_halfway_leaves_no_half_written_folder(tmp_path, monkeypatch):
    t = _small_run(tmp_path)
    real = os.replace
    calls = {"n": 0}

    def flaky(src, dst):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(session_io.os, "replace", flaky)
    with pytest.raises(ExportError, match="No space left"):
        export_session(t.session, tmp_path / "run")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no folder, no temp leftovers
    monkeypatch.setattr(session_io.os, "replace", real)
    assert sorted(os.listdir(export_session(t.session, tmp_path / "run"))) == ["events.csv", "layers.csv", "session.json", "steps.csv"]


def test_export_into_existing_folder_replaces_files_atomically(tmp_path, monkeypatch):
    t = _small_run(tmp_path)
    out = export_session(t.session, tmp_path / "run")
    old = (out / "steps.csv").read_text()

    def fail(*a, **k):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(session_io.os, "fsync", fail)
    with pytest.raises(ExportError):
        export_session(t.session, out)
    assert (out / "steps.csv").read_text() == old  # the old complete file is still there
    assert not [p for p in out.iterdir() if p.name.endswith(".partial")]


@pytest.mark.parametrize("as_zip", [False, True])
def test_oversized_member_is_refused_before_reading(tmp_path, monkeypatch, as_zip):
    """A file claiming more than the limit (e.g. 1 GB) is refused by its size, not read."""
    out = _exported(tmp_path)
    if as_zip:
        z = tmp_path / "big.zip"
        with zipfile.ZipFile(z, "w") as zf:
            for n in ("session.json", "steps.csv", "layers.csv", "events.csv"):
                zf.writestr(n, (out / n).read_text())
        out = z
    monkeypatch.setattr(session_io, "MAX_FILE_BYTES", 200)  # stands in for 2 GiB
    with pytest.raises(SessionFormatError, match="over the 200 byte limit"):
        load_session(out)


def test_unexpected_types_in_session_json(tmp_path):
    out = _exported(tmp_path)
    meta = json.loads((out / "session.json").read_text())
    for bad in ([1, 2], {**meta, "config": "x"}, {**meta, "record_every": "2"}):
        (out / "session.json").write_text(json.dumps(bad))
        with pytest.raises(SessionFormatError):
            load_session(out)


def test_trainer_column_layout_is_checked_by_an_exception_not_an_assert(monkeypatch):
    """trainer.py used a module-level assert (gone under python -O) on one column name;
    the layout check now raises on any disagreement, whatever the interpreter flags."""
    from gradsim.train import trainer

    trainer._check_layout()  # the real layout passes
    swapped = list(LAYER_METRICS)
    swapped[0], swapped[1] = swapped[1], swapped[0]
    monkeypatch.setattr(trainer, "LAYER_METRICS", tuple(swapped))
    with pytest.raises(RuntimeError, match="LAYER_METRICS"):
        trainer._check_layout()
    monkeypatch.setattr(trainer, "LAYER_METRICS", LAYER_METRICS)
    monkeypatch.setattr(trainer, "STEP_METRICS", STEP_METRICS[:-1])
    with pytest.raises(RuntimeError, match="STEP_METRICS"):
        trainer._check_layout()
    src = open(trainer.__file__).read()
    assert "\nassert " not in src  # no top-level assert left to vanish under -O


def test_latest_is_the_final_step_exactly_even_when_thinning_skipped_it():
    s = Session(n_layers=3, max_memory_mb=0.002)  # 16 rows: thins many times below
    rng = np.random.default_rng(0)
    appended = []
    for step in range(203):
        rec = _record(step)
        rec.scalars[:] = rng.standard_normal(len(STEP_METRICS))
        rec.layers[:] = rng.standard_normal(rec.layers.shape).astype(np.float32)
        rec.scalars[STEP_METRICS.index("diverged")] = 0.0
        s.append(rec)
        appended.append(StepRecord(rec.step, rec.scalars.copy(), rec.layers.copy(), rec.has_stats))
    final = appended[-1]
    assert s.last().step < final.step  # the store's last row is an older step
    latest = s.latest()
    assert latest.step == final.step == 202
    assert np.array_equal(latest.scalars, final.scalars) and np.array_equal(latest.layers, final.layers)
    rec.scalars[:] = 0.0  # the caller reusing its arrays does not change what was kept
    latest.layers[:] = 0.0  # nor does changing the copy handed out
    assert np.array_equal(s.latest().scalars, final.scalars) and np.array_equal(s.latest().layers, final.layers)
    s.append(_record(5))  # an older step (a mirror re-fed rows) is not "latest"
    assert s.latest().step == 202
    built = Session.from_arrays(s.steps, s.scalars, s.layers, s.has_stats)
    assert built.latest().step == s.last().step  # rows only: the last row is all there is
    assert Session(2).latest() is None

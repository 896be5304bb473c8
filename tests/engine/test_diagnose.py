"""The diagnosis names what each preset's story is about, what deliberately broken watched
models have, and calls a healthy ResNet-like CNN healthy; its evidence numbers are the
session's own, recomputed here."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import gradsim.watch
from gradsim.data.datasets import make_dataset
from gradsim.metrics import LAYER_INDEX, LAYER_METRICS, STEP_INDEX, STEP_METRICS
from gradsim.models.family import Unit
from gradsim.session.io import export_session, load_session
from gradsim.session.store import Session
from gradsim.teaching import diagnose as dg
from gradsim.teaching.presets import load_preset
from gradsim.train.trainer import Trainer

ROOT = Path(__file__).resolve().parents[2]


def _preset(name, steps, **changes):
    p = load_preset(name)
    assert steps <= p.config.steps
    t = Trainer(p.config.with_changes(steps=steps, **changes), p.events)
    t.run()
    return t.session


def _ratio_median(session, lo, hi):
    ag = session.layer_metric("act_grad_norm")[lo:hi].astype(np.float64)
    return float(10 ** np.median(np.log10(ag[:, 0] / ag[:, -1])))  # the median row: a geometric middle


# ------------------------------------------------------------ the presets
def test_vanishing_sigmoid_is_vanishing_with_its_numbers():
    s = _preset("vanishing-sigmoid", 60)
    d = dg.diagnose(s)
    assert d.verdict == ["vanishing"]
    (f,) = d.findings
    assert f.started == 0 and d.window == (30, 59)
    assert f.evidence["first_unit"] == "linear 1" and f.evidence["last_unit"] == "output"
    assert f.evidence["ratio"] == pytest.approx(_ratio_median(s, 30, 60), rel=1e-6)
    assert f.evidence["ratio"] < 1e-6
    assert f.evidence["gain_per_unit"] == pytest.approx(f.evidence["ratio"] ** (1 / 20), rel=1e-6)
    assert "linear 1" in f.units and "output" not in f.units
    assert d.suggestions[0].startswith("use ReLU or Leaky ReLU")


@pytest.mark.parametrize("name,steps", [("healthy-relu-he", 150), ("deep-tanh-xavier", 150)])
def test_healthy_presets_are_healthy(name, steps):
    d = dg.diagnose(_preset(name, steps))
    assert d.verdict == ["healthy"] and d.findings == [] and d.suggestions == []



def test_a_transformer_attention_statistics_are_not_dead_units():
    """An attention sublayer's act_* cells hold attention statistics (its act_dead cell: the lowest
    head's entropy, near 1 for uniform attention); read as a dead fraction they made post-ln "dead
    units" in every attn block. Only the MLP sublayers (GELU: none dead) are counted."""
    s = _preset("post-ln", 60)
    attn = [j for j, u in enumerate(s.units) if u.name.startswith("attn ")]
    has = np.flatnonzero(s.has_stats)
    assert np.nanmedian(s.layer_metric("act_dead")[has][:, attn]) >= dg.DEAD_FRACTION  # what once fired
    mlp = [j for j, u in enumerate(s.units) if u.name.startswith("mlp ")]
    assert np.nanmax(s.layer_metric("act_dead")[has][:, mlp]) < dg.DEAD_FRACTION  # the real units: alive
    d = dg.diagnose(s)
    assert "dead units" not in d.verdict and "saturation" not in d.verdict

def test_exploding_relu_is_exploding():
    s = _preset("exploding-relu", 150)
    d = dg.diagnose(s)
    assert d.verdict == ["exploding"]
    (f,) = d.findings
    assert f.started == 0
    assert f.evidence["ratio"] == pytest.approx(_ratio_median(s, 75, 150), rel=1e-6)
    assert f.evidence["ratio"] > dg.EXPLODE_RATIO
    assert "linear 1" in f.units
    assert d.suggestions[0].startswith("use He init") and any("clip" in x for x in d.suggestions)


def test_clipping_rescue_is_healthy_and_without_clipping_diverges():
    assert dg.diagnose(_preset("clipping-rescue", 100)).verdict == ["healthy"]
    s = _preset("clipping-rescue", 30, clip_mode="none")
    d = dg.diagnose(s)
    assert d.verdict[0] == "diverged" and "exploding" in d.verdict
    assert d.findings[0].evidence["step"] == s.diverged_at == d.findings[0].started
    assert d.suggestions[0].startswith("lower the learning rate")


def test_batchnorm_rescue_vanishes_until_batch_norm_then_is_healthy():
    s = _preset("batchnorm-rescue", 340)
    d = dg.diagnose(s)
    assert d.verdict == ["healthy"] and d.window[0] >= 300
    (e,) = d.earlier
    assert e.kind == "vanishing" and e.ended == 300
    # judged before the rescue (the first 300 steps only), it is vanishing
    before = Session.from_arrays(s.steps[:300], s.scalars[:300], s.layers[:300], s.has_stats[:300], s.config, units=s.units)
    assert dg.diagnose(before).verdict == ["vanishing"]


# ------------------------------------------- watched models, broken and not
_DIGITS = make_dataset("digits", seed=0)
X, Y = torch.from_numpy(_DIGITS.x_train), torch.from_numpy(_DIGITS.y_train)


def _mlp(depth, width, act, std_gain=None, bias=None, seed=0):
    torch.manual_seed(seed)
    layers, n = [], X.shape[1]
    for _ in range(depth):
        lin = nn.Linear(n, width)
        n = width
        if std_gain is not None:
            nn.init.normal_(lin.weight, 0.0, std_gain / math.sqrt(lin.in_features))
        if bias is not None:
            nn.init.constant_(lin.bias, bias)
        layers += [lin, act()]
    return nn.Sequential(*layers, nn.Linear(n, 10))


def _watch_train(model, out, steps, lr, batch=64):
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(0)
    with gradsim.watch(model, opt, out=out) as w:
        for _ in range(steps):
            i = torch.randint(0, len(X), (batch,), generator=g)
            loss = nn.functional.cross_entropy(model(X[i]), Y[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
            w.loss(loss)
    return load_session(out)


def test_deep_sigmoid_mlp_is_vanishing(tmp_path):
    s = _watch_train(_mlp(12, 32, nn.Sigmoid), tmp_path / "run", 30, 0.1)
    d = dg.diagnose(s)
    assert d.verdict == ["vanishing"]
    assert d.findings[0].evidence["first_unit"] == "0" and d.findings[0].evidence["last_unit"] == "24"


def test_too_large_init_is_exploding(tmp_path):
    s = _watch_train(_mlp(14, 32, nn.ReLU, std_gain=2 * math.sqrt(2)), tmp_path / "run", 20, 1e-6)
    d = dg.diagnose(s)
    assert "exploding" in d.verdict and "vanishing" not in d.verdict
    (f,) = [f for f in d.findings if f.kind == "exploding"]
    assert f.evidence["ratio"] == pytest.approx(_ratio_median(s, 10, 20), rel=1e-6)


def test_relus_behind_large_negative_biases_are_dead(tmp_path):
    s = _watch_train(_mlp(6, 32, nn.ReLU, bias=-3.0), tmp_path / "run", 20, 0.05)
    d = dg.diagnose(s)
    assert "dead units" in d.verdict
    (f,) = [f for f in d.findings if f.kind == "dead units"]
    dead = s.layer_metric("act_dead")[10:].astype(np.float64)
    for name, frac in f.evidence["fractions"].items():
        j = [u.name for u in s.units].index(name)
        assert frac == pytest.approx(float(np.median(dead[:, j])), abs=1e-7) and frac >= dg.DEAD_FRACTION
    assert f.started == 0 and len(f.units) == 6
    # the cause's fixes first; no "use ReLU instead of sigmoid" for a net of ReLUs
    assert d.suggestions[: len(dg.FIXES["dead units"])] == list(dg.FIXES["dead units"])
    assert not any(x.startswith("use ReLU") for x in d.suggestions)


def test_tanh_with_large_weights_is_saturated(tmp_path):
    s = _watch_train(_mlp(6, 32, nn.Tanh, std_gain=4.0), tmp_path / "run", 20, 0.01)
    d = dg.diagnose(s)
    assert "saturation" in d.verdict
    (f,) = [f for f in d.findings if f.kind == "saturation"]
    assert f.evidence["worst"] >= dg.SATURATED_FRACTION and len(f.units) >= 5


def test_a_small_resnet_like_cnn_is_healthy_and_the_example_runs(tmp_path):
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import watch_cnn
    finally:
        sys.path.remove(str(ROOT / "examples"))
    acc = watch_cnn.train(tmp_path / "cnn", steps=40, channels=8, blocks=2)
    s = load_session(tmp_path / "cnn")
    assert len(s) == 40 and s.model == "watched"
    assert s.column("loss")[-10:].mean() < 0.8 * s.column("loss")[:10].mean() and acc > 0.3
    d = dg.diagnose(s)
    assert d.verdict == ["healthy"], d.text()


# ------------------------------------------------------- rules, thresholds
def _synthetic(first_over_last, dead=0.0, sat=0.0, n=10, loss=None):
    """A 3-unit session whose first unit's signal is ``first_over_last`` times the last's."""
    layers = np.full((n, 3, len(LAYER_METRICS)), np.nan, np.float32)
    for c in ("grad_norm", "weight_norm", "update_norm", "update_ratio"):
        layers[:, :, LAYER_INDEX[c]] = 1.0
    layers[:, 0, LAYER_INDEX["act_grad_norm"]] = first_over_last
    layers[:, 1, LAYER_INDEX["act_grad_norm"]] = math.sqrt(first_over_last)
    layers[:, 2, LAYER_INDEX["act_grad_norm"]] = 1.0
    layers[:, :, LAYER_INDEX["act_dead"]] = [dead, 0, 0]
    layers[:, :, LAYER_INDEX["act_saturation"]] = [0, sat, 0]
    layers[:, :, LAYER_INDEX["act_mean"]] = layers[:, :, LAYER_INDEX["act_std"]] = 0.5
    scalars = np.zeros((n, len(STEP_METRICS)))
    scalars[:, STEP_INDEX["loss"]] = loss if loss is not None else 1.0
    scalars[:, STEP_INDEX["grad_norm_total"]] = 1.0
    units = [Unit(1, "a", "linear"), Unit(2, "b", "conv2d"), Unit(3, "c", "linear")]
    return Session.from_arrays(np.arange(n), scalars, layers, np.ones(n, bool), {"model": "watched"}, units=units)


@pytest.mark.parametrize("ratio,verdict", [
    (0.5 * dg.VANISH_RATIO, ["vanishing"]), (2 * dg.VANISH_RATIO, ["healthy"]),
    (0.5 * dg.EXPLODE_RATIO, ["healthy"]), (2 * dg.EXPLODE_RATIO, ["exploding"]),
])
def test_the_depth_thresholds(ratio, verdict):
    assert dg.diagnose(_synthetic(ratio)).verdict == verdict


@pytest.mark.parametrize("dead,sat,verdict", [
    (dg.DEAD_FRACTION, 0.0, ["dead units"]), (dg.DEAD_FRACTION - 0.05, 0.0, ["healthy"]),
    (0.0, dg.SATURATED_FRACTION, ["saturation"]), (0.0, dg.SATURATED_FRACTION - 0.05, ["healthy"]),
])
def test_the_activation_thresholds(dead, sat, verdict):
    d = dg.diagnose(_synthetic(1.0, dead=dead, sat=sat))
    assert d.verdict == verdict
    if verdict != ["healthy"]:
        assert d.findings[0].units == (["a"] if dead else ["b"])


def test_a_session_with_a_nan_loss_is_diverged_and_json_holds_no_nan():
    s = _synthetic(1.0)
    s.scalars[6:, STEP_INDEX["loss"]] = np.nan
    s.scalars[6:, STEP_INDEX["diverged"]] = 1
    d = dg.diagnose(s)
    assert d.verdict == ["diverged"] and d.findings[0].evidence["step"] == 6
    assert d.findings[0].evidence["last_finite_loss"] == 1.0
    json.dumps(d.to_json(), allow_nan=False)


def test_without_activation_gradients_the_relative_gradient_is_the_signal():
    s = _synthetic(1.0)
    s.layers[:, :, LAYER_INDEX["act_grad_norm"]] = np.nan
    s.layers[:, 0, LAYER_INDEX["grad_norm"]] = 1e-4
    d = dg.diagnose(s)
    assert d.verdict == ["vanishing"] and d.findings[0].evidence["metric"] == "||grad W|| / ||W||"
    assert d.findings[0].evidence["ratio"] == pytest.approx(1e-4)


def test_an_empty_session_says_so():
    s = _synthetic(1.0, n=0)
    assert dg.diagnose(s).verdict == ["no data"]


# ------------------------------------------------------------------ CLI
def test_cli_text_and_json(tmp_path, capsys):
    from gradsim.cli.main import main

    s = _preset("vanishing-sigmoid", 40)
    export_session(s, tmp_path / "run")
    assert main(["diagnose", str(tmp_path / "run"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == ["vanishing"] and set(out) >= {"verdict", "findings", "suggestions"}
    assert out["findings"][0]["kind"] == "vanishing" and out["findings"][0]["units"][0] == "linear 1"
    assert out["findings"][0]["evidence"]["ratio"] == pytest.approx(dg.diagnose(s).findings[0].evidence["ratio"])
    assert main(["diagnose", str(tmp_path / "run")]) == 0
    text = capsys.readouterr().out
    assert text.startswith("verdict: vanishing") and "1. use ReLU" in text
    assert main(["diagnose", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err

"""The watch examples a student copies run at a small size, write a session GradSim opens,
and the diagnosis reads it."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from gradsim.metrics import LAYER_INDEX
from gradsim.session.io import load_session
from gradsim.teaching.diagnose import KINDS, diagnose

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _example(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_lstm_example(tmp_path):
    mse = _example("watch_lstm").train(tmp_path / "run", steps=12, seq_len=10)
    s = load_session(tmp_path / "run")
    assert [u.name for u in s.units] == ["lstm", "head"] and len(s) == 12
    assert abs(s.column("loss")[-1] - mse) < 1e-6
    # clipping happens before optimizer.step(): the recorded total gradient is the clipped one
    assert (s.column("grad_norm_total") <= 1.0 + 1e-5).all()
    assert np.isfinite(s.layer_metric("act_saturation")[:, 0]).all()
    assert all(k in KINDS + ("healthy",) for k in diagnose(s).verdict)


def test_transformer_example(tmp_path):
    acc = _example("watch_transformer").train(tmp_path / "run", steps=10)
    s = load_session(tmp_path / "run")
    names = [u.name for u in s.units]
    assert names[0] == "(model)" and "tok" in names and "encoder.layers.0.self_attn" in names and names[-1] == "head"
    assert len(s) == 10 and abs(s.column("accuracy")[-1] - acc) < 1e-6
    lr = s.column("lr")
    assert lr[0] < lr[-1]  # the warm-up, as the optimizer saw it at each step
    assert np.isfinite(s.layer_metric("grad_norm")).all()
    j = names.index("tok")
    assert np.isfinite(s.layers[:, j, LAYER_INDEX["act_grad_norm"]]).all()
    assert all(k in KINDS + ("healthy",) for k in diagnose(s).verdict)

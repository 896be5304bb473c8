"""gradsim.watch on the shipped example models, under autocast + GradScaler, and compiled:
every recorded number against the test's own reference (tests/engine/test_watch.py's
``Reference``: gradients and weights read in numpy before the step, parameter deltas after
it, output gradients kept with ``retain_grad``)."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import gradsim.watch
from gradsim.metrics import LAYER_INDEX, STEP_INDEX
from gradsim.session.io import load_session

from .test_watch import CE, RTOL, Reference, _batches, _mlp

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PARAM_COLS = ("grad_norm", "bias_grad_norm", "weight_norm", "update_norm", "update_ratio")
ALL_COLS = PARAM_COLS + ("act_grad_norm",)


def _example(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _compare(s, ref, losses, skip_act=(), scale=None):
    """Every unit's numbers in every row against the reference (a unit path '' is the root, '(model)')."""
    assert len(s) == len(ref.rows) == len(losses)
    names = [u.name for u in s.units]
    assert names == [p or "(model)" for p, _ in ref.units]
    for i, row in enumerate(ref.rows):
        for j, (path, _) in enumerate(ref.units):
            for c in ALL_COLS:
                if c == "act_grad_norm" and path in skip_act:
                    assert math.isnan(s.layers[i, j, LAYER_INDEX[c]]), (i, path)
                    continue
                want = row[path][c]
                if scale is not None and c in ("grad_norm", "bias_grad_norm", "act_grad_norm"):
                    want = want / scale[i]
                got = float(s.layers[i, j, LAYER_INDEX[c]])
                if math.isnan(want):
                    assert math.isnan(got), (i, path, c, got)
                else:
                    assert got == pytest.approx(want, rel=RTOL, abs=1e-30), (i, path, c, got, want)
        total = row["_total"] / (scale[i] if scale is not None else 1.0)
        assert s.scalars[i, STEP_INDEX["grad_norm_total"]] == pytest.approx(total, rel=RTOL)
    np.testing.assert_allclose(s.column("loss"), losses, rtol=1e-7)


def _loop(model, opt, batches, loss_fn, out, clip=None, scheduler=None, steps_between=None):
    """A student's loop, with the reference read where the optimizer reads: after any clipping."""
    ref = Reference(model)
    losses = []
    with gradsim.watch(model, opt, out=out) as w:
        for x, y in batches:
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            if clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), clip)
            ref.before()
            opt.step()
            ref.after()
            if scheduler is not None:
                scheduler.step()
            w.loss(loss)
            losses.append(float(loss.detach()))
    ref.remove()
    return load_session(out), ref, losses


def test_the_example_cnn(tmp_path):
    ex = _example("watch_cnn")
    torch.manual_seed(0)
    model = ex.SmallResNet(channels=4, blocks=2)
    # the test's own record of every ReLU output, in call order (a block calls its ReLU twice)
    relu_out: list[np.ndarray] = []
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    hooks = [m.register_forward_hook(lambda mod, i, o: relu_out.append(o.detach().numpy().copy())) for m in relus]
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    s, ref, losses = _loop(model, opt, _batches(3, (16, 64), 10), CE, tmp_path / "run")
    for h in hooks:
        h.remove()
    assert [u.kind for u in s.units][:2] == ["conv2d", "batchnorm2d"] and s.units[-1].name == "fc"
    _compare(s, ref, losses)
    # Each ReLU output is judged for the unit that ran just before it: the stem's batch norm,
    # then per block bn1 and bn2 (whose ReLU follows the residual sum). Dead = channels zero
    # for every sample and position; the convolutions between are followed by a batch norm,
    # not an activation, so they keep their own output's mean and std with unknown dead/saturation.
    judged = ["bn"] + [f"blocks.{b}.{n}" for b in range(2) for n in ("bn1", "bn2")]
    names = [u.name for u in s.units]
    per_step = len(judged)
    assert len(relu_out) == 3 * per_step
    for i in range(3):
        for k, name in enumerate(judged):
            a = relu_out[i * per_step + k]
            row = s.layers[i, names.index(name)]
            assert row[LAYER_INDEX["act_mean"]] == pytest.approx(a.mean(), rel=1e-4)
            assert row[LAYER_INDEX["act_std"]] == pytest.approx(a.std(ddof=1), rel=1e-4)
            dead = np.mean(a.transpose(1, 0, 2, 3).reshape(a.shape[1], -1).max(axis=1) == 0)
            assert row[LAYER_INDEX["act_dead"]] == pytest.approx(dead, abs=1e-7)
            assert row[LAYER_INDEX["act_saturation"]] == 0
        (conv,) = ref.rows[i]["stem"]["out"]
        row = s.layers[i, names.index("stem")]
        assert row[LAYER_INDEX["act_std"]] == pytest.approx(conv.std(ddof=1), rel=1e-4)
        assert np.isnan(row[LAYER_INDEX["act_dead"]]) and np.isnan(row[LAYER_INDEX["act_saturation"]])


def test_the_example_lstm_with_clipping(tmp_path):
    ex = _example("watch_lstm")
    torch.manual_seed(0)
    model = ex.AddingLSTM(hidden=8)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    batches = [ex.adding_batch(8, 12, gen) for _ in range(3)]
    s, ref, losses = _loop(model, opt, batches, nn.functional.mse_loss, tmp_path / "run", clip=0.05)
    assert (s.column("grad_norm_total") <= 0.05 * (1 + 1e-5)).all()  # the clipped gradient, as applied
    _compare(s, ref, losses)
    for i in range(3):  # an LSTM's output is tanh-like: judged on itself
        (h,) = ref.rows[i]["lstm"]["out"]
        row = s.layers[i, 0]
        assert row[LAYER_INDEX["act_saturation"]] == pytest.approx(np.mean(np.abs(h) > 0.97), abs=1e-7)
        assert row[LAYER_INDEX["act_mean"]] == pytest.approx(h.mean(), rel=1e-4)
        assert row[LAYER_INDEX["act_std"]] == pytest.approx(h.std(ddof=1), rel=1e-4)
        assert row[LAYER_INDEX["act_dead"]] == 0


def test_the_example_transformer_with_warmup(tmp_path):
    ex = _example("watch_transformer")
    torch.manual_seed(0)
    model = ex.TinyTransformer(d_model=16, heads=2, layers=2, seq_len=8)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    warmup = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: min(1.0, (k + 1) / 50))
    gen = torch.Generator().manual_seed(0)
    batches = [ex.recall_batch(8, 8, gen) for _ in range(3)]
    s, ref, losses = _loop(model, opt, batches, CE, tmp_path / "run", scheduler=warmup)
    # attention's out_proj is used through its weights, never called: no output gradient of its own
    skip = {p for p, _ in ref.units if p.endswith("self_attn.out_proj")}
    assert len(skip) == 2
    _compare(s, ref, losses, skip_act=skip)
    np.testing.assert_allclose(s.column("lr"), [1e-3 * (k + 1) / 50 for k in range(3)], rtol=1e-12)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_with_a_grad_scaler_records_the_real_gradients(tmp_path, dtype):
    """torch.autocast on the CPU with a GradScaler: the reference reads the *scaled* gradients
    right after backward and divides by the scale the scaler used (get_scale(), read before
    scaler.step), independently of unscale_; the watch must record the unscaled numbers."""
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8, growth_interval=1)
    ref = Reference(model)
    losses, scales = [], []
    try:
        with torch.autocast("cpu", dtype=dtype):
            model(torch.randn(2, 5)).sum()
    except RuntimeError as exc:
        pytest.skip(f"autocast {dtype} does not run on this CPU: {exc}")
    with gradsim.watch(model, opt, out=tmp_path / "run", scaler=scaler) as w:
        for x, y in _batches(4, (16, 5), 3):
            opt.zero_grad()
            with torch.autocast("cpu", dtype=dtype):
                loss = CE(model(x), y)
            scaler.scale(loss).backward()
            scales.append(float(scaler.get_scale()))
            ref.before()
            steps_before = w.step
            scaler.step(opt)
            scaler.update()
            assert w.step == steps_before + 1  # no inf/NaN: every step taken
            ref.after()
            w.loss(loss)
            losses.append(float(loss.detach()))
    ref.remove()
    assert scales == [2.0**8, 2.0**9, 2.0**10, 2.0**11]  # the loss really was scaled, by a growing scale
    s = load_session(tmp_path / "run")
    _compare(s, ref, losses, scale=scales)
    # and the scaled numbers were not recorded: they are 256x-2048x larger
    assert (s.layer_metric("grad_norm")[0] * 100 < np.array([ref.rows[0][p]["grad_norm"] for p, _ in ref.units])).all()


def test_a_compiled_model_records_the_reference_numbers(tmp_path):
    """activations=False with torch.compile: the parameter numbers still match a reference read
    from the parameters alone (no module hooks on either side, so the graph stays whole)."""
    model = _mlp()
    try:
        torch.compile(model, backend="eager", fullgraph=True)(torch.randn(2, 5))
    except Exception as exc:  # any failure means compile is unavailable here
        pytest.skip(f"torch.compile does not run on this machine: {exc}")
    torch._dynamo.reset()
    ref = Reference(model)
    ref.remove()  # parameters only: its forward hooks would be traced into the graph
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    losses = []
    with gradsim.watch(model, opt, out=tmp_path / "run", activations=False) as w:
        for x, y in _batches(3, (8, 5), 3):
            opt.zero_grad()
            loss = CE(compiled(x), y)
            loss.backward()
            ref.before()
            opt.step()
            ref.after()
            w.loss(loss)
            losses.append(float(loss.detach()))
    s = load_session(tmp_path / "run")
    for row in ref.rows:  # no output gradients on either side
        for p, _ in ref.units:
            assert math.isnan(row[p]["act_grad_norm"])
    _compare(s, ref, losses)

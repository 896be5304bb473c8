"""GradSimCallback on a real Lightning Trainer (CPU) records what an independent computation gives.

The reference is the LightningModule's own record, made without gradsim: the
weights at ``on_train_batch_start`` (before the step), the gradients at
``on_after_backward`` (divided by the GradScaler's scale under
``precision="16-mixed"``, read with ``get_scale()`` there, not through
``unscale_``), the weights again at ``on_train_batch_end`` (their difference is
the update), and each unit's output gradient kept with ``retain_grad``.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("lightning")
import lightning.pytorch as pl

from gradsim.metrics import LAYER_INDEX, STEP_INDEX
from gradsim.session.io import load_session
from gradsim.watch.lightning import GradSimCallback
from gradsim.watch.writer import WatchError

RTOL = 2e-5
PATHS = ["net.0", "net.2", "net.4"]


def _norm(tensors):
    tensors = [t for t in tensors if t is not None]
    if not tensors:
        return math.nan
    return math.sqrt(sum(float(np.sum(t.detach().double().numpy() ** 2)) for t in tensors))


class Tiny(pl.LightningModule):
    """A 3-layer MLP whose own hooks keep the reference numbers of every optimizer step."""

    def __init__(self, lr=0.2, fail_at=None):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 3))
        self.lr, self.fail_at = lr, fail_at
        self.rows, self.losses, self.batch_losses = [], [], []
        self._outs = {}
        for path in PATHS:
            self.net.get_submodule(path.split(".", 1)[1]).register_forward_hook(self._keep(path))

    def _keep(self, path):
        def hook(mod, inp, out):
            if out.requires_grad:
                out.retain_grad()
                self._outs.setdefault(path, []).append(out)
        return hook

    def layer(self, path):
        return self.get_submodule(path)

    def training_step(self, batch, batch_idx):
        if self.fail_at is not None and batch_idx == self.fail_at:
            raise RuntimeError("the student's bug")
        x, y = batch
        logits = self.net(x)
        loss = nn.functional.cross_entropy(logits, y)
        acc = (logits.argmax(1) == y).float().mean()
        self.batch_losses.append(float(loss.detach()))
        return {"loss": loss, "acc": acc}

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)

    # ------------------------------------------------------ the reference
    def on_train_batch_start(self, batch, batch_idx):
        if not getattr(self, "_accumulating", False):
            self._before = {p: [self.layer(p).weight.detach().clone()] for p in PATHS}
            self._outs = {}

    def on_after_backward(self):
        plugin = self.trainer.precision_plugin
        scaler = getattr(plugin, "scaler", None)
        scale = float(scaler.get_scale()) if scaler is not None else 1.0
        self._scale = scale
        self._grads = {p: (_norm([self.layer(p).weight.grad]) / scale, _norm([self.layer(p).bias.grad]) / scale) for p in PATHS}
        self._total = _norm([q.grad for q in self.parameters()]) / scale
        self._act = {p: _norm([o.grad for o in self._outs.get(p, [])]) / scale for p in PATHS}

    def on_train_batch_end(self, outputs, batch, batch_idx):
        w_after = {p: self.layer(p).weight.detach() for p in PATHS}
        if all(torch.equal(w_after[p], self._before[p][0]) for p in PATHS):
            self._accumulating = True  # no step this batch (accumulating gradients)
            return
        self._accumulating = False
        row = {"_total": self._total, "_loss": float(outputs["loss"]), "_acc": float(outputs["acc"]), "_scale": self._scale}
        for p in PATHS:
            wn = _norm(self._before[p])
            un = _norm([w_after[p] - self._before[p][0]])
            row[p] = {"grad_norm": self._grads[p][0], "bias_grad_norm": self._grads[p][1], "weight_norm": wn,
                      "update_norm": un, "update_ratio": un / wn, "act_grad_norm": self._act[p]}
        self.rows.append(row)


def _loader(n_batches=5, batch=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_batches * batch, 6, generator=g)
    y = torch.randint(0, 3, (n_batches * batch,), generator=g)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch, shuffle=False)


def _fit(model, cb, **kw):
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_epochs=1, enable_progress_bar=False, logger=False,
                         enable_checkpointing=False, enable_model_summary=False, num_sanity_val_steps=0, **kw)
    trainer.fit(model, _loader())
    return trainer


def _check(s, rows, cols=("grad_norm", "bias_grad_norm", "weight_norm", "update_norm", "update_ratio", "act_grad_norm"),
           losses=True):
    assert len(s) == len(rows)
    assert [u.name for u in s.units] == PATHS
    for i, row in enumerate(rows):
        for j, p in enumerate(PATHS):
            for c in cols:
                got, want = float(s.layers[i, j, LAYER_INDEX[c]]), row[p][c]
                assert got == pytest.approx(want, rel=RTOL), (i, p, c, got, want)
        assert s.scalars[i, STEP_INDEX["grad_norm_total"]] == pytest.approx(row["_total"], rel=RTOL)
        if losses:
            assert s.scalars[i, STEP_INDEX["loss"]] == pytest.approx(row["_loss"], rel=1e-7)
            assert s.scalars[i, STEP_INDEX["accuracy"]] == pytest.approx(row["_acc"], rel=1e-7)


def test_every_number_matches_the_reference_on_a_real_trainer(tmp_path):
    model = Tiny()
    cb = GradSimCallback(tmp_path / "run", accuracy_key="acc")
    _fit(model, cb, callbacks=[cb])
    s = load_session(tmp_path / "run")
    assert s.model == "watched" and s.steps.tolist() == [0, 1, 2, 3, 4]
    _check(s, model.rows)
    # the callback read the gradients of *this* step: the pre-hook of Lightning's
    # optimizer.step(closure) runs before the closure's backward and would see the last step's
    assert s.layers[0, 0, LAYER_INDEX["grad_norm"]] == pytest.approx(model.rows[0]["net.0"]["grad_norm"], rel=RTOL)
    meta = json.loads((tmp_path / "run" / "session.json").read_text())
    assert meta["running"] is False and meta["replayable"] is False
    opt = model.trainer.optimizers[0]
    assert not opt._optimizer_step_pre_hooks and not opt._optimizer_step_post_hooks
    assert all(not m._forward_hooks or m in [model.net[0], model.net[2], model.net[4]] for m in model.modules())


def test_16_mixed_records_unscaled_gradients(tmp_path):
    from lightning.pytorch.plugins import MixedPrecision

    model = Tiny(lr=0.05)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=1)
    try:
        cb = GradSimCallback(tmp_path / "run", accuracy_key="acc")
        _fit(model, cb, callbacks=[cb], plugins=[MixedPrecision("16-mixed", "cpu", scaler)])
    except (RuntimeError, NotImplementedError) as exc:  # float16 autocast missing on this CPU build
        pytest.skip(f"16-mixed does not run on this CPU: {exc}")
    assert model.rows and all(r["_scale"] >= 2.0**10 for r in model.rows)  # the loss really was scaled
    s = load_session(tmp_path / "run")
    _check(s, model.rows)


def test_gradient_accumulation_and_every(tmp_path):
    """accumulate_grad_batches=2 over 8 batches is 4 optimizer steps; every=2 records steps 0 and 2,
    each with the loss of its own micro-batches."""
    model = Tiny()
    cb = GradSimCallback(tmp_path / "run", every=2, accuracy_key="acc")
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_epochs=1, enable_progress_bar=False, logger=False,
                         enable_checkpointing=False, enable_model_summary=False, num_sanity_val_steps=0,
                         accumulate_grad_batches=2, callbacks=[cb])
    trainer.fit(model, _loader(8))
    assert len(model.rows) == 4
    s = load_session(tmp_path / "run")
    assert s.steps.tolist() == [0, 2] and s.steps_run == 4
    _check(s, [model.rows[0], model.rows[2]], cols=("grad_norm", "bias_grad_norm", "weight_norm", "update_norm"), losses=False)
    bl = model.batch_losses  # the loss of a step: the mean over its two micro-batches
    assert s.column("loss").tolist() == pytest.approx([(bl[0] + bl[1]) / 2, (bl[4] + bl[5]) / 2], rel=1e-6)


def test_an_exception_in_training_closes_the_session(tmp_path):
    model = Tiny(fail_at=3)
    cb = GradSimCallback(tmp_path / "run")
    with pytest.raises(RuntimeError, match="the student's bug"):
        _fit(model, cb, callbacks=[cb])
    meta = json.loads((tmp_path / "run" / "session.json").read_text())
    assert meta["running"] is False and meta["steps_run"] == 3
    s = load_session(tmp_path / "run")
    _check(s, model.rows, cols=("grad_norm", "update_norm"), losses=False)
    np.testing.assert_allclose(s.column("loss"), [r["_loss"] for r in model.rows], rtol=1e-7)
    assert np.isnan(s.column("accuracy")).all()  # no accuracy_key given


def test_bad_arguments_and_two_optimizers(tmp_path):
    with pytest.raises(WatchError, match="every = 0"):
        GradSimCallback(tmp_path / "a", every=0)

    class Two(Tiny):
        def configure_optimizers(self):
            return [torch.optim.SGD(self.net[0].parameters(), lr=0.1), torch.optim.SGD(self.net[2].parameters(), lr=0.1)]

        @property
        def automatic_optimization(self):
            return False

        def training_step(self, batch, batch_idx):
            return None

    cb = GradSimCallback(tmp_path / "b")
    with pytest.raises(WatchError, match="one optimizer; the LightningModule configured 2"):
        _fit(Two(), cb, callbacks=[cb])


def test_import_gradsim_does_not_load_lightning():
    code = "import sys, gradsim, gradsim.watch; assert 'lightning' not in sys.modules and 'pytorch_lightning' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_lightning_clipping_comes_after_the_recorded_gradients(tmp_path):
    """Lightning clips after on_before_optimizer_step: grad_norm is the gradient before its
    clipping (as the docs say), and update_norm shows the clipped step."""
    model = Tiny(lr=0.2)
    cb = GradSimCallback(tmp_path / "run", accuracy_key="acc")
    _fit(model, cb, callbacks=[cb], gradient_clip_val=0.01, gradient_clip_algorithm="norm")
    s = load_session(tmp_path / "run")
    _check(s, model.rows, cols=("grad_norm", "bias_grad_norm", "weight_norm", "update_norm"))
    assert s.scalars[0, STEP_INDEX["grad_norm_total"]] > 0.05  # well above the clip: read before it
    # step 0 (no momentum yet): the update is lr x the clipped gradient, whose norm is at most 0.01
    weights_update = float(np.sqrt(np.sum(s.layer_metric("update_norm")[0].astype(np.float64) ** 2)))
    assert weights_update <= 0.2 * 0.01 * (1 + 1e-5)

"""The hand-written backward through time gives autograd's numbers (to float32 rounding)."""
import numpy as np
import pytest
import torch

from gradsim.config import RunConfig
from gradsim.models import rnn_backprop
from gradsim.train.trainer import Trainer

from gradsim.metrics import STEP_INDEX as _STEP_INDEX

#: Every step column but the wall clock (elapsed_s).
TIMED = [i for i in range(len(_STEP_INDEX)) if i != _STEP_INDEX["elapsed_s"]]

CASES = [("rnn", "tanh", 1), ("rnn", "relu", 2), ("rnn", "tanh", 3), ("lstm", "tanh", 1), ("lstm", "tanh", 3),
         ("gru", "tanh", 1), ("gru", "tanh", 2)]


def _cfg(model, act, depth, dataset):
    return RunConfig(model=model, activation=act, depth=depth, dataset=dataset, seq_len=9, width=12, n_samples=200,
                     batch_size=16, steps=6, stats_every=2, init="normal", init_std=0.9, recurrent_init="normal:1.4",
                     bias_std=0.2, optimizer="adam", lr=0.01)


@pytest.mark.parametrize("dataset", ["adding", "recall-first"])
@pytest.mark.parametrize("model,act,depth", CASES)
def test_direct_pass_equals_autograd_on_the_same_weights(model, act, depth, dataset):
    t = Trainer(_cfg(model, act, depth, dataset))
    x, y = t.batch(0)
    net = t.net
    for a in t.arenas.values():
        a.attach_grads()
    p = rnn_backprop.run(net, x, y, t.regression)
    direct = {n: q.grad.clone() for n, q in net.named_parameters()}
    for a in t.arenas.values():
        a.zero_grad()
    out, hs, gates = net.forward_capture(x)
    loss = t._loss(out, y)
    loss.backward()
    torch.testing.assert_close(p.out, out.detach(), rtol=1e-5, atol=1e-6)
    assert float(p.loss) == pytest.approx(float(loss.detach()), rel=1e-5)
    torch.testing.assert_close(p.H, torch.stack([h.detach() for h in hs]), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(p.dH, torch.stack([h.grad for h in hs]), rtol=1e-4, atol=1e-7)
    if gates:
        torch.testing.assert_close(p.gate, torch.stack(gates), rtol=1e-5, atol=1e-6)
    for n, q in net.named_parameters():
        torch.testing.assert_close(direct[n], q.grad, rtol=1e-4, atol=1e-6, msg=n)


@pytest.mark.parametrize("model,act,depth", CASES[::2])
def test_a_run_records_the_same_rows_on_either_pass(model, act, depth):
    runs = []
    for use_direct in (True, False):
        t = Trainer(_cfg(model, act, depth, "adding"))
        t.use_direct = use_direct
        t.run()
        assert t.last_pass == ("direct" if use_direct else "autograd")
        runs.append(t.session)
    a, b = runs
    np.testing.assert_allclose(a.layers, b.layers, rtol=2e-3, atol=1e-6)  # six Adam steps amplify rounding a little
    np.testing.assert_allclose(a.scalars[:, TIMED], b.scalars[:, TIMED], rtol=2e-3, atol=1e-6)


@pytest.mark.parametrize("model,act,depth", CASES)
def test_a_reused_workspace_gives_what_fresh_buffers_give(model, act, depth):
    """The trainer's workspace keeps buffers from pass to pass: nothing of the first batch may leak into the second."""
    t = Trainer(_cfg(model, act, depth, "recall-first"))
    for a in t.arenas.values():
        a.attach_grads()
    ws = rnn_backprop.Workspace()
    rnn_backprop.run(t.net, *t.batch(0), t.regression, ws)
    x, y = t.batch(1)
    kept = rnn_backprop.run(t.net, x, y, t.regression, ws)
    kept_grads = {n: q.grad.clone() for n, q in t.net.named_parameters()}
    fresh = rnn_backprop.run(t.net, x, y, t.regression)
    for name in ("out", "loss", "H", "dH", "gate"):
        a, b = getattr(kept, name), getattr(fresh, name)
        assert (a is None and b is None) or torch.equal(a, b), name
    for n, q in t.net.named_parameters():
        assert torch.equal(kept_grads[n], q.grad), n

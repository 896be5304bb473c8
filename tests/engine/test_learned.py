"""Decision boundary and confusion matrix: equal to the network's own predictions, and they never change the run."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gradsim.commands import Scheduled, SetBatchNorm
from gradsim.config import RunConfig
from gradsim.teaching.learned import boundary_grid, confusion
from gradsim.metrics import STEP_INDEX
from gradsim.train.trainer import Trainer


def _cfg(**kw) -> RunConfig:
    base = dict(dataset="moons", n_samples=200, depth=3, width=8, batch_size=16, steps=40, stats_every=5)
    base.update(kw)
    return RunConfig(**base)


def _logits_by_hand(trainer: Trainer, x: np.ndarray) -> np.ndarray:
    """The MLP written out from its weights (eval-mode batch norm by its formula), independent of GradNet.forward."""
    net = trainer.net
    h = torch.as_tensor(x)
    with torch.no_grad():
        for i in range(net.depth):
            lin = net.linears[i]
            z = h @ lin.weight.T + lin.bias
            if net.has_batchnorm:
                bn = net.norms[i]
                z = (z - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
            h = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}[net.activations[i]](z)
        out = net.linears[-1]
        return torch.softmax(h @ out.weight.T + out.bias, dim=1).numpy()


@pytest.mark.parametrize("batchnorm", [False, True])
def test_grid_probabilities_equal_the_networks_predictions(batchnorm):
    t = Trainer(_cfg(activation="tanh"), (Scheduled(5, SetBatchNorm(True)),) if batchnorm else ())
    t.run(20)
    g = boundary_grid(t, n=16)
    assert g.probs.shape == (16, 16, 2) and g.step == 20
    want = _logits_by_hand(t, g.grid_points()).reshape(16, 16, 2)
    np.testing.assert_allclose(g.probs, want, rtol=1e-5, atol=1e-6)
    # The grid covers the training points, and the drawn points are training points.
    x = t.data.x_train
    assert g.xs[0] < x[:, 0].min() and g.xs[-1] > x[:, 0].max()
    assert g.ys[0] < x[:, 1].min() and g.ys[-1] > x[:, 1].max()
    assert all((x == p).all(axis=1).any() for p in g.points[:20])


def test_looking_never_changes_the_run():
    """Batch norm in the net: an eval-mode forward must not touch running statistics or the batches."""
    cfg = _cfg(activation="tanh", batchnorm=True)
    a, b = Trainer(cfg), Trainer(cfg)
    for _ in range(15):
        a.step()
        b.step()
        boundary_grid(b, n=12)
        confusion(b)
    assert b.net.training
    sa, sb = a.session.scalars.copy(), b.session.scalars.copy()
    sa[:, STEP_INDEX["elapsed_s"]] = sb[:, STEP_INDEX["elapsed_s"]] = 0
    np.testing.assert_array_equal(sa, sb)
    np.testing.assert_array_equal(a.session.layers, b.session.layers)


def test_confusion_matrix_counts_the_held_out_predictions():
    t = Trainer(_cfg(dataset="digits", n_samples=300, depth=2, width=16, steps=30))
    t.run(30)
    c = confusion(t)
    probs = _logits_by_hand(t, t.data.x_test)
    pred, y = probs.argmax(1), t.data.y_test
    assert c.split == "held-out" and c.counts.shape == (10, 10)
    for i in range(10):
        for j in range(10):
            assert c.counts[i, j] == int(((y == i) & (pred == j)).sum())
    assert c.accuracy == pytest.approx(float((pred == y).mean()))
    i, j = np.unravel_index(np.argmax(c.counts), c.counts.shape)
    np.testing.assert_allclose(c.mean_probs[i, j], probs[(y == i) & (pred == j)].mean(axis=0), rtol=1e-5)


def test_boundary_refuses_inputs_that_are_not_2d():
    t = Trainer(_cfg(dataset="digits", n_samples=100, depth=1, width=8))
    with pytest.raises(ValueError, match="2-D inputs"):
        boundary_grid(t)

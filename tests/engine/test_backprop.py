"""The hand-written forward/backward (gradsim/models/mlp_backprop.py) against autograd.

The hand-written pass runs the very kernels autograd runs for the same graph
(addmm, the two mm of AddmmBackward0, the bias's sum over the batch, the
activations' aten backward kernels, the cross-entropy head's backward), in the
same order, so every comparison here is exact (``torch.equal`` /
``assert_array_equal``): a difference would be a bug, not rounding.

That exactness rests on one property of the machine's BLAS: a batched ``bmm``
over 64-byte-aligned operands gives, slice by slice, the same bits as the
per-layer ``mm`` autograd runs (true for MKL on the x86 machines measured).
``_BLAS_EXACT`` probes it once; on a BLAS where it does not hold the pass still
has to agree with autograd, but to float32 rounding (relative 1e-4 over a few
steps, 1e-5 for one step), and a warning says the exact checks were relaxed.
"""
import copy
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gradsim.models import mlp_backprop as backprop
from gradsim.commands import (
    Reinit,
    SetActivation,
    SetBatchNorm,
    SetClip,
    SetLayerNorm,
    SetLR,
    SetOptimizer,
    SetResidual,
)
from gradsim.config import ACTIVATIONS, RunConfig
from gradsim.train.trainer import Trainer
from tests.engine.fixed_batch import fixed_batch


def _blas_batches_exactly() -> bool:
    """Does bmm over the pass's aligned layer blocks equal, slice by slice, mm on
    fresh (aligned) copies as autograd runs it, bit for bit, on this machine?"""
    g = torch.Generator().manual_seed(0)
    for batch, width, layers in ((128, 64, 5), (48, 64, 3), (17, 33, 3), (130, 5, 2)):
        _, dz = backprop._layer_block(layers, batch, width, torch.float32)
        _, h = backprop._layer_block(layers, batch, width, torch.float32)
        dz.copy_(torch.randn(layers, batch, width, generator=g))
        h.copy_(torch.randn(layers, batch, width, generator=g))
        _, stacked = backprop._layer_block(layers, width, width, torch.float32)  # as the pass writes dW
        torch.bmm(dz.transpose(1, 2), h, out=stacked)
        for i in range(layers):
            if not torch.equal(stacked[i], dz[i].clone().t().mm(h[i].clone())):
                return False
    return True


_BLAS_EXACT = _blas_batches_exactly()


@pytest.fixture(autouse=True)
def _say_when_relaxed():
    if not _BLAS_EXACT:
        warnings.warn("this BLAS's bmm differs from per-slice mm in the last bit: "
                      "hand-written pass compared to autograd within float32 rounding, not bit for bit", stacklevel=2)
    yield


def _fixed_batch(trainer, n=48, seed=5):
    return fixed_batch(trainer, n, seed)


def _pair(cfg, n=48):
    """Two trainers on the same config and batch: the hand-written pass and autograd."""
    fast, slow = Trainer(cfg), Trainer(cfg)
    slow.use_direct = False
    _fixed_batch(fast, n)
    _fixed_batch(slow, n)
    return fast, slow


def _same(a, b, msg, rtol=1e-4):
    """Exactly equal (or, see _BLAS_EXACT, within rounding), NaN where the other has NaN."""
    tol = 0 if _BLAS_EXACT else rtol
    torch.testing.assert_close(a, b, rtol=tol, atol=tol * 1e-30, equal_nan=True, msg=msg)


def _equal(a, b, msg=""):
    """torch.equal, or within one step's rounding where the BLAS does not batch exactly."""
    if _BLAS_EXACT:
        assert torch.equal(a, b), msg
    else:
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-35, msg=msg)


def _array_equal(a, b, err_msg=""):
    if _BLAS_EXACT:
        np.testing.assert_array_equal(a, b, err_msg=err_msg)
    else:
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=0, equal_nan=True, err_msg=err_msg)


def _assert_same_step(fast, slow, rec_f, rec_s, where):
    # Every per-layer number: dL/dW, dL/db, ||W||, update norm and ratio, dL/dz,
    # the activation statistics and the prediction (NaN where not recorded).
    _array_equal(rec_f.layers, rec_s.layers, err_msg=where)
    # loss, accuracy, total and applied gradient norm, clipped, lr, diverged, held-out accuracy
    # (not the elapsed time)
    from gradsim.metrics import STEP_INDEX

    timed = [i for i in range(len(rec_f.scalars)) if i != STEP_INDEX["elapsed_s"]]
    _array_equal(rec_f.scalars[timed], rec_s.scalars[timed], err_msg=where)
    assert rec_f.has_stats == rec_s.has_stats
    for key in slow.arenas:
        _same(fast.arenas[key].grad, slow.arenas[key].grad, f"{where}: {key} gradients")
        _same(fast.arenas[key].data, slow.arenas[key].data, f"{where}: {key} after the update")
    for p, q in zip(fast.net.parameters(), slow.net.parameters()):
        _same(p.detach(), q.detach(), where)


# ------------------------------------------------- the pass against autograd
@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_gradient_and_dz_equals_autograd_on_the_same_weights(activation, residual):
    cfg = RunConfig(depth=5, width=24, activation=activation, init="xavier_normal", bias_std=0.1, residual=residual, steps=2)
    t = Trainer(cfg)
    t.step()  # away from the initial point
    x, y = _fixed_batch(t, 40)
    assert backprop.supports(t.net)
    direct = t._direct_pass(x)
    logits, loss = direct.run(t.net, x, y)

    ref = copy.deepcopy(t.net)  # separate Parameters; autograd through the network's own forward
    for p in ref.parameters():
        p.grad = None
    ref_logits, zs, hs = ref.forward_capture(x)
    for z in zs:
        z.retain_grad()
    ref_loss = F.cross_entropy(ref_logits, y)
    ref_loss.backward()

    _equal(loss, ref_loss.detach())
    _equal(logits, ref_logits.detach())
    for l in range(cfg.depth):
        _equal(direct.g[l], zs[l].grad, f"dL/dz of layer {l + 1}")
        _equal(direct.h[l], hs[l].detach(), f"activation of layer {l + 1}")
    _equal(direct.g_out, zs[-1].grad)
    for k, lin in enumerate(ref.linears):
        _equal(t.net.linears[k].weight.grad, lin.weight.grad, f"dL/dW of layer {k + 1}")
        _equal(t.net.linears[k].bias.grad, lin.bias.grad, f"dL/db of layer {k + 1}")


@pytest.mark.parametrize("width,n,dataset", [(1, 1, "spiral"), (2, 3, "spiral"), (3, 5, "spiral"), (5, 130, "spiral"),
                                             (33, 7, "spiral"), (12, 48, "spiral"), (7, 130, "digits"), (64, 100, "digits")])
@pytest.mark.parametrize("residual", [False, True])
def test_odd_sizes_equal_autograd(width, n, dataset, residual):
    """At any size: the hidden layers' dW come from one bmm and their db from one
    sum, equal to per-layer mm/sum (what autograd runs); and MKL's gemm, whose last
    bit depends on its operands' alignment, sees 64-byte aligned matrices as it
    does under autograd (a 130 x 5 block shifted by 4 bytes rounds differently)."""
    cfg = RunConfig(depth=4, width=width, activation="elu", residual=residual, steps=3, stats_every=1, dataset=dataset)
    fast, slow = _pair(cfg, n)
    for s in range(3):
        _assert_same_step(fast, slow, fast.step(), slow.step(), f"width {width} batch {n} step {s}")


def test_mixed_activations_per_layer_equal_autograd():
    cfg = RunConfig(depth=len(ACTIVATIONS), width=16, activation="tanh", residual=True, steps=4)
    fast, slow = _pair(cfg)
    for t in (fast, slow):
        for layer, name in enumerate(ACTIVATIONS, start=1):
            t.apply(SetActivation(name, layer))
    for s in range(4):
        _assert_same_step(fast, slow, fast.step(), slow.step(), f"step {s}")
    assert fast.last_pass == "direct" and slow.last_pass == "autograd"


# ---------------------------------- whole runs: hand-written pass vs autograd
# Clipping by norm and by value, SGD, momentum and Adam, an lr change, within one run.
RUN_SCHEDULE = {
    2: SetClip("norm", 0.05),
    3: SetOptimizer("momentum"),
    5: SetClip("value", 1e-3),
    6: SetOptimizer("adam"),
    8: SetLR(0.002),
    9: SetClip("none"),
}


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_runs_equal_autograd_step_by_step(activation, residual):
    cfg = RunConfig(depth=4, width=16, activation=activation, init="he_normal", residual=residual, lr=0.05,
                    stats_every=3, steps=11)
    fast, slow = _pair(cfg)
    for s in range(cfg.steps):
        cmd = RUN_SCHEDULE.get(s)
        if cmd is not None:
            fast.apply(cmd)
            slow.apply(cmd)
        rec_f, rec_s = fast.step(), slow.step()
        assert fast.last_pass == "direct"
        _assert_same_step(fast, slow, rec_f, rec_s, f"{activation} residual={residual} step {s}")
    assert rec_f.scalar("clipped") == 0.0 and fast.session.events == slow.session.events
    # the schedule really clipped: at step 2 (norm) and 5 (value)
    clipped = fast.session.column("clipped")
    assert clipped[2] == 1.0 and clipped[5] == 1.0


def test_toggles_switch_paths_at_their_step_and_every_number_still_equals_autograd():
    schedule = {
        2: [SetBatchNorm(True)],  # autograd from here
        4: [SetBatchNorm(False), Reinit("xavier_normal")],  # back to the hand-written pass
        5: [SetResidual(True)],
        6: [SetLayerNorm(True), SetOptimizer("adam")],  # autograd
        7: [SetResidual(False)],
        8: [SetLayerNorm(False), SetActivation("gelu")],  # hand-written again
        9: [SetActivation("relu", 2), SetClip("norm", 0.02)],
        10: [SetOptimizer("momentum"), SetResidual(True, 0.5)],
        11: [SetBatchNorm(True), SetClip("value", 1e-3)],
        12: [SetBatchNorm(False)],
    }
    expected = {2: "autograd", 3: "autograd", 6: "autograd", 7: "autograd", 11: "autograd"}
    cfg = RunConfig(depth=5, width=16, activation="tanh", init="xavier_normal", lr=0.05, stats_every=2, steps=14)
    fast, slow = _pair(cfg)
    for s in range(cfg.steps):
        for cmd in schedule.get(s, ()):
            fast.apply(cmd)
            slow.apply(cmd)
        rec_f, rec_s = fast.step(), slow.step()
        assert fast.last_pass == expected.get(s, "direct"), f"step {s}"
        _assert_same_step(fast, slow, rec_f, rec_s, f"step {s}")
    assert [e.step for e in fast.session.events if e.kind != "start"] == [s for s in sorted(schedule) for _ in schedule[s]]


def test_a_toggle_changes_the_very_step_it_applies_to():
    """The hand-written pass reads the activation and the residual switch at every
    step: a step after a toggle equals a fresh autograd trainer built that way."""
    cfg = RunConfig(depth=4, width=16, activation="tanh", steps=3)
    t = Trainer(cfg)
    x, y = _fixed_batch(t)
    t.step()
    weights = [p.detach().clone() for p in t.net.parameters()]
    t.apply(SetActivation("relu"))
    t.apply(SetResidual(True, 0.7))
    rec = t.step()
    assert t.last_pass == "direct"
    ref = Trainer(cfg.with_changes(activation="relu", residual=True, residual_alpha=0.7))
    ref.use_direct = False
    _fixed_batch(ref)
    with torch.no_grad():
        for p, w in zip(ref.net.parameters(), weights):
            p.copy_(w)
    ref_rec = ref.step()
    _array_equal(rec.layer_metric("act_grad_norm"), ref_rec.layer_metric("act_grad_norm"))
    _array_equal(rec.layer_metric("grad_norm"), ref_rec.layer_metric("grad_norm"))


def test_a_new_batch_size_and_depth_one_still_equal_autograd():
    cfg = RunConfig(depth=1, width=8, activation="selu", steps=4, stats_every=1)
    fast, slow = _pair(cfg, n=48)
    _assert_same_step(fast, slow, fast.step(), slow.step(), "batch 48")
    _fixed_batch(fast, 17, seed=9)
    _fixed_batch(slow, 17, seed=9)
    _assert_same_step(fast, slow, fast.step(), slow.step(), "batch 17")
    assert fast._direct.batch == 17


def test_divergence_is_detected_the_same_way():
    cfg = RunConfig(depth=6, width=16, activation="relu", init="normal", init_std=3.0, lr=50.0, steps=30)
    fast, slow = _pair(cfg)
    while not fast.finished:
        rec_f, rec_s = fast.step(), slow.step()
        _assert_same_step(fast, slow, rec_f, rec_s, f"step {rec_f.step}")
    assert fast.diverged_at is not None and fast.diverged_at == slow.diverged_at
    assert fast.session.events == slow.session.events


def test_grads_stay_views_of_the_arena_after_a_hand_written_step():
    t = Trainer(RunConfig(depth=3, width=8))
    t.step()
    t.net.zero_grad()  # set_to_none: .grad leaves the arena
    t.step()
    assert t.last_pass == "direct"
    for arena in t.arenas.values():
        assert all(p.grad is g for p, g in zip(arena.params, arena.grad_views))


def test_supports_refuses_normalisation():
    t = Trainer(RunConfig(depth=3, width=8))
    assert backprop.supports(t.net)
    t.apply(SetBatchNorm(True))
    assert not backprop.supports(t.net)
    t.apply(SetBatchNorm(False))
    t.apply(SetLayerNorm(True))
    assert not backprop.supports(t.net)

"""The flat parameter arena and the flat optimizers against the per-tensor path.

The arena only moves where parameters and gradients live and how their norms
are reduced; it must not change a single number. So every comparison here is
exact (``torch.equal``): the same float32 operations on the same values give
the same bits, and any difference would be a bug, not rounding.
"""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gradsim.train import optimizers
from gradsim.arena import Arena
from gradsim.commands import Reinit, SetActivation, SetBatchNorm, SetClip, SetLR, SetOptimizer
from gradsim.config import RunConfig
from gradsim.train.trainer import Trainer
from tests.engine.fixed_batch import fixed_batch


def _fixed_batch(trainer, n=48, seed=7):
    return fixed_batch(trainer, n, seed)


# --------------------------------------------------------------- the arena
def test_parameters_and_grads_are_views_into_the_flat_buffers():
    t = Trainer(RunConfig(depth=4, width=16, batchnorm=True))
    t.step()
    assert set(t.arenas) == {"weight", "bias", "batchnorm1d"}
    for arena in t.arenas.values():
        assert arena.owns_storage()
        base = arena.grad.data_ptr()
        for p, off in zip(arena.params, arena.offsets):
            assert p.grad.data_ptr() == base + off * arena.grad.element_size()
        assert torch.equal(arena.data, torch.cat([p.detach().reshape(-1) for p in arena.params]))
        assert torch.equal(arena.grad, torch.cat([p.grad.reshape(-1) for p in arena.params]))
    # hidden layers 2..depth are one [depth - 1, width * width] run
    assert (16 * 2, 3, 16 * 16) in t.arenas["weight"].runs


@pytest.mark.parametrize(
    "cfg",
    [
        RunConfig(depth=6, width=24, batchnorm=True, activation="relu", init="he_normal"),
        RunConfig(depth=3, width=64, dataset="digits"),  # layer 1 is 64x64 too: it joins the hidden run
        RunConfig(depth=1, width=8),
    ],
)
def test_arena_norms_equal_the_per_tensor_norms_on_the_same_weights(cfg):
    t = Trainer(cfg)
    t.run(steps=2)
    for arena in t.arenas.values():
        for flat, tensors in ((arena.grad, [p.grad for p in arena.params]), (arena.data, [p.detach() for p in arena.params])):
            per_tensor = torch.stack([torch.linalg.vector_norm(x) for x in tensors])
            assert torch.equal(arena.norms(flat), per_tensor)
            assert torch.equal(arena.norms(flat, ord=float("inf")), torch.stack([x.abs().max() for x in tensors]))


def test_a_replaced_grad_is_reattached_before_the_next_step():
    t = Trainer(RunConfig(depth=3, width=8))
    t.step()
    t.net.zero_grad()  # set_to_none: the grads leave the arena
    assert t.net.linears[0].weight.grad is None
    t.step()
    assert all(a.owns_storage() for a in t.arenas.values())
    assert t.net.linears[0].weight.grad.data_ptr() == t.arenas["weight"].grad.data_ptr()
    assert t.arenas["weight"].norms(t.arenas["weight"].grad)[0] > 0


def test_arena_refuses_mixed_dtypes_and_empty_lists():
    with pytest.raises(ValueError, match="at least one"):
        Arena([])
    with pytest.raises(ValueError, match="one dtype"):
        Arena([nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2, dtype=torch.float64))])


# ---------------------------------------------------------- the optimizers
def _torch_optimizer(name, params, lr):
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, foreach=True)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, foreach=True)
    return torch.optim.Adam(params, lr=lr, foreach=True)


@pytest.mark.parametrize("name", optimizers.OPTIMIZER_NAMES)
def test_flat_optimizers_are_bit_for_bit_torch_optim(name):
    # Odd sizes (7, 3x5) so the vectorised kernels' tails are exercised too;
    # gradients over eight orders of magnitude.
    shapes = [(3, 5), (5, 5), (5, 5), (7,), (2, 5)]
    g = torch.Generator().manual_seed(3)
    mine = [nn.Parameter(torch.randn(s, generator=g)) for s in shapes]
    ref = [nn.Parameter(p.detach().clone()) for p in mine]
    arenas = {"a": Arena(mine[:3]), "b": Arena(mine[3:])}
    opt = optimizers.build_optimizer(name, arenas, 0.01)
    topt = _torch_optimizer(name, ref, 0.01)
    for step in range(12):
        grads = [torch.randn(s, generator=g) * 10.0 ** (step % 8 - 4) for s in shapes]
        for a in arenas.values():
            a.zero_grad()
        for p, q, gr in zip(mine, ref, grads):
            p.grad.add_(gr)
            q.grad = gr.clone()
        if step == 6:  # a live learning-rate change
            opt.lr = 0.2
            for group in topt.param_groups:
                group["lr"] = 0.2
        opt.step()
        topt.step()
        for p, q in zip(mine, ref):
            assert torch.equal(p.detach(), q.detach()), f"{name} step {step}"
        for p, q in zip(mine, ref):
            for key, value in opt.state_of(p).items():
                expected = topt.state[q][key]
                if isinstance(value, torch.Tensor):
                    assert torch.equal(value, expected)
                else:
                    assert value == float(expected)


def test_unknown_optimizer_is_refused_with_the_allowed_names():
    with pytest.raises(ValueError, match="allowed: sgd, momentum, adam"):
        optimizers.build_optimizer("rmsprop", {}, 0.1)


# ------------------------------------- a whole run against the per-tensor path
class _Reference:
    """The per-tensor way: separate Parameters, plain autograd, torch.optim, and
    torch's clip_grad_norm_/clip_grad_value_, fed the same batch and the same
    toggles at the same steps. Shares no code with the Trainer's step."""

    ACT = {"tanh": torch.tanh, "relu": F.relu, "sigmoid": torch.sigmoid}

    def __init__(self, trainer):
        self.linears = copy.deepcopy(trainer.net.linears)
        self.norms = copy.deepcopy(trainer.net.norms)
        self.activations = list(trainer.net.activations)
        self.lr = trainer.lr
        self.optimizer_name = trainer.optimizer_name
        self.clip = (trainer.clip_mode, trainer.clip_threshold)
        self.opt = _torch_optimizer(self.optimizer_name, self.params(), self.lr)

    def params(self):
        return [lin.weight for lin in self.linears] + [lin.bias for lin in self.linears] + list(self.norms.parameters())

    def rebuild(self, keep_state):
        old = self.opt
        self.opt = _torch_optimizer(self.optimizer_name, self.params(), self.lr)
        if keep_state:
            for p in self.params():
                if p in old.state:
                    self.opt.state[p] = old.state[p]

    def apply(self, cmd, trainer):
        if isinstance(cmd, SetBatchNorm):
            self.norms = nn.ModuleList(nn.BatchNorm1d(lin.out_features) for lin in self.linears[:-1]) if cmd.on else nn.ModuleList()
            self.rebuild(keep_state=True)
        elif isinstance(cmd, Reinit):  # the draw itself is the trainer's; copy it, drop the moments
            with torch.no_grad():
                for mine, theirs in zip(self.linears, trainer.net.linears):
                    mine.weight.copy_(theirs.weight)
                    mine.bias.copy_(theirs.bias)
            for lin in self.linears:
                self.opt.state.pop(lin.weight, None)
                self.opt.state.pop(lin.bias, None)
        elif isinstance(cmd, SetOptimizer):
            self.optimizer_name = cmd.name
            self.rebuild(keep_state=False)
        elif isinstance(cmd, SetLR):
            self.lr = cmd.lr
            for group in self.opt.param_groups:
                group["lr"] = cmd.lr
        elif isinstance(cmd, SetClip):
            self.clip = (cmd.mode, cmd.threshold)
        elif isinstance(cmd, SetActivation):
            self.activations = [cmd.name] * len(self.activations)

    def step(self, x, y):
        for p in self.params():
            p.grad = None
        h, zs = x, []
        for i, lin in enumerate(self.linears):
            z = lin(h)
            z.retain_grad()
            zs.append(z)
            if i < len(self.linears) - 1:
                a = self.norms[i](z) if len(self.norms) else z
                h = self.ACT[self.activations[i]](a)
        loss = F.cross_entropy(zs[-1], y)
        loss.backward()
        grad_w = torch.stack([lin.weight.grad.norm() for lin in self.linears])
        grad_b = torch.stack([lin.bias.grad.norm() for lin in self.linears])
        grad_z = torch.stack([z.grad.norm() for z in zs])
        weight = torch.stack([lin.weight.detach().norm() for lin in self.linears])
        mode, thr = self.clip
        if mode == "norm":
            torch.nn.utils.clip_grad_norm_(self.params(), thr, foreach=True)
        elif mode == "value":
            torch.nn.utils.clip_grad_value_(self.params(), thr, foreach=True)
        self.opt.step()
        return loss.detach(), grad_w, grad_b, grad_z, weight


SCHEDULE = {
    2: SetBatchNorm(True),
    4: Reinit("he_normal"),
    5: SetClip("norm", 0.05),
    6: SetOptimizer("adam"),
    8: SetLR(0.003),
    9: SetBatchNorm(False),
    10: SetClip("value", 1e-3),
    11: SetOptimizer("momentum"),
    13: SetActivation("tanh"),
    14: SetClip("none"),
}


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_every_toggle_applies_at_its_step_exactly_as_on_the_per_tensor_path(optimizer):
    t = Trainer(RunConfig(depth=4, width=16, activation="relu", init="he_normal", optimizer=optimizer, lr=0.05, steps=16))
    x, y = _fixed_batch(t)
    ref = _Reference(t)
    for s in range(16):
        cmd = SCHEDULE.get(s)
        if cmd is not None:
            t.apply(cmd)
            ref.apply(cmd, t)
        rec = t.step()
        loss, gw, gb, gz, wn = ref.step(x, y)
        assert rec.scalar("loss") == loss.item(), f"step {s}"
        np.testing.assert_array_equal(rec.layer_metric("grad_norm"), gw.numpy(), err_msg=f"step {s}")
        np.testing.assert_array_equal(rec.layer_metric("bias_grad_norm"), gb.numpy(), err_msg=f"step {s}")
        np.testing.assert_array_equal(rec.layer_metric("act_grad_norm"), gz.numpy(), err_msg=f"step {s}")
        np.testing.assert_array_equal(rec.layer_metric("weight_norm"), wn.numpy(), err_msg=f"step {s}")
        for mine, theirs in zip(t.net.parameters(), [*ref.linears.parameters(), *ref.norms.parameters()]):
            assert torch.equal(mine.detach(), theirs.detach()), f"weights differ after step {s}"
    assert [e.step for e in t.session.events if e.kind != "start"] == sorted(SCHEDULE)

"""Live changes between steps: activation, batch norm, re-init, lr, optimizer."""
import numpy as np
import pytest
import torch

from gradsim.commands import CommandError, Reinit, Scheduled, SetActivation, SetBatchNorm, SetLR, SetOptimizer, parse_event
from gradsim.config import RunConfig
from gradsim.train.trainer import Trainer


def _consistent(t: Trainer) -> None:
    """The optimizer owns exactly the live parameters and keeps state for no others."""
    opt_params = t.optimizer.params()
    live = list(t.net.parameters())
    assert {id(p) for p in opt_params} == {id(p) for p in live}
    assert len(opt_params) == len(live)
    assert set(t.optimizer.state) <= set(t.arenas) and t.optimizer.arenas == t.arenas
    assert all(a.owns_storage() for a in t.arenas.values())


def test_batchnorm_on_off_keeps_adam_moments_of_survivors():
    t = Trainer(RunConfig(depth=4, width=16, optimizer="adam", lr=1e-3, steps=50))
    t.run(steps=3)
    w = t.net.linears[2].weight
    m_before = t.optimizer.state_of(w)["exp_avg"].clone()
    t.apply(SetBatchNorm(True))
    _consistent(t)
    assert t.net.has_batchnorm and len(t.net.norm_params()) == 2 * 4
    assert torch.equal(t.optimizer.state_of(w)["exp_avg"], m_before)  # survivor keeps its moments
    assert not any(t.optimizer.has_state(p) for p in t.net.norm_params())  # new params start fresh
    t.run(steps=2)
    bn = t.net.norm_params()
    assert all(t.optimizer.has_state(p) for p in bn)
    t.apply(SetBatchNorm(False))
    _consistent(t)
    assert not t.net.has_batchnorm and t.optimizer.has_state(w)
    assert sum(p.numel() for p in t.net.parameters()) == t.config.param_count()


def test_reinit_drops_state_of_reinitialised_parameters_only():
    t = Trainer(RunConfig(depth=3, width=16, optimizer="adam", lr=1e-3, batchnorm=True))
    t.run(steps=2)
    before = t.net.linears[0].weight.detach().clone()
    bn = t.net.norm_params()
    t.apply(Reinit("he_normal"))
    _consistent(t)
    assert not torch.equal(before, t.net.linears[0].weight)
    assert not any(t.optimizer.has_state(lin.weight) or t.optimizer.has_state(lin.bias) for lin in t.net.linears)
    assert all(t.optimizer.has_state(p) for p in bn)
    t.apply(Reinit("normal", 2.0))
    assert t.net.linears[1].weight.std().item() == pytest.approx(2.0, rel=0.1)  # 256 draws: sd of std ~4 %


def test_activation_switch_all_or_one_layer():
    t = Trainer(RunConfig(depth=4, width=8, activation="tanh"))
    t.apply(SetActivation("relu", 2))
    assert t.net.activations == ["tanh", "relu", "tanh", "tanh"]
    t.apply(SetActivation("sigmoid"))
    assert t.net.activations == ["sigmoid"] * 4
    with pytest.raises(CommandError, match="allowed 1 to 4"):
        t.apply(SetActivation("relu", 5))
    assert [e.kind for e in t.session.events] == ["start", "activation", "activation"]  # the failed one is not recorded


def test_lr_and_optimizer_switch():
    t = Trainer(RunConfig(depth=2, width=8, optimizer="momentum"))
    t.run(steps=2)
    t.apply(SetLR(0.5))
    assert t.optimizer.lr == 0.5
    t.apply(SetOptimizer("adam"))
    _consistent(t)
    assert t.optimizer.name == "adam" and t.optimizer.lr == 0.5
    assert len(t.optimizer.state) == 0


def test_batchnorm_needs_batches_of_two():
    t = Trainer(RunConfig(depth=2, width=8, batch_size=1))
    with pytest.raises(CommandError, match="batch_size >= 2"):
        t.apply(SetBatchNorm(True))


def test_event_applies_just_before_its_step():
    t = Trainer(RunConfig(depth=2, width=8, steps=10, lr=0.01), [parse_event("5:lr=0.2"), parse_event("7:batchnorm=on")])
    t.run()
    lr = t.session.column("lr")
    assert lr[4] == 0.01 and lr[5] == 0.2  # row 5 already shows the change
    kinds = [(e.step, e.kind, e.value) for e in t.session.events]
    assert (5, "lr", "0.2") in kinds and (7, "batchnorm", "on") in kinds


def test_commands_mid_run_match_a_schedule():
    """Applying a command between steps == scheduling it: the GUI and --event agree."""
    cfg = RunConfig(depth=3, width=8, steps=8)
    a = Trainer(cfg)
    a.run(steps=4)
    a.apply(SetActivation("relu"))
    a.run()
    b = Trainer(cfg, [Scheduled(4, SetActivation("relu"))])
    b.run()
    assert np.array_equal(a.session.layers, b.session.layers, equal_nan=True)
    from gradsim.metrics import STEP_INDEX

    timed = [i for i in range(a.session.scalars.shape[1]) if i != STEP_INDEX["elapsed_s"]]
    assert np.array_equal(a.session.scalars[:, timed], b.session.scalars[:, timed], equal_nan=True)  # elapsed_s aside

"""Residual connections and layer norm: metrics, toggles, determinism, replay, physics.

The independent forward pass below is written from the definition (pre-activation
residual blocks, gradsim/models/mlp.py), not with forward_capture.
"""
import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gradsim.session.io import STEPS_HEADER
from gradsim.commands import CommandError, SetLayerNorm, SetResidual, parse_command, parse_event
from gradsim.config import ConfigError, RunConfig
from gradsim.teaching.presets import parse_run_file
from gradsim.session.io import export_session
from gradsim.train.trainer import Trainer
from tests.engine.fixed_batch import fixed_batch

RTOL = 1e-5  # float32 norms of a few thousand terms (see test_physics.py)

ELAPSED = STEPS_HEADER.index("elapsed_s")  # wall clock: the one column a replay may change


def _fixed_batch(trainer, n=32, seed=7):
    return fixed_batch(trainer, n, seed)


def _independent(net, x, y):
    """Autograd on a copy: z_1 = W_1 x + b_1; z_l = z_(l-1) + alpha W_l phi(LN(BN(z_(l-1)))) + alpha b_l."""
    act = {"tanh": torch.tanh, "relu": F.relu, "sigmoid": torch.sigmoid, "linear": lambda t: t}
    zs = []
    z = x @ net.linears[0].weight.T + net.linears[0].bias
    z.retain_grad()
    zs.append(z)
    for i in range(net.depth):
        a = net.norms[i](z) if net.has_batchnorm else z
        if net.has_layernorm:
            m = net.lnorms[i]
            mu = a.mean(dim=1, keepdim=True)
            var = ((a - mu) ** 2).mean(dim=1, keepdim=True)
            a = (a - mu) / torch.sqrt(var + m.eps) * m.weight + m.bias
        h = act[net.activations[i]](a)
        lin = net.linears[i + 1]
        u = h @ lin.weight.T + lin.bias
        z = z + net.residual_alpha * u if (net.residual and i + 1 < net.depth) else u
        z.retain_grad()
        zs.append(z)
    loss = F.cross_entropy(zs[-1], y)
    loss.backward()
    return loss, zs


@pytest.mark.parametrize(
    "changes",
    [
        dict(residual=True, activation="relu", init="he_normal"),
        dict(residual=True, residual_alpha=0.7, activation="tanh", optimizer="adam", lr=0.01),
        dict(layernorm=True, activation="tanh", init="xavier_normal", optimizer="momentum"),
        dict(layernorm=True, residual=True, batchnorm=True, activation="relu", init="he_normal"),
        dict(layernorm=True, activation="sigmoid", batch_size=1),
    ],
)
def test_metrics_equal_autograd_and_parameter_deltas(changes):
    cfg = RunConfig(depth=5, width=16, steps=10, stats_every=1, **changes)
    t = Trainer(cfg)
    x, y = _fixed_batch(t, n=cfg.batch_size if cfg.batch_size < 32 else 32)
    t.step()
    ref = copy.deepcopy(t.net)
    before = [w.detach().clone() for w in t.net.weights()]
    rec = t.step()
    loss, zs = _independent(ref, x, y)
    assert rec.scalar("loss") == pytest.approx(loss.item(), rel=RTOL)
    np.testing.assert_allclose(rec.layer_metric("act_grad_norm"), [z.grad.norm().item() for z in zs], rtol=RTOL)
    np.testing.assert_allclose(rec.layer_metric("grad_norm"), [lin.weight.grad.norm().item() for lin in ref.linears], rtol=RTOL)
    total = math.sqrt(sum(p.grad.norm().item() ** 2 for p in ref.parameters()))
    assert rec.scalar("grad_norm_total") == pytest.approx(total, rel=RTOL)
    deltas = [(w.detach() - b).norm().item() for w, b in zip(t.net.weights(), before)]
    np.testing.assert_allclose(rec.layer_metric("update_norm"), deltas, rtol=1e-4, atol=1e-9)


def test_without_the_toggles_the_network_is_unchanged_op_for_op():
    """The residual-capable forward pass is the plain MLP when both toggles are off."""
    cfg = RunConfig(depth=4, width=12, steps=3, batchnorm=True)
    t = Trainer(cfg)
    x, y = _fixed_batch(t)
    ref = copy.deepcopy(t.net)
    rec = t.step()
    _, zs = _independent(ref, x, y)
    np.testing.assert_array_equal(rec.layer_metric("act_grad_norm"), np.array([z.grad.norm().item() for z in zs], np.float32))


@pytest.mark.parametrize("event", ["4:residual=on", "4:residual=on:0.25", "4:layernorm=on"])
def test_toggle_applies_at_its_step_and_is_recorded(event):
    cfg = RunConfig(depth=4, width=12, steps=7, activation="relu", init="he_normal")
    plain = Trainer(cfg)
    _fixed_batch(plain)
    plain.run()
    item = parse_event(event)
    t = Trainer(cfg, [item])
    x, y = _fixed_batch(t)
    t.run(steps=4)
    ref = copy.deepcopy(t.net)  # the weights step 4 starts from, with the toggle applied by hand
    if isinstance(item.command, SetResidual):
        ref.set_residual(True, item.command.alpha)
    else:
        ref.set_layernorm(True)
    _, zs = _independent(ref, x, y)
    t.run()
    rows_plain, rows = plain.session.rows_after(-1), t.session.rows_after(-1)
    np.testing.assert_array_equal(rows.layers[:4], rows_plain.layers[:4])  # before its step: no effect
    np.testing.assert_allclose(rows.layers[4, :, 5], [z.grad.norm().item() for z in zs], rtol=RTOL)  # its step shows it
    assert not np.allclose(rows.layers[4, :, 5], rows_plain.layers[4, :, 5])
    ev = [e for e in t.session.events if e.kind == item.command.key]
    assert len(ev) == 1 and ev[0].step == 4 and ev[0].value == item.command.value()


def test_toggles_on_off_keep_optimizer_consistent():
    """Layer norm adds parameters (a 'layernorm' arena); residual adds none."""
    t = Trainer(RunConfig(depth=4, width=16, optimizer="adam", lr=1e-3, steps=50))
    t.run(steps=2)
    w = t.net.linears[2].weight
    m_before = t.optimizer.state_of(w)["exp_avg"].clone()
    t.apply(SetLayerNorm(True))
    assert len(t.net.norm_params()) == 2 * 4 and "layernorm" in t.arenas
    assert torch.equal(t.optimizer.state_of(w)["exp_avg"], m_before)  # survivors keep their moments
    assert not any(t.optimizer.has_state(p) for p in t.net.norm_params())
    t.apply(SetResidual(True))
    assert t.net.residual and t.net.residual_alpha == pytest.approx(0.5)
    t.run(steps=2)
    assert all(t.optimizer.has_state(p) for p in t.net.norm_params())
    t.apply(SetLayerNorm(False))
    t.apply(SetResidual(False))
    assert {id(p) for p in t.optimizer.params()} == {id(p) for p in t.net.parameters()}
    assert "layernorm" not in t.arenas and all(a.owns_storage() for a in t.arenas.values())
    assert sum(p.numel() for p in t.net.parameters()) == t.config.param_count()
    assert not t.net.residual and t.net.residual_alpha == 0.0


SCHEDULE = ["2:residual=on", "4:layernorm=on", "6:residual=on:0.3", "8:residual=off", "9:layernorm=off", "10:activation=relu"]


def _csvs(session, tmp_path, name):
    out = export_session(session, tmp_path / name)
    steps = [",".join(c for i, c in enumerate(line.split(",")) if i != ELAPSED) for line in (out / "steps.csv").read_text().splitlines()]
    return steps, (out / "layers.csv").read_text(), (out / "events.csv").read_text(), out


def test_determinism_and_replay_from_session_json(tmp_path):
    cfg = RunConfig(dataset="moons", n_samples=300, depth=5, width=12, steps=12, stats_every=2)
    runs = []
    for i in range(2):
        t = Trainer(cfg, [parse_event(e) for e in SCHEDULE])
        t.run()
        runs.append(_csvs(t.session, tmp_path, f"r{i}"))
    assert runs[0][:3] == runs[1][:3]
    live = Trainer(cfg)  # the same commands applied live, as the window's toggles do
    for item in [parse_event(e) for e in SCHEDULE]:
        live.run(steps=item.step - live.step_index)
        live.apply(item.command)
    live.run()
    first = _csvs(live.session, tmp_path, "live")
    assert first[:3] == runs[0][:3]
    cfg2, schedule = parse_run_file(first[3] / "session.json")
    assert [s.text() for s in schedule] == SCHEDULE
    replay = Trainer(cfg2, schedule)
    replay.run()
    assert _csvs(replay.session, tmp_path, "replay")[:2] == first[:2]


def test_config_round_trip_and_bad_values():
    cfg = RunConfig(residual=True, residual_alpha=0.2, layernorm=True)
    assert RunConfig.from_json(cfg.to_json()) == cfg
    assert RunConfig.from_json(RunConfig(residual=True).to_json()).residual_alpha is None
    assert RunConfig(depth=25).effective_residual_alpha == pytest.approx(0.2)
    with pytest.raises(ConfigError, match="residual_alpha"):
        RunConfig(residual_alpha=-1.0).validate()
    with pytest.raises(ConfigError, match="layernorm"):
        RunConfig.from_dict({"layernorm": "yes"})
    assert RunConfig(layernorm=True, depth=3, width=8).param_count() == RunConfig(depth=3, width=8).param_count() + 2 * 8 * 3
    for bad in ["residual=maybe", "residual=off:0.5", "residual=on:0", "residual=on:11", "layernorm=2"]:
        with pytest.raises(CommandError, match=bad.split("=")[0]):
            parse_command(bad)
    assert parse_command("residual=on:0.5") == SetResidual(True, 0.5)
    assert parse_command("layernorm=off") == SetLayerNorm(False)


def test_layernorm_trains_at_batch_size_one_where_batchnorm_is_refused():
    cfg = RunConfig(dataset="moons", n_samples=300, depth=6, width=16, batch_size=1, steps=40, activation="tanh")
    with pytest.raises(CommandError, match="batch_size >= 2"):
        Trainer(cfg, [parse_event("0:batchnorm=on")])
    t = Trainer(cfg.with_changes(layernorm=True))
    t.run()
    assert t.diverged_at is None
    assert np.isfinite(t.session.rows_after(-1).layers[:, :, 5]).all()


def _step0_gz(**changes):
    t = Trainer(RunConfig(depth=100, width=64, activation="relu", steps=1, **changes))
    return t.step().layer_metric("act_grad_norm")


def test_residual_rescues_a_100_layer_relu_network_at_step_0():
    """The issue's physics: with the skip (He init) ||dL/dz|| stays within 10x from the
    last hidden layer to layer 2; the same network without it and with Xavier vanishes.
    Theory: prod of sqrt(1 + chi/depth) over 99 blocks = e^(99/200) ~ 1.64 (chi = 1 for He)."""
    g = _step0_gz(residual=True, init="he_normal")
    assert 0.1 < g[-2] / g[1] < 10
    v = _step0_gz(init="xavier_normal")
    assert v[1] / v[-2] < 1e-10  # (1/sqrt 2)^98 ~ 2e-15 predicted


def test_bias_std_draws_biases_and_zero_keeps_them_zero():
    t = Trainer(RunConfig(depth=3, width=400, bias_std=0.3, steps=1))
    b = t.net.linears[1].bias.detach().clone()
    assert b.std().item() == pytest.approx(0.3, rel=0.15)  # 400 draws: sd of the sample std ~3.5 %
    t.reinit("he_normal")
    assert t.net.linears[1].bias.detach().std().item() == pytest.approx(0.3, rel=0.15)
    assert not torch.equal(b, t.net.linears[1].bias.detach())
    z = Trainer(RunConfig(depth=3, width=16, steps=1))
    assert all(torch.count_nonzero(lin.bias) == 0 for lin in z.net.linears)

"""A recurrent run records what a plain torch model says about the same weights and batch,
takes its live commands all or nothing, and replays bit for bit."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from gradsim.cli.main import main
from gradsim.commands import CommandError, parse_command, parse_event
from gradsim.config import RunConfig
from gradsim.metrics import LAYER_INDEX, STEP_INDEX
from gradsim.session.io import export_session
from gradsim.teaching.presets import parse_run_file
from gradsim.train.recurrent import RecurrentTrainer
from gradsim.train.trainer import Trainer
from tests.engine.test_rnn import Plain, _plain_step_by_step_grads

from gradsim.metrics import STEP_INDEX as _STEP_INDEX

#: Every step column but the wall clock (elapsed_s).
TIMED = [i for i in range(len(_STEP_INDEX)) if i != _STEP_INDEX["elapsed_s"]]

T = 6
CASES = [("rnn", "tanh", 1, "recall-first"), ("rnn", "relu", 2, "adding"), ("lstm", "tanh", 1, "adding"),
         ("lstm", "tanh", 2, "recall-first"), ("gru", "tanh", 1, "recall-first"), ("gru", "tanh", 2, "adding")]


def _cfg(model="rnn", activation="tanh", depth=1, dataset="adding", **kw):
    base = dict(model=model, activation=activation, depth=depth, dataset=dataset, seq_len=T, width=10, n_samples=200,
                batch_size=16, steps=12, stats_every=1, lr=0.05, init="normal", init_std=1.2, recurrent_init="normal:2.0")
    return RunConfig(**{**base, **kw})


def _sig(a):
    return 1.0 / (1.0 + np.exp(-a))


@pytest.mark.parametrize("model,act,depth,dataset", CASES)
def test_a_step_records_what_a_plain_torch_model_computes(model, act, depth, dataset):
    cfg = _cfg(model, act, depth, dataset)
    t = Trainer(cfg)
    assert isinstance(t, RecurrentTrainer) and t.session.model == model
    before = {k: v.clone() for k, v in t.net.state_dict().items()}
    x, y = t.batch(0)
    rec = t.step()
    assert t.last_pass == "direct"  # the hand-written pass (test_rnn_backprop.py checks it against autograd)
    w = cfg.width
    plain = Plain(model, x.shape[2], t.data.n_outputs, depth, w, act)
    plain.load_state_dict(before)
    loss_fn = nn.functional.mse_loss if dataset == "adding" else nn.functional.cross_entropy
    # total dL/dh_t per step, from the fused layer run one step at a time
    want = torch.stack([g.norm() for g in _plain_step_by_step_grads(plain, model, x, y, loss_fn)])
    got = rec.layers[:T, LAYER_INDEX["act_grad_norm"]]
    np.testing.assert_allclose(got, want.numpy(), rtol=2e-4)
    # parameter groups, from a whole-sequence pass of the plain model
    plain.zero_grad()
    out = plain(x)
    loss = loss_fn(out, y)
    loss.backward()
    assert rec.scalar("loss") == pytest.approx(float(loss.detach()), rel=1e-5)
    ok = (out - y).abs() < 0.04 if dataset == "adding" else out.argmax(1) == y
    assert rec.scalar("accuracy") == pytest.approx(float(ok.float().mean()))
    params = dict(plain.named_parameters())
    after = t.net.state_dict()
    groups = [(f"rnn.weight_{s}_l{k}", f"rnn.bias_{s}_l{k}") for k in range(depth) for s in ("ih", "hh")] + [("head.weight", "head.bias")]
    assert [u.params for u in t.units[T:]] == groups
    total = math.sqrt(sum(float(p.grad.norm()) ** 2 for p in params.values()))
    assert rec.scalar("grad_norm_total") == pytest.approx(total, rel=1e-5)
    for row, (wn, bn) in zip(rec.layers[T:], groups):
        assert row[LAYER_INDEX["grad_norm"]] == pytest.approx(float(params[wn].grad.norm()), rel=1e-4)
        assert row[LAYER_INDEX["bias_grad_norm"]] == pytest.approx(float(params[bn].grad.norm()), rel=1e-4)
        assert row[LAYER_INDEX["weight_norm"]] == pytest.approx(float(before[wn].norm()), rel=1e-6)
        upd = float((after[wn] - before[wn]).norm())
        assert row[LAYER_INDEX["update_norm"]] == pytest.approx(upd, rel=1e-5)
        assert row[LAYER_INDEX["update_ratio"]] == pytest.approx(upd / float(before[wn].norm()), rel=1e-5)
        assert math.isnan(row[LAYER_INDEX["act_grad_norm"]])
    # activation statistics of each h_t (the top layer's output sequence)
    with torch.no_grad():
        seq = plain.rnn(x)[0].numpy().astype(np.float64)  # (batch, T, width)
    H = seq.transpose(1, 0, 2)
    st = rec.layers[:T]
    np.testing.assert_allclose(st[:, LAYER_INDEX["act_mean"]], H.reshape(T, -1).mean(1), atol=1e-5)
    np.testing.assert_allclose(st[:, LAYER_INDEX["act_std"]], H.reshape(T, -1).std(1, ddof=1), rtol=1e-4)
    if model == "rnn" and act == "tanh":
        sat, dead = (np.abs(H) > 0.97).reshape(T, -1).mean(1), np.zeros(T)
    elif model == "rnn":
        sat, dead = np.zeros(T), (H.max(axis=1) == 0).mean(1)
    else:
        dead = np.zeros(T)
        if depth > 1:
            sat = None  # the gates of an upper layer need its input; depth 1 checks the formula
        else:
            sd = {k: v.numpy().astype(np.float64) for k, v in before.items()}
            xs = x.numpy().astype(np.float64)
            prev = np.concatenate([np.zeros((x.shape[0], 1, w)), seq[:, :-1]], axis=1)
            block = slice(w, 2 * w)  # LSTM: f in (i, f, g, o); GRU: z in (r, z, n)
            pre = xs @ sd["rnn.weight_ih_l0"][block].T + sd["rnn.bias_ih_l0"][block] + prev @ sd["rnn.weight_hh_l0"][block].T + sd["rnn.bias_hh_l0"][block]
            g = _sig(pre).transpose(1, 0, 2).reshape(T, -1)
            sat = ((g < 0.03) | (g > 0.97)).mean(1)
    if sat is not None:
        np.testing.assert_allclose(st[:, LAYER_INDEX["act_saturation"]], sat, atol=1e-6)
    np.testing.assert_allclose(st[:, LAYER_INDEX["act_dead"]], dead, atol=1e-6)
    if model == "rnn" and act == "tanh":
        assert st[:, LAYER_INDEX["act_saturation"]].max() > 0  # the check above saw saturated units


def test_live_toggles_apply_and_recurrent_init_redraws_only_w_hh():
    t = Trainer(_cfg("lstm", optimizer="adam", depth=2))
    t.run(steps=3)
    before = {k: v.clone() for k, v in t.net.state_dict().items()}
    assert set(t.optimizer.state) == {"weight", "recurrent", "bias"}
    t.apply(parse_command("recurrent_init=identity"))
    after = t.net.state_dict()
    for k, v in before.items():
        if "weight_hh" in k:
            assert torch.equal(after[k], torch.eye(10).repeat(4, 1))
        else:
            assert torch.equal(after[k], v), k
    assert set(t.optimizer.state) == {"weight", "bias"}  # only the re-drawn weights lost their moments
    t.apply(parse_command("clip=norm:0.001"))
    t.apply(parse_command("lr=0.01"))
    t.apply(parse_command("optimizer=momentum"))
    rec = t.step()
    assert rec.scalar("clipped") == 1.0 and rec.scalar("grad_norm_applied") == pytest.approx(0.001, rel=1e-3)
    assert rec.scalar("lr") == 0.01 and t.optimizer.name == "momentum"
    kinds = [(e.kind, e.value) for e in t.session.events[1:]]
    assert kinds == [("recurrent_init", "identity"), ("clip", "norm:0.001"), ("lr", "0.01"), ("optimizer", "momentum")]


def test_normal_gain_sets_the_spectral_radius_live():
    t = Trainer(_cfg(width=200, recurrent_init="orthogonal"))
    t.apply(parse_command("recurrent_init=normal:0.5"))
    assert abs(t.net.spectral_radius() / 0.5 - 1) < 0.15


@pytest.mark.parametrize("text", ["batchnorm=on", "activation=relu", "init=he_normal", "layernorm=on", "residual=on"])
def test_mlp_only_commands_are_refused_and_change_nothing(text):
    t = Trainer(_cfg("gru", optimizer="adam"))
    t.run(steps=2)
    before = t.state(grads=True)
    events = list(t.session.events)
    with pytest.raises(CommandError, match=r"model 'gru' has no live .* allowed: clip, lr, optimizer, recurrent_init"):
        t.schedule(parse_event(f"5:{text}"))
    with pytest.raises(CommandError, match="no live"):
        t.apply(parse_command(text))
    after = t.state(grads=True)
    for part in ("net", "grads"):
        for k, v in before[part].items():
            assert torch.equal(after[part][k], v)
    assert t.session.events == events and after["schedule"] == before["schedule"]


def test_state_round_trip_continues_bit_for_bit():
    cfg = _cfg("rnn", optimizer="adam", steps=10)
    a = Trainer(cfg, [parse_event("4:recurrent_init=normal:1.1")])
    a.run(steps=3)
    saved = a.state()
    a.run()
    b = Trainer(cfg)
    b.load_state(saved)
    b.run()
    assert np.array_equal(a.session.layers[3:], b.session.layers, equal_nan=True)
    assert np.array_equal(a.session.scalars[3:][:, TIMED], b.session.scalars[:, TIMED], equal_nan=True)
    with pytest.raises(ValueError, match="network"):
        Trainer(_cfg("gru")).load_state(saved)


def _csvs(out):
    lines = (out / "steps.csv").read_text().splitlines()
    k = lines[0].split(",").index("elapsed_s")  # the wall clock aside; the columns after it are data
    steps = [",".join(c for i, c in enumerate(line.split(",")) if i != k) for line in lines]
    return steps, (out / "layers.csv").read_text(), (out / "events.csv").read_text()


SCHEDULE = ["2:recurrent_init=identity", "4:clip=value:0.05", "6:optimizer=adam", "8:lr=0.002", "9:recurrent_init=normal:1.3"]


def test_live_commands_replay_from_session_json_bit_for_bit(tmp_path):
    cfg = _cfg("lstm", depth=2, steps=12, stats_every=3)
    live = Trainer(cfg)
    for item in [parse_event(e) for e in SCHEDULE]:
        live.run(steps=item.step - live.step_index)
        live.apply(item.command)  # like a toggle between steps
    live.run()
    first = export_session(live.session, tmp_path / "live")
    cfg2, schedule = parse_run_file(first / "session.json")
    assert cfg2 == cfg and [s.text() for s in schedule] == SCHEDULE
    replay = Trainer(cfg2, schedule)
    replay.run()
    second = export_session(replay.session, tmp_path / "replay")
    assert _csvs(first)[:2] == _csvs(second)[:2]


def test_cli_trains_exports_format_3_and_replays_the_session(tmp_path, capsys):
    args = ["run", "--model", "rnn", "--dataset", "adding", "--seq-len", "12", "--width", "16", "--steps", "8",
            "--recurrent-init", "normal:0.9", "--event", "3:recurrent_init=identity", "--event", "5:clip=norm:0.5"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    import json

    meta = json.loads((tmp_path / "a" / "session.json").read_text())
    assert meta["format"] == "gradsim-session/3" and meta["model"] == "rnn"
    assert meta["config"]["seq_len"] == 12 and meta["config"]["recurrent_init"] == "normal:0.9" and meta["config"]["depth"] == 1
    assert [u["name"] for u in meta["units"]] == [f"t {i}" for i in range(1, 13)] + ["input 1", "recurrent 1", "head"]
    lines = (tmp_path / "a" / "layers.csv").read_text().splitlines()
    assert len(lines) == 1 + 8 * 15
    assert main(["run", "--config", str(tmp_path / "a" / "session.json"), "--out", str(tmp_path / "b")]) == 0
    assert _csvs(tmp_path / "a")[:2] == _csvs(tmp_path / "b")[:2]  # events differ only in the start label
    assert "1-layer tanh rnn" in capsys.readouterr().out


@pytest.mark.parametrize("args,needle", [
    (["--model", "rnn", "--seq-len", "0"], "seq_len = 0"),
    (["--model", "rnnx"], "model = 'rnnx' is not known"),
    (["--model", "rnn", "--event", "2:recurrent_init=normal:-1"], "normal:-1"),
    (["--model", "rnn", "--recurrent-init", "normal:-1"], "normal:-1"),
    (["--model", "lstm", "--dataset", "spiral"], "model 'lstm' cannot train on it"),
    (["--event", "2:recurrent_init=identity"], "model 'mlp' has no live 'recurrent_init'"),
])
def test_cli_refuses_bad_recurrent_values_in_one_line(tmp_path, capsys, args, needle):
    assert main(["run", *args, "--steps", "2", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1


def test_accuracy_of_the_adding_problem_is_the_fraction_within_the_tolerance():
    t = Trainer(_cfg("gru", steps=1))
    with torch.no_grad():
        out = t.net(torch.from_numpy(t.data.x_test))
    want = float(((out - torch.from_numpy(t.data.y_test)).abs() < 0.04).float().mean())
    assert t.evaluate() == want
    assert STEP_INDEX["accuracy"] == 1


def test_checkpoint_resume_and_fork_continue_a_recurrent_run_bit_for_bit(tmp_path):
    from gradsim.train.checkpoint import load_checkpoint, save_checkpoint, trainer_from_checkpoint
    from gradsim.train.fork import fork_trainer

    cfg = _cfg("gru", optimizer="adam", steps=8)
    whole = Trainer(cfg, [parse_event("5:recurrent_init=orthogonal")])
    whole.run()
    part = Trainer(cfg, [parse_event("5:recurrent_init=orthogonal")])
    part.run(steps=3)
    branch = fork_trainer(part)
    save_checkpoint(part, tmp_path / "c.pt")
    resumed = trainer_from_checkpoint(load_checkpoint(tmp_path / "c.pt"))
    assert cfg.n_layers == len(resumed.units) == T + 3
    for t in (resumed, branch):
        t.run()
        rows = np.isin(whole.session.steps, t.session.steps)  # a resumed session holds the steps after the checkpoint
        assert t.session.steps[-1] == 7 and rows.sum() == len(t.session.steps)
        assert np.array_equal(t.session.layers, whole.session.layers[rows], equal_nan=True)
        assert np.array_equal(t.session.scalars[:, TIMED], whole.session.scalars[rows][:, TIMED], equal_nan=True)


def test_a_sweep_over_recurrent_models_writes_its_row():
    from gradsim.service.sweep import sweep_task

    row, files = sweep_task((0, _cfg("lstm", steps=2).to_dict(), ["1:lr=0.01"], "run000"))
    assert row["steps"] == 2 and "session.json" in files and files["layers.csv"].count(b"\n") == 1 + 2 * (T + 3)


def test_forget_bias_is_a_live_lstm_command_only():
    t = Trainer(_cfg("lstm", depth=2, forget_bias=1.0))
    t.run(steps=2)
    before = {k: v.clone() for k, v in t.net.state_dict().items()}
    t.apply(parse_command("forget_bias=2.5"))
    after = t.net.state_dict()
    w = 10
    for k, v in before.items():
        if k.startswith("rnn.bias_ih"):
            assert torch.all(after[k][w : 2 * w] == 2.5) and torch.equal(after[k][:w], v[:w]) and torch.equal(after[k][2 * w :], v[2 * w :])
        elif k.startswith("rnn.bias_hh"):
            assert torch.all(after[k][w : 2 * w] == 0) and torch.equal(after[k][:w], v[:w])
        else:
            assert torch.equal(after[k], v)
    assert t.session.events[-1].kind == "forget_bias" and t.session.events[-1].value == "2.5"
    g = Trainer(_cfg("gru"))
    with pytest.raises(CommandError, match="model 'gru' has no live 'forget_bias'"):
        g.apply(parse_command("forget_bias=1"))
    with pytest.raises(CommandError, match="forget_bias=nan: expected a finite number"):
        parse_command("forget_bias=nan")

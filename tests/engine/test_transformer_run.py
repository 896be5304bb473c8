"""A transformer run end to end: the CLI trains and exports it, session.json replays it bit for
bit, its live commands (norm, warmup, lr, clip, optimizer, init) apply between steps, the MLP's
commands are refused leaving the run as it was, and a fork can move the norms on one branch."""
import json

import numpy as np
import pytest
import torch

from gradsim.cli.main import main
from gradsim.commands import CommandError, SetNormPosition, SetWarmup, parse_command, parse_event
from gradsim.config import RunConfig
from gradsim.train.fork import fork_trainer
from gradsim.train.trainer import Trainer

EVENTS = ["2:norm=post", "3:warmup=3", "4:clip=norm:0.5", "5:lr=0.003", "6:optimizer=momentum", "7:init=he_normal", "8:norm=pre"]


def _cfg(**kw):
    base = dict(model="transformer", dataset="recall-last", seq_len=6, depth=2, width=32, heads=4, activation="gelu",
                n_samples=120, batch_size=8, steps=10, stats_every=2, optimizer="adam", lr=1e-2)
    base.update(kw)
    return RunConfig(**base)


def _csvs(folder):
    lines = (folder / "steps.csv").read_text().splitlines()
    k = lines[0].split(",").index("elapsed_s")  # the wall clock aside; the columns after it are data
    steps = [",".join(c for i, c in enumerate(line.split(",")) if i != k) for line in lines]
    return steps, (folder / "layers.csv").read_text(), (folder / "events.csv").read_text()


def test_the_cli_trains_a_transformer_and_its_session_replays_bit_for_bit(tmp_path, capsys):
    args = ["run", "--model", "transformer", "--dataset", "recall-first", "--seq-len", "8", "--depth", "2", "--width", "32",
            "--heads", "4", "--norm-position", "pre", "--steps", "10", "--batch-size", "16", "--stats-every", "3", "--optimizer", "adam", "--lr", "0.01"]
    for e in EVENTS:
        args += ["--event", e]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    meta = json.loads((tmp_path / "a" / "session.json").read_text())
    assert meta["format"] == "gradsim-session/3" and meta["model"] == "transformer"
    assert meta["config"]["heads"] == 4 and meta["config"]["norm_position"] == "pre" and meta["config"]["seq_len"] == 8
    names = [u["name"] for u in meta["units"]]
    assert names == ["stream 1", "stream 2", "stream 3", "attn 1", "mlp 1", "attn 2", "mlp 2", "embed", "head",
                     *(f"block {b} head {h}" for b in (1, 2) for h in (1, 2, 3, 4))]
    assert [u["kind"] for u in meta["units"]][9:] == ["head"] * 8
    assert [u["kind"] for u in meta["units"]][:5] == ["stream", "stream", "stream", "block", "block"]
    assert main(["run", "--config", str(tmp_path / "a" / "session.json"), "--out", str(tmp_path / "b")]) == 0
    a, b = _csvs(tmp_path / "a"), _csvs(tmp_path / "b")
    assert a[0] == b[0] and a[1] == b[1]
    assert [line.split(",")[1] for line in a[2].splitlines()[1:]].count("norm") == 2
    lr = [float(line.split(",")[6]) for line in a[0][1:]]  # warm-up from step 3 over 3 steps, then lr=0.003 at step 5
    np.testing.assert_allclose(lr[3:6], [0.01 / 3, 0.02 / 3, 0.003], rtol=1e-12)


@pytest.mark.parametrize("flags,text", [
    (["--heads", "3"], "heads = 3: width = 64 must be divisible"),
    (["--norm-position", "mid"], "norm_position = 'mid' is not known; allowed: pre, post"),
    (["--warmup-steps", "-1"], "warmup_steps = -1 is out of range"),
])
def test_bad_flags_are_one_line_and_exit_2(tmp_path, capsys, flags, text):
    code = main(["run", "--model", "transformer", "--dataset", "recall-first", "--seq-len", "8", "--width", "64", "--depth", "2",
                 *flags, "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and text in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def _same_state(a, b):
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same_state(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same_state(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize("text", ["batchnorm=on", "layernorm=on", "residual=on", "activation=relu", "recurrent_init=identity"])
def test_the_mlps_commands_are_refused_and_leave_the_run_as_it_was(text):
    t = Trainer(_cfg())
    t.run(steps=3)
    before, events = t.state(grads=True), list(t.session.events)
    with pytest.raises(CommandError, match=rf"{text.split('=')[0]}.*model 'transformer' has no live .*; allowed: clip, init, lr, norm, optimizer, warmup"):
        t.apply(parse_command(text))
    assert _same_state(t.state(grads=True), before) and t.session.events == events
    with pytest.raises(CommandError):
        t.schedule(parse_event(f"5:{text}"))  # refused when scheduled, not halfway through a run


def test_a_command_that_fails_while_applying_leaves_everything_as_it_was(monkeypatch):
    t = Trainer(_cfg())
    t.run(steps=2)
    before = t.state(grads=True)

    def broken(position):
        t.net.norm_position = position  # half done, then fails
        raise ValueError("broken on purpose")

    monkeypatch.setattr(t, "set_norm_position", broken)
    with pytest.raises(CommandError, match="norm=post: broken on purpose"):
        t.apply(SetNormPosition("post"))
    assert t.net.norm_position == "pre" and _same_state(t.state(grads=True), before)


def test_norm_and_warmup_values_are_checked():
    with pytest.raises(CommandError, match="norm=mid: 'mid' is not known; allowed: pre, post"):
        parse_command("norm=mid")
    with pytest.raises(CommandError, match="warmup=-1: '-1' is not a whole number"):
        parse_command("warmup=-1")
    with pytest.raises(CommandError, match="warmup=2.5"):
        parse_command("warmup=2.5")
    with pytest.raises(CommandError, match="norm.*model 'mlp' has no live 'norm' command"):
        Trainer(RunConfig(dataset="xor", n_samples=100, batch_size=16, depth=2, width=8, steps=2)).apply(SetNormPosition("post"))
    assert parse_command("warmup=0") == SetWarmup(0) and parse_command("norm=post").text() == "norm=post"


def test_norm_moves_the_norms_and_keeps_every_parameter():
    t = Trainer(_cfg())
    t.run(steps=2)
    params = {n: p.detach().clone() for n, p in t.net.named_parameters()}
    opt_state = t.state()["optimizer"]
    x, _ = t.batch(t.step_index)
    with torch.no_grad():
        pre_out = t.net(x)
    t.apply(SetNormPosition("post"))
    assert t.net.norm_position == "post"
    assert all(torch.equal(p, params[n]) for n, p in t.net.named_parameters())
    assert _same_state(t.state()["optimizer"], opt_state)
    with torch.no_grad():
        assert not torch.allclose(t.net(x), pre_out)  # the same weights compute another function
    assert t.session.events[-1].kind == "norm" and t.session.events[-1].value == "post"


def test_warmup_from_now_and_state_carry_it_bit_for_bit():
    cfg = _cfg(optimizer="sgd", lr=0.1, steps=8)
    whole = Trainer(cfg, [parse_event("2:warmup=4")])
    whole.run()
    lr = whole.session.column("lr")
    np.testing.assert_allclose(lr, [0.1, 0.1, 0.025, 0.05, 0.075, 0.1, 0.1, 0.1], rtol=1e-12)
    half = Trainer(cfg, [parse_event("2:warmup=4")])
    half.run(steps=4)
    resumed = Trainer(cfg)
    resumed.load_state(half.state())
    resumed.run()
    np.testing.assert_array_equal(resumed.session.layers[-4:], whole.session.layers[-4:])
    np.testing.assert_array_equal(resumed.session.column("lr")[-4:], lr[-4:])


def test_a_fork_moves_the_norms_on_one_branch_from_the_same_weights():
    a = Trainer(_cfg(norm_position="post", steps=8))
    a.run(steps=3)
    b = fork_trainer(a, note="fork at step 3: Pre-LN")
    b.apply(SetNormPosition("pre"))
    same = fork_trainer(a)
    wa = {n: p.detach().clone() for n, p in a.net.named_parameters()}
    wb = {n: p.detach().clone() for n, p in b.net.named_parameters()}
    assert wa.keys() == wb.keys() and all(torch.equal(wa[n], wb[n]) for n in wa)  # B's first step starts from A's weights
    assert torch.equal(a.batch(3)[0], b.batch(3)[0])
    ra, rb, rs = a.step(), b.step(), same.step()
    assert (a.net.norm_position, b.net.norm_position) == ("post", "pre")
    np.testing.assert_array_equal(ra.layers, rs.layers)  # an untouched fork stays bit-identical
    assert not np.array_equal(ra.layers, rb.layers)
    assert [e.kind for e in b.session.events][-2:] == ["note", "norm"]


def test_a_checkpoint_of_a_post_ln_run_in_warm_up_continues_bit_for_bit(tmp_path):
    from gradsim.train.checkpoint import load_checkpoint, save_checkpoint, trainer_from_checkpoint

    cfg = _cfg(norm_position="post", warmup_steps=6, steps=8)
    whole = Trainer(cfg, [parse_event("2:norm=pre")])
    whole.run()
    half = Trainer(cfg, [parse_event("2:norm=pre")])
    half.run(steps=4)
    save_checkpoint(half, tmp_path / "run.ckpt")
    resumed = trainer_from_checkpoint(load_checkpoint(tmp_path / "run.ckpt"))
    assert resumed.net.norm_position == "pre" and resumed.warmup_steps == 6
    resumed.run()
    np.testing.assert_array_equal(resumed.session.layers[-4:], whole.session.layers[-4:])
    np.testing.assert_array_equal(resumed.session.scalars[-4:, :7], whole.session.scalars[-4:, :7])


def test_a_diverging_transformer_ends_cleanly_with_a_diverged_event():
    t = Trainer(_cfg(optimizer="sgd", lr=1e6, init="normal", init_std=3.0, steps=30, stats_every=1))
    t.run()
    assert t.diverged_at is not None and t.session.events[-1].kind == "diverged"
    assert t.session.steps_run == t.diverged_at + 1
    last = t.session.latest()
    assert last.layers.shape == (t.config.n_layers, len(last.layers[0])) and np.isnan(last.layers).any()


def test_an_exported_transformer_session_loads_with_its_units(tmp_path):
    from gradsim.session.io import export_session, load_session

    t = Trainer(_cfg(steps=3))
    t.run()
    back = load_session(export_session(t.session, tmp_path / "s"))
    assert back.model == "transformer" and back.units == t.units and back.n_layers == t.config.n_layers
    np.testing.assert_array_equal(back.layers, t.session.layers)


def test_warmup_works_for_the_mlp_too_and_moves_its_weights_by_the_warmed_rate():
    from gradsim.metrics import LAYER_INDEX

    t = Trainer(RunConfig(dataset="xor", n_samples=200, batch_size=32, depth=3, width=8, steps=5, optimizer="sgd", lr=0.1, warmup_steps=4))
    before = [w.detach().clone() for w in t.net.weights()]
    rec = t.step()
    moved = [float((w.detach() - b).norm()) for w, b in zip(t.net.weights(), before)]
    np.testing.assert_allclose(rec.scalar("lr"), 0.025, rtol=1e-12)
    np.testing.assert_allclose(rec.layers[:, LAYER_INDEX["update_norm"]], moved, rtol=1e-4)
    np.testing.assert_allclose(moved, 0.025 * rec.layers[:, LAYER_INDEX["grad_norm"]], rtol=1e-4)
    t.run()
    np.testing.assert_allclose(t.session.column("lr"), [0.025, 0.05, 0.075, 0.1, 0.1], rtol=1e-12)


def test_a_session_written_before_the_head_units_loads_with_its_own_units(tmp_path):
    """A transformer session from before the per-head units: session.json lists 3 depth + 3
    units and layers.csv has those rows per step. It loads with exactly those units, and
    its cells are the new session's cells of the same units (the head units only append)."""
    from gradsim.models.family import transformer_units
    from gradsim.session.io import export_session, load_session

    t = Trainer(_cfg(steps=3, stats_every=1))
    t.run()
    new = export_session(t.session, tmp_path / "new")
    old_n = 3 * t.config.depth + 3
    meta = json.loads((new / "session.json").read_text())
    meta["units"] = meta["units"][:old_n]
    old = tmp_path / "old"
    old.mkdir()
    (old / "session.json").write_text(json.dumps(meta))
    lines = (new / "layers.csv").read_text().splitlines()
    kept = [lines[0]] + [line for line in lines[1:] if int(line.split(",")[1]) <= old_n]
    assert len(kept) == 1 + 3 * old_n
    (old / "layers.csv").write_text("\n".join(kept) + "\n")
    for name in ("steps.csv", "events.csv"):
        (old / name).write_text((new / name).read_text())
    back = load_session(old)
    assert back.units == transformer_units(t.config.depth) == t.units[:old_n]
    np.testing.assert_array_equal(back.layers, t.session.layers[:, :old_n])
    assert (tmp_path / "again").exists() is False
    again = export_session(back, tmp_path / "again")
    assert (again / "layers.csv").read_text().splitlines() == kept
    # the grader replays it with today's engine (which appends the head units) and compares
    # the older file's units only: equal as written, a changed cell is found
    from gradsim.grading.replay import first_mismatch, replay

    again = replay(meta)
    assert again.n_layers == t.n_layers and first_mismatch(back, again, 0.0) is None
    back.layers[1, old_n - 2, 0] *= 1.5  # embed's grad_norm at step 1
    m = first_mismatch(back, again, 0.0)
    assert m is not None and (m.step, m.layer) == (1, old_n - 1)

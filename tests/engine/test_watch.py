"""gradsim.watch records, for any torch model, what an independent computation gives.

Every number in the watched session is compared with a reference the test
computes itself: parameter gradients and weights read in numpy just before
``optimizer.step()``, parameter deltas after it, module output gradients kept
with ``retain_grad`` by the test's own hooks, and activation statistics in
numpy from the activation modules' outputs.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import gradsim.watch  # the package is callable: gradsim.watch(model, optimizer, out=...)
from gradsim.metrics import LAYER_INDEX, STEP_INDEX
from gradsim.session.io import load_session
from gradsim.watch.recorder import is_bias

RTOL = 2e-5


def _norm(arrays):
    arrays = [a for a in arrays if a is not None]
    if not arrays:
        return math.nan
    return math.sqrt(sum(float(np.sum(np.asarray(a, np.float64) ** 2)) for a in arrays))


class Reference:
    """The test's own record of one training loop: what each unit's row must hold."""

    def __init__(self, model: nn.Module, act_modules: dict[str, nn.Module] | None = None):
        self.model = model
        self.units = [(path, mod) for path, mod in model.named_modules() if list(mod.named_parameters(recurse=False))]
        self.rows: list[dict] = []
        self.outputs: dict[str, list[torch.Tensor]] = {}
        self.acts: dict[str, list[torch.Tensor]] = {}
        self._hooks = []
        for path, mod in self.units:
            self._hooks.append(mod.register_forward_hook(self._keep(path)))
        for path, act in (act_modules or {}).items():
            self._hooks.append(act.register_forward_hook(self._keep_act(path)))

    def _keep(self, path):
        def hook(mod, inp, out):
            t = out[0] if isinstance(out, tuple) else out
            if t.requires_grad:
                t.retain_grad()
            self.outputs.setdefault(path, []).append(t)
        return hook

    def _keep_act(self, path):
        def hook(mod, inp, out):
            self.acts.setdefault(path, []).append(out.detach().clone())
        return hook

    def before(self):
        self._grads, self._weights = {}, {}
        for path, mod in self.units:
            own = dict(mod.named_parameters(recurse=False))
            ws = [own["weight"]] if "weight" in own else [p for n, p in own.items() if not is_bias(n)]
            bs = [p for n, p in own.items() if is_bias(n)]
            self._grads[path] = (_norm([None if p.grad is None else p.grad.numpy() for p in ws]),
                                 _norm([None if p.grad is None else p.grad.numpy() for p in bs]))
            self._weights[path] = [p.detach().numpy().copy() for p in ws]
        self._total = _norm([p.grad.numpy() for p in self.model.parameters() if p.grad is not None])

    def after(self):
        row = {}
        for path, mod in self.units:
            own = dict(mod.named_parameters(recurse=False))
            ws = [own["weight"]] if "weight" in own else [p for n, p in own.items() if not is_bias(n)]
            wn = _norm(self._weights[path])
            un = _norm([p.detach().numpy() - w0 for p, w0 in zip(ws, self._weights[path])])
            outs = self.outputs.get(path, [])
            ag = _norm([o.grad.float().numpy() for o in outs if o.grad is not None]) if outs else math.nan  # bf16: no numpy
            row[path] = {"grad_norm": self._grads[path][0], "bias_grad_norm": self._grads[path][1],
                         "weight_norm": wn, "update_norm": un, "update_ratio": un / wn, "act_grad_norm": ag,
                         "acts": [a.numpy() for a in self.acts.get(path, [])],
                         "out": [o.detach().float().numpy() for o in outs]}
        row["_total"] = self._total
        self.rows.append(row)
        self.outputs, self.acts = {}, {}

    def remove(self):
        for h in self._hooks:
            h.remove()


def _train(model, opt, batches, loss_fn, out, ref=None, every=1, activations=True, scaler=None, watch_scaler=None):
    w = gradsim.watch(model, opt, out=out, every=every, activations=activations, scaler=watch_scaler)
    losses = []
    for x, y in batches:
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        if scaler is not None:
            scaler.scale(loss).backward()
            if ref:
                ref.before_scaled = True
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            if ref:
                ref.before()
            opt.step()
            if ref:
                ref.after()
        w.loss(loss)
        losses.append(float(loss.detach()))
    w.close()
    return w, losses


def _check(session, ref, units, cols=("grad_norm", "bias_grad_norm", "weight_norm", "update_norm", "update_ratio", "act_grad_norm"),
           rows=None):
    lm = session.layers
    rows = rows if rows is not None else range(len(ref.rows))
    index = {u.name: j for j, u in enumerate(session.units)}
    for i, r in enumerate(rows):
        for path in units:
            j = index[path]
            for c in cols:
                want = ref.rows[r][path][c]
                got = float(lm[i, j, LAYER_INDEX[c]])
                if math.isnan(want):
                    assert math.isnan(got), (r, path, c, got)
                else:
                    assert got == pytest.approx(want, rel=RTOL, abs=1e-30), (r, path, c, got, want)
        assert session.scalars[i, STEP_INDEX["grad_norm_total"]] == pytest.approx(ref.rows[r]["_total"], rel=RTOL)


def _batches(n, shape, n_classes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(*shape, generator=g), torch.randint(0, n_classes, (shape[0],), generator=g)) for _ in range(n)]


CE = nn.functional.cross_entropy


# --------------------------------------------------------------------- MLP
def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 16), nn.Sigmoid(), nn.Linear(16, 12), nn.ReLU(),
                         nn.Linear(12, 12), nn.GELU(), nn.Linear(12, 3))


def test_mlp_every_number_matches_the_reference(tmp_path):
    model = _mlp()
    acts = {"0": model[1], "2": model[3], "4": model[5], "6": model[7]}
    ref = Reference(model, acts)
    opt = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
    w, losses = _train(model, opt, _batches(4, (32, 5), 3), CE, tmp_path / "run", ref=ref)
    s = load_session(tmp_path / "run")
    assert s.model == "watched" and len(s) == 4
    assert [u.name for u in s.units] == ["0", "2", "4", "6", "8"]
    assert [u.kind for u in s.units] == ["linear"] * 5
    assert s.units[0].params == ("0.weight", "0.bias")
    _check(s, ref, ["0", "2", "4", "6", "8"])
    np.testing.assert_allclose(s.column("loss"), losses, rtol=1e-6)
    assert np.isnan(s.column("accuracy")).all()
    np.testing.assert_allclose(s.column("lr"), 0.3)
    assert s.steps.tolist() == [0, 1, 2, 3]
    # activation statistics: of the activation module that follows each Linear
    for i in range(4):
        for j, path in enumerate(["0", "2", "4", "6"]):
            (a,) = ref.rows[i][path]["acts"]
            got = s.layers[i, j]
            assert got[LAYER_INDEX["act_mean"]] == pytest.approx(a.mean(), rel=1e-4, abs=1e-6)
            assert got[LAYER_INDEX["act_std"]] == pytest.approx(a.std(ddof=1), rel=1e-4)
            sat = {"0": np.mean(np.abs(a) > 0.97), "2": np.mean((a < 0.03) | (a > 0.97)), "4": 0.0, "6": 0.0}[path]
            dead = {"0": 0.0, "2": 0.0, "4": np.mean(a.max(axis=0) == 0), "6": 0.0}[path]
            assert got[LAYER_INDEX["act_saturation"]] == pytest.approx(sat, abs=1e-7)
            assert got[LAYER_INDEX["act_dead"]] == pytest.approx(dead, abs=1e-7)
        # the output layer has no activation after it: its own output's mean and std, the rest unknown
        (logits,) = ref.rows[i]["8"]["out"]
        assert s.layers[i, 4, LAYER_INDEX["act_mean"]] == pytest.approx(logits.mean(), rel=1e-4, abs=1e-6)
        assert s.layers[i, 4, LAYER_INDEX["act_std"]] == pytest.approx(logits.std(ddof=1), rel=1e-4)
        assert np.isnan(s.layers[i, 4, LAYER_INDEX["act_saturation"]]) and np.isnan(s.layers[i, 4, LAYER_INDEX["act_dead"]])
    assert s.has_stats.all()


def test_saturation_and_dead_units_are_seen(tmp_path):
    """A sigmoid fed huge pre-activations saturates; ReLUs behind a big negative bias die."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 32), nn.Sigmoid(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))
    with torch.no_grad():
        model[0].weight.mul_(60.0)
        model[2].bias[:24] = -1e3  # 24 of 32 features can never be positive
    ref = Reference(model, {"0": model[1], "2": model[3]})
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    _train(model, opt, _batches(2, (64, 4), 2), CE, tmp_path / "run", ref=ref)
    s = load_session(tmp_path / "run")
    a_sig = ref.rows[0]["0"]["acts"][0]
    a_relu = ref.rows[0]["2"]["acts"][0]
    want_sat = np.mean((a_sig < 0.03) | (a_sig > 0.97))
    assert want_sat > 0.5
    assert s.layers[0, 0, LAYER_INDEX["act_saturation"]] == pytest.approx(want_sat, abs=1e-7)
    want_dead = np.mean(a_relu.max(axis=0) == 0)
    assert want_dead >= 24 / 32
    assert s.layers[0, 1, LAYER_INDEX["act_dead"]] == pytest.approx(want_dead, abs=1e-7)


# --------------------------------------------------------------------- CNN
class _Conv(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(2, 4, 3, padding=1)
        self.c2 = nn.Conv2d(1, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.relu = nn.ReLU()
        self.gn = nn.GroupNorm(2, 6)
        self.c3 = nn.Conv3d(1, 3, 2)
        self.ln = nn.LayerNorm(4 * 8 + 6 * 36 + 3 * 27)
        self.fc = nn.Linear(4 * 8 + 6 * 36 + 3 * 27, 3)

    def forward(self, x):
        a = self.c1(x[:, :16].reshape(-1, 2, 8))
        b = self.gn(self.relu(self.bn(self.c2(x[:, 16:52].reshape(-1, 1, 6, 6)))))
        c = self.c3(x[:, 52:116].reshape(-1, 1, 4, 4, 4))
        h = self.ln(torch.cat([a.flatten(1), b.flatten(1), c.flatten(1)], 1))
        return self.fc(h)


def test_convolutions_and_norms_match_the_reference(tmp_path):
    torch.manual_seed(2)
    model = _Conv()
    ref = Reference(model, {"bn": model.relu})
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    _train(model, opt, _batches(3, (8, 116), 3), CE, tmp_path / "run", ref=ref)
    s = load_session(tmp_path / "run")
    names = ["c1", "c2", "bn", "gn", "c3", "ln", "fc"]
    assert [u.name for u in s.units] == names
    assert [u.kind for u in s.units] == ["conv1d", "conv2d", "batchnorm2d", "groupnorm", "conv3d", "layernorm", "linear"]
    _check(s, ref, names)
    for i in range(3):
        (a,) = ref.rows[i]["bn"]["acts"]  # the ReLU after the batch norm: dead = channels zero everywhere
        dead = np.mean(a.transpose(1, 0, 2, 3).reshape(6, -1).max(axis=1) == 0)
        assert s.layers[i, 2, LAYER_INDEX["act_dead"]] == pytest.approx(dead, abs=1e-7)
        assert s.layers[i, 2, LAYER_INDEX["act_mean"]] == pytest.approx(a.mean(), rel=1e-4)


# -------------------------------------------- sequences, attention, custom
class _Scale(nn.Module):
    """A custom module with parameters of its own and no ``weight``."""

    def __init__(self, d):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(d) * 1.5)
        self.shift_bias = nn.Parameter(torch.zeros(d))

    def forward(self, x):
        return x * self.gain + self.shift_bias


class _Seq(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(11, 8)
        self.rnn = nn.RNN(8, 8, batch_first=True)
        self.lstm = nn.LSTM(8, 8, batch_first=True, num_layers=2)
        self.gru = nn.GRU(8, 8, batch_first=True)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.scale = _Scale(8)
        self.head = nn.Linear(8, 3)

    def forward(self, tokens):
        h = self.emb(tokens)
        h, _ = self.rnn(h)
        h, _ = self.lstm(h)
        h, _ = self.gru(h)
        a, _ = self.attn(h, h, h)
        return self.head(self.scale(a + h)[:, -1])


def test_embedding_recurrent_attention_and_custom_modules(tmp_path):
    torch.manual_seed(3)
    model = _Seq()
    ref = Reference(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randint(0, 11, (6, 7), generator=g), torch.randint(0, 3, (6,), generator=g)) for _ in range(3)]
    _train(model, opt, batches, CE, tmp_path / "run", ref=ref)
    s = load_session(tmp_path / "run")
    names = [u.name for u in s.units]
    assert names == ["emb", "rnn", "lstm", "gru", "attn", "attn.out_proj", "scale", "head"]
    kinds = dict(zip(names, [u.kind for u in s.units]))
    assert kinds["lstm"] == "lstm" and kinds["attn"] == "multiheadattention" and kinds["scale"] == "_scale"
    lstm = dict((u.name, u.params) for u in s.units)["lstm"]
    assert set(lstm) == {n for n, _ in model.lstm.named_parameters(prefix="lstm")}
    # the attention's out_proj is used through its weights, never called: no output gradient of its own
    check = [n for n in names if n != "attn.out_proj"]
    _check(s, ref, check)
    _check(s, ref, ["attn.out_proj"], cols=("grad_norm", "bias_grad_norm", "weight_norm", "update_norm"))
    # the recurrent layers' outputs are tanh-like: saturation counted on their own output
    for name in ("rnn", "lstm", "gru"):
        j = names.index(name)
        for i in range(3):
            (h,) = ref.rows[i][name]["out"]
            assert s.layers[i, j, LAYER_INDEX["act_saturation"]] == pytest.approx(np.mean(np.abs(h) > 0.97), abs=1e-7)
            assert s.layers[i, j, LAYER_INDEX["act_std"]] == pytest.approx(h.std(ddof=1), rel=1e-4)
            assert s.layers[i, j, LAYER_INDEX["act_dead"]] == 0


# ------------------------------------------------------------ every, Adam
def test_every_records_every_nth_step_only(tmp_path):
    model = _mlp()
    ref = Reference(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    _train(model, opt, _batches(7, (16, 5), 3), CE, tmp_path / "run", ref=ref, every=3)
    s = load_session(tmp_path / "run")
    assert s.steps.tolist() == [0, 3, 6] and s.record_every == 3 and s.steps_run == 7
    _check(s, ref, ["0", "2", "4", "6", "8"], rows=[0, 3, 6])


# -------------------------------------------------------------- GradScaler
def _twin_runs(tmp_path, make_opt, activations=True):
    batches = _batches(3, (16, 5), 3)
    plain = _mlp()
    _train(plain, make_opt(plain), batches, CE, tmp_path / "plain", activations=activations)
    scaled = _mlp()
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12)
    _train(scaled, make_opt(scaled), batches, CE, tmp_path / "scaled", scaler=scaler, activations=activations,
           watch_scaler=scaler)
    return load_session(tmp_path / "plain"), load_session(tmp_path / "scaled")


def test_a_grad_scaler_is_unscaled_before_reading(tmp_path):
    """The scaled run's recorded gradients are the plain run's, not 4096 times them."""
    a, b = _twin_runs(tmp_path, lambda m: torch.optim.SGD(m.parameters(), lr=0.1))
    for col in ("grad_norm", "bias_grad_norm", "weight_norm", "update_norm", "act_grad_norm"):
        np.testing.assert_allclose(b.layer_metric(col), a.layer_metric(col), rtol=1e-5, err_msg=col)
    np.testing.assert_allclose(b.column("grad_norm_total"), a.column("grad_norm_total"), rtol=1e-5)


def test_a_fused_optimizer_that_unscales_itself_is_read_unscaled(tmp_path):
    try:
        torch.optim.Adam(nn.Linear(2, 2).parameters(), fused=True).step()
    except (RuntimeError, TypeError) as exc:
        pytest.skip(f"fused Adam is not available on this build: {exc}")
    a, b = _twin_runs(tmp_path, lambda m: torch.optim.Adam(m.parameters(), lr=1e-2, fused=True), activations=False)
    for col in ("grad_norm", "bias_grad_norm", "update_norm"):
        np.testing.assert_allclose(b.layer_metric(col), a.layer_metric(col), rtol=1e-4, err_msg=col)


# -------------------------------------------------- hooks, syncs, compile
def test_without_activations_no_module_is_hooked_and_close_removes_everything(tmp_path):
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    w = gradsim.watch(model, opt, out=tmp_path / "a", activations=False)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    w.close()
    w2 = gradsim.watch.watch(model, opt, out=tmp_path / "b")
    assert any(m._forward_hooks for m in model.modules())
    w2.close()
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert not opt._optimizer_step_pre_hooks and not opt._optimizer_step_post_hooks
    s = load_session(tmp_path / "a")
    assert len(s) == 0 and not s.has_stats.any()


def test_activations_off_still_records_the_parameter_numbers(tmp_path):
    model = _mlp()
    ref = Reference(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    _train(model, opt, _batches(2, (16, 5), 3), CE, tmp_path / "run", ref=ref, activations=False)
    s = load_session(tmp_path / "run")
    _check(s, ref, ["0", "2", "4", "6", "8"], cols=("grad_norm", "bias_grad_norm", "weight_norm", "update_norm", "update_ratio"))
    assert np.isnan(s.layer_metric("act_grad_norm")).all() and not s.has_stats.any()


def test_one_host_copy_per_recorded_step_whatever_the_depth(tmp_path, monkeypatch):
    """No .item() per layer: the copies off the device do not grow with the number of units."""
    counts = {"item": 0, "tolist": 0, "float": 0}
    real = {k: getattr(torch.Tensor, k) for k in ("item", "tolist", "__float__")}

    def counting(name, key):
        def f(self, *a, **k):
            counts[key] += 1
            return real[name](self, *a, **k)
        return f

    def run(depth):
        torch.manual_seed(0)
        layers = [nn.Linear(8, 8) for _ in range(depth)]
        model = nn.Sequential(*[m for lin in layers for m in (lin, nn.ReLU())])
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        w = gradsim.watch(model, opt, out=tmp_path / f"d{depth}")
        batches = _batches(4, (4, 8), 8)
        for k in counts:
            counts[k] = 0
        monkeypatch.setattr(torch.Tensor, "item", counting("item", "item"))
        monkeypatch.setattr(torch.Tensor, "tolist", counting("tolist", "tolist"))
        monkeypatch.setattr(torch.Tensor, "__float__", counting("__float__", "float"))
        for x, y in batches:
            opt.zero_grad()
            loss = CE(model(x), y)
            loss.backward()
            opt.step()
            w.loss(loss)
        w.close()
        for k, f in real.items():
            monkeypatch.setattr(torch.Tensor, k, f)
        return dict(counts)

    small, big = run(2), run(12)
    assert small == big
    assert small["item"] == 0 and small["tolist"] == 4 and small["float"] == 4  # per step: the block, the loss


def test_a_compiled_model_keeps_its_graph_without_activation_hooks(tmp_path):
    from torch._dynamo.utils import counters

    model = _mlp()
    try:
        compiled = torch.compile(model, backend="eager", fullgraph=True)
        compiled(torch.randn(2, 5))
    except Exception as exc:  # any failure means compile is unavailable here
        pytest.skip(f"torch.compile does not run on this machine: {exc}")
    torch._dynamo.reset()
    counters.clear()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    w = gradsim.watch(model, opt, out=tmp_path / "run", activations=False)
    compiled = torch.compile(model, backend="eager", fullgraph=True)  # fullgraph: a graph break raises
    for x, y in _batches(3, (8, 5), 3):
        opt.zero_grad()
        loss = CE(compiled(x), y)
        loss.backward()
        opt.step()
        w.loss(loss)
    w.close()
    assert sum(counters["graph_break"].values()) == 0
    assert counters["stats"]["unique_graphs"] == 1
    s = load_session(tmp_path / "run")
    assert len(s) == 3 and np.isfinite(s.layer_metric("grad_norm")).all()


# ------------------------------------------------------------ input, files
def test_bad_arguments_say_what_is_allowed(tmp_path):
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(gradsim.watch.WatchError, match="every = 0"):
        gradsim.watch(model, opt, out=tmp_path / "a", every=0)
    with pytest.raises(gradsim.watch.WatchError, match="torch.optim.Optimizer"):
        gradsim.watch(model, "sgd", out=tmp_path / "a")
    with pytest.raises(gradsim.watch.WatchError, match="no parameters"):
        gradsim.watch(nn.ReLU(), opt, out=tmp_path / "a")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(gradsim.watch.WatchError, match="not empty"):
        gradsim.watch(model, opt, out=tmp_path / "full")
    assert (tmp_path / "full" / "notes.txt").read_text() == "mine"
    assert not any(m._forward_hooks for m in model.modules()) and not opt._optimizer_step_pre_hooks
    gradsim.watch(model, opt, out=tmp_path / "b").close()
    with pytest.raises(gradsim.watch.WatchError, match="overwrite=True"):
        gradsim.watch(model, opt, out=tmp_path / "b")
    gradsim.watch(model, opt, out=tmp_path / "b", overwrite=True).close()


def test_a_diverging_run_is_marked(tmp_path):
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with gradsim.watch(model, opt, out=tmp_path / "run") as w:
        for i, (x, y) in enumerate(_batches(3, (8, 5), 3)):
            opt.zero_grad()
            loss = CE(model(x), y)
            loss.backward()
            opt.step()
            w.loss(loss if i < 2 else torch.tensor(float("nan")))
    s = load_session(tmp_path / "run")
    assert s.column("diverged").tolist() == [0, 0, 1]
    assert s.diverged_at == 2 and [e.kind for e in s.events] == ["start", "diverged"]


def test_a_follower_reads_a_growing_folder_without_torn_rows(tmp_path):
    """While a run writes, a reader sees whole steps only: a half-written line and the
    layer rows of a step whose steps.csv row is not there yet are left out."""
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    w = gradsim.watch(model, opt, out=tmp_path / "run")
    seen = []
    for x, y in _batches(4, (8, 5), 3):
        opt.zero_grad()
        loss = CE(model(x), y)
        loss.backward()
        opt.step()
        w.loss(loss)
        w.flush()
        seen.append(len(gradsim.watch.read_growing(tmp_path / "run")))
    assert seen == [1, 2, 3, 4]
    # a step half on disk: its layer rows are there, its steps.csv row not yet, and a torn line
    with open(tmp_path / "run" / "layers.csv", "a") as fh:
        fh.write("".join(f"4,{j},1,1,1,1,1,1,1,1,0,0,\n" for j in range(1, 6)) + "5,1,0.3")
    with open(tmp_path / "run" / "steps.csv", "a") as fh:
        fh.write("4,0.5,na")
    s = gradsim.watch.read_growing(tmp_path / "run")
    assert len(s) == 4 and s.steps.tolist() == [0, 1, 2, 3]
    w.close()


@pytest.mark.parametrize("when", ["after", "before"])
def test_with_every_the_loss_of_each_recorded_step_is_its_own(tmp_path, when):
    """every=3: the loss written for steps 0, 3, 6 is the loss of those steps' batches, whether
    w.loss() is called after optimizer.step() or before it (unrecorded steps' losses are dropped)."""
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    with gradsim.watch(model, opt, out=tmp_path / "run", every=3) as w:
        for x, y in _batches(7, (8, 5), 3):
            opt.zero_grad()
            loss = CE(model(x), y)
            loss.backward()
            losses.append(float(loss.detach()))
            if when == "before":
                w.loss(loss)
            opt.step()
            if when == "after":
                w.loss(loss)
    s = load_session(tmp_path / "run")
    assert s.steps.tolist() == [0, 3, 6]
    np.testing.assert_allclose(s.column("loss"), [losses[0], losses[3], losses[6]], rtol=1e-7)

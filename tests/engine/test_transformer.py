"""The transformer is torch's TransformerEncoder: same names, same stream, same gradients; every
number of its rows (norms, stream and sublayer signals, attention statistics) is what autograd
and nn.MultiheadAttention give a plain torch model with the same weights."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from gradsim import activations
from gradsim.config import ConfigError, RunConfig
from gradsim.metrics import LAYER_INDEX
from gradsim.models.family import FAMILIES, family_for, transformer_units
from gradsim.models.transformer import TransformerNet
from gradsim.train.trainer import Trainer

CASES = [("pre", "gelu", 2), ("post", "tanh", 2), ("pre", "relu", 3), ("post", "relu", 1)]


class Plain(nn.Module):
    """The plain torch model: an input Linear, a positional table, nn.TransformerEncoder, a head on token 1."""

    def __init__(self, n_in, n_out, depth, width, heads, act, pre, seq_len):
        super().__init__()
        self.embed = nn.Linear(n_in, width)
        self.pos = nn.Parameter(torch.zeros(seq_len, width))
        layer = nn.TransformerEncoderLayer(
            width, heads, 4 * width, dropout=0.0, activation=activations.get(act).torch_fn(0.01), batch_first=True, norm_first=pre,
        )
        self.encoder = nn.TransformerEncoder(layer, depth, norm=nn.LayerNorm(width) if pre else None, enable_nested_tensor=False)
        self.head = nn.Linear(width, n_out)
        self.pre = pre

    def forward(self, x):
        """(logits, the streams entering each layer and leaving the last, each retaining its grad)."""
        h = self.embed(x) + self.pos[: x.shape[1]]
        streams = []
        for layer in self.encoder.layers:
            _retain(h)
            streams.append(h)
            h = layer(h)
        _retain(h)
        streams.append(h)
        out = self.encoder.norm(h) if self.encoder.norm is not None else h
        return self.head(out[:, 0]), streams


def _retain(t):
    if t.requires_grad:
        t.retain_grad()


def _hook_sublayers(plain):
    """Forward hooks that keep (retaining grads) each attention and MLP output, and each
    sublayer's input, in call order: attn 1, mlp 1, attn 2, ..."""
    outs, ins = [], []

    def keep_attn(m, args, o):
        _retain(o[0])
        outs.append(o[0])
        ins.append(("attn", args[0].detach()))

    def keep_mlp(m, args, o):
        _retain(o)
        outs.append(o)

    def keep_hidden(m, args, o):
        ins.append(("mlp", o.detach()))  # linear1's output: the MLP's pre-activation

    for layer in plain.encoder.layers:
        layer.self_attn.register_forward_hook(keep_attn)
        layer.linear1.register_forward_hook(keep_hidden)
        layer.linear2.register_forward_hook(keep_mlp)
    return outs, ins


def _pair(norm, act, depth, n_in=1, n_out=2, width=32, heads=4, seq_len=6, seed=0):
    net = TransformerNet(n_in, n_out, depth, width, heads, act, seq_len, norm)
    net.reinit("xavier_normal", torch.Generator().manual_seed(seed), bias_std=0.1)
    with torch.no_grad():  # non-trivial layer norms, so a misplaced norm cannot hide
        for p in net.norm_params():
            p.add_(0.2 * torch.randn(p.shape, generator=torch.Generator().manual_seed(seed + p.numel())))
    plain = Plain(n_in, n_out, depth, width, heads, act, norm == "pre", seq_len)
    missing, unexpected = plain.load_state_dict(net.state_dict(), strict=False)
    assert missing == [] and unexpected == ([] if norm == "pre" else ["encoder.norm.weight", "encoder.norm.bias"])
    return net, plain


def _batch(n=5, T=6, seed=1):
    x = torch.randn(n, T, 1, generator=torch.Generator().manual_seed(seed))
    y = torch.randint(0, 2, (n,), generator=torch.Generator().manual_seed(seed + 1))
    return x, y


@pytest.mark.parametrize("norm,act,depth", CASES)
def test_names_and_shapes_are_torchs_own(norm, act, depth):
    net, plain = _pair(norm, act, depth)
    theirs = dict((n, tuple(p.shape)) for n, p in plain.named_parameters())
    mine = dict((n, tuple(p.shape)) for n, p in net.named_parameters())
    extra = {"encoder.norm.weight", "encoder.norm.bias"} if norm == "post" else set()
    assert set(mine) - set(theirs) == extra and {k: v for k, v in mine.items() if k not in extra} == theirs


@pytest.mark.parametrize("norm,act,depth", CASES)
def test_outputs_gradients_and_signals_match_autograd_on_a_plain_model(norm, act, depth):
    net, plain = _pair(norm, act, depth)
    x, y = _batch()
    logits, signals, _ = net.forward_units(x)
    for z in signals:
        if z is not None:
            z.retain_grad()
    outs, _ = _hook_sublayers(plain)
    ref, streams = plain(x)
    torch.testing.assert_close(logits, ref, rtol=1e-5, atol=1e-6)
    nn.functional.cross_entropy(logits, y).backward()
    nn.functional.cross_entropy(ref, y).backward()
    theirs = dict(plain.named_parameters())
    for name, p in net.named_parameters():
        if name in theirs:
            torch.testing.assert_close(p.grad, theirs[name].grad, rtol=1e-4, atol=1e-6, msg=name)
        else:  # Post-LN leaves the final norm unused
            assert p.grad is None or not p.grad.any()
    units = transformer_units(depth)
    expected = [s.grad for s in streams] + [o.grad for o in outs]
    n_heads = depth * net.heads  # the head units come last and carry no signal
    assert len(expected) == sum(u.kind in ("stream", "block") for u in units) == len(signals) - 2 - n_heads
    assert len(signals) == net.n_layers == len(transformer_units(depth, net.heads))
    for u, z, g in zip(units, signals, expected):
        torch.testing.assert_close(z.grad, g, rtol=1e-4, atol=1e-7, msg=u.name)
    assert signals[len(expected):] == [None] * (2 + n_heads)


def _independent_stats(plain, x, act, T):
    """The (units - 2, 4) statistics from the plain model: streams' mean/std, attention
    entropy and saturation from nn.MultiheadAttention's own weights, the MLP's hidden
    activation from linear1's output through the activation."""
    _, ins = _hook_sublayers(plain)
    with torch.no_grad():
        _, streams = plain(x)
    rows = [[float(s.mean()), float(s.std()), math.nan, math.nan] for s in streams]
    a = activations.get(act)
    layers = list(plain.encoder.layers)
    k = 0
    for what, z in list(ins):  # the calls below run the hooks again
        if what == "attn":
            with torch.no_grad():
                _, w = layers[k // 2].self_attn(z, z, z, need_weights=True, average_attn_weights=False)
            w = w.double()
            ent = -torch.special.xlogy(w, w).sum(-1) / math.log(T)  # [batch, heads, query]; 0 log 0 = 0
            per_head = ent.mean(dim=(0, 2)).numpy()
            sat = float((w.amax(-1) > 0.99).double().mean())
            rows.append([per_head.mean(), per_head.std(), sat, per_head.min()])
        else:
            u = a.torch_fn(0.01)(z).double().reshape(-1, z.shape[-1])
            sat = float(a.saturated(u).double().mean()) if a.saturated_outside else 0.0
            dead = float((u.amax(0) == 0).double().mean()) if a.can_die else 0.0
            rows.append([float(u.mean()), float(u.std()), sat, dead])
        k += 1
    return np.array(rows)


def _independent_head_rows(plain, x, T):
    """(depth * heads, 4) rows of the head units from the plain model: each attention's input
    (hooked), q, k from its in_proj weights in float64, p = softmax(q k^T / sqrt(d_head)),
    then per head [mean over batch and queries of -sum p ln p / ln T, NaN, fraction of rows
    whose largest p is above 0.99, NaN]."""
    _, ins = _hook_sublayers(plain)
    with torch.no_grad():
        plain(x)
    rows = []
    attn_inputs = [z for what, z in ins if what == "attn"]
    for layer, z in zip(plain.encoder.layers, attn_inputs):
        att = layer.self_attn
        H, d = att.num_heads, att.embed_dim
        w, b = att.in_proj_weight.detach().double(), att.in_proj_bias.detach().double()
        z = z.double()
        q = (z @ w[:d].T + b[:d]).reshape(z.shape[0], T, H, d // H).transpose(1, 2)
        k = (z @ w[d : 2 * d].T + b[d : 2 * d]).reshape(z.shape[0], T, H, d // H).transpose(1, 2)
        p = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // H), dim=-1)  # [batch, head, query, key]
        ent = -torch.special.xlogy(p, p).sum(-1) / math.log(T)
        for h in range(H):
            rows.append([float(ent[:, h].mean()), math.nan, float((p[:, h].amax(-1) > 0.99).double().mean()), math.nan])
    return np.array(rows)


@pytest.mark.parametrize("norm,act,depth", CASES)
def test_statistics_match_multihead_attentions_own_weights(norm, act, depth):
    net, plain = _pair(norm, act, depth)
    x, _ = _batch(n=7)
    with torch.no_grad():
        _, _, table = net.forward_units(x, stats=True)
    want = _independent_stats(plain, x, act, x.shape[1])
    got = table.numpy()
    assert got.shape == (net.n_layers, 4)
    np.testing.assert_allclose(got[: len(want)], want, rtol=2e-4, atol=1e-6)
    assert np.isnan(got[len(want) : len(want) + 2]).all()  # embed and head have no activations
    heads = _independent_head_rows(plain, x, x.shape[1])
    assert len(heads) == depth * net.heads
    np.testing.assert_allclose(got[len(want) + 2 :], heads, rtol=2e-4, atol=1e-6)
    np.testing.assert_allclose(net.head_entropy.reshape(-1), heads[:, 0], rtol=2e-4, atol=1e-6)


def test_each_head_of_a_block_gets_its_own_entropy_row():
    """One head made to collapse (its queries and keys scaled up), the others left: the
    collapsed head's row is near 0 and saturated, the others stay spread out, and the
    head units sit after every earlier unit."""
    net, plain = _pair("pre", "gelu", 2)
    dh = net.width // net.heads
    with torch.no_grad():
        w = net.encoder.layers[1].self_attn.in_proj_weight
        w[2 * dh : 3 * dh].mul_(60.0)  # head 3's queries
        w[net.width + 2 * dh : net.width + 3 * dh].mul_(60.0)  # and keys
        plain.load_state_dict(net.state_dict(), strict=False)
    x, _ = _batch(n=6)
    with torch.no_grad():
        _, _, table = net.forward_units(x, stats=True)
    units = transformer_units(2, net.heads)
    assert units[: 3 * 2 + 3] == transformer_units(2)
    rows = [j for j, u in enumerate(units) if u.kind == "head"]
    assert [units[j].name for j in rows[net.heads :]] == [f"block 2 head {h}" for h in range(1, net.heads + 1)]
    got = table.numpy()[rows]
    # atol: the scaled logits are in the thousands, where float32 (the net) and float64 (the
    # reference) round the softmax of a near-one-hot row differently by ~1e-5
    np.testing.assert_allclose(got, _independent_head_rows(plain, x, x.shape[1]), rtol=2e-4, atol=3e-5)
    block2 = got[net.heads :]
    assert block2[2, 0] < 0.2 and block2[2, 2] > 0.5
    assert np.delete(block2[:, 0], 2).min() > 0.5
    # the attention row's summary is the summary of its heads
    attn2 = table.numpy()[next(j for j, u in enumerate(units) if u.name == "attn 2")]
    np.testing.assert_allclose(attn2[[0, 1, 3]], [block2[:, 0].mean(), block2[:, 0].std(), block2[:, 0].min()], rtol=1e-5)


def test_saturated_rows_are_counted_when_attention_collapses():
    """Scaled-up queries and keys make the softmax one-hot: every row saturated, entropy near 0."""
    net, plain = _pair("post", "gelu", 1)
    with torch.no_grad():
        for p in (net.encoder.layers[0].self_attn.in_proj_weight,):
            p[: 2 * net.width].mul_(40.0)
        plain.load_state_dict(net.state_dict(), strict=False)
    x, _ = _batch(n=4)
    with torch.no_grad():
        _, _, table = net.forward_units(x, stats=True)
    want = _independent_stats(plain, x, "gelu", x.shape[1])
    row = transformer_units(1)[2]
    assert row.name == "attn 1"
    got = table.numpy()[row.layer - 1]
    np.testing.assert_allclose(got, want[row.layer - 1], rtol=2e-4, atol=1e-6)
    assert got[2] > 0.5 and got[0] < 0.2


# ------------------------------------------------------------------ the trainer's rows
def _cfg(**kw):
    base = dict(model="transformer", dataset="recall-last", seq_len=6, depth=2, width=32, heads=4, activation="gelu",
                n_samples=120, batch_size=8, steps=4, stats_every=1, optimizer="adam", lr=1e-2, bias_std=0.05)
    base.update(kw)
    return RunConfig(**base)


def _plain_of(t):
    c = t.config
    plain = Plain(1, 2, c.depth, c.width, c.heads, c.activation, t.net.norm_position == "pre", c.seq_len)
    plain.load_state_dict(t.net.state_dict(), strict=False)
    return plain


@pytest.mark.parametrize("norm,optimizer", [("pre", "adam"), ("post", "sgd"), ("post", "momentum")])
def test_trainer_rows_equal_autograd_on_a_plain_model(norm, optimizer):
    t = Trainer(_cfg(norm_position=norm, optimizer=optimizer))
    t.run(steps=1)  # past step 0: momentum and Adam have state
    x, y = t.batch(t.step_index)
    plain = _plain_of(t)
    outs, _ = _hook_sublayers(plain)
    logits, streams = plain(x)
    nn.functional.cross_entropy(logits, y).backward()
    want_stats = _independent_stats(_plain_of(t), x, "gelu", x.shape[1])
    want_heads = _independent_head_rows(_plain_of(t), x, x.shape[1])  # the weights the step reads
    before = {n: p.detach().clone() for n, p in t.net.named_parameters()}
    rec = t.step()
    after = dict(t.net.named_parameters())
    grads = {n: p.grad for n, p in plain.named_parameters()}
    signal = [s.grad for s in streams] + [o.grad for o in outs]
    L = LAYER_INDEX
    for j, u in enumerate(t.units):
        row = rec.layers[j]
        ws = [n for n in u.params if before[n].dim() > 1]
        bs = [n for n in u.params if before[n].dim() == 1]
        if u.kind in ("stream", "block"):
            np.testing.assert_allclose(row[L["act_grad_norm"]], float(signal[j].norm()), rtol=1e-4, err_msg=u.name)
        else:
            assert np.isnan(row[L["act_grad_norm"]])
        if not ws:
            assert np.isnan(row[: L["update_ratio"] + 1]).all(), u.name
            continue
        g = math.sqrt(sum(float(grads[n].norm()) ** 2 for n in ws))
        gb = math.sqrt(sum(float(grads[n].norm()) ** 2 for n in bs))
        w = math.sqrt(sum(float(before[n].norm()) ** 2 for n in ws))
        d = math.sqrt(sum(float((after[n].detach() - before[n]).norm()) ** 2 for n in ws))
        np.testing.assert_allclose(row[[L["grad_norm"], L["bias_grad_norm"], L["weight_norm"]]], [g, gb, w], rtol=1e-4, err_msg=u.name)
        np.testing.assert_allclose(row[[L["update_norm"], L["update_ratio"]]], [d, d / w], rtol=2e-3, err_msg=u.name)
    all_grads = torch.cat([g.reshape(-1) for g in grads.values()])
    np.testing.assert_allclose(rec.scalar("grad_norm_total"), float(all_grads.norm()), rtol=1e-4)
    n_stats = len(want_stats)
    got = rec.layers[:n_stats, L["act_mean"] : L["act_dead"] + 1]
    np.testing.assert_allclose(got, want_stats, rtol=2e-4, atol=1e-6)
    heads = [j for j, u in enumerate(t.units) if u.kind == "head"]
    assert heads == list(range(3 * t.config.depth + 3, t.n_layers))
    got = rec.layers[heads, L["act_mean"] : L["act_dead"] + 1]
    np.testing.assert_allclose(got, want_heads, rtol=2e-4, atol=1e-6)


def test_units_from_the_config_are_the_networks():
    cfg = _cfg(depth=3)
    t = Trainer(cfg)
    fam = family_for(cfg)
    assert fam is FAMILIES["transformer"]
    assert t.units == fam.config_units(cfg.to_dict()) == transformer_units(3, 4)
    assert [u.name for u in t.units][:4] == ["stream 1", "stream 2", "stream 3", "stream 4"]
    assert [u.kind for u in t.units].count("block") == 6
    names = dict(t.net.named_parameters())
    assert all(p in names for u in t.units for p in u.params)
    assert cfg.param_count() == sum(p.numel() for p in t.net.parameters())
    assert cfg.n_layers == len(t.units) == t.net.n_layers


def test_warmup_scales_the_learning_rate_linearly_from_the_start():
    t = Trainer(_cfg(warmup_steps=3, steps=5, optimizer="sgd", lr=0.1))
    t.run()
    np.testing.assert_allclose(t.session.column("lr"), [0.1 / 3, 0.2 / 3, 0.1, 0.1, 0.1], rtol=1e-12)


@pytest.mark.parametrize("changes,field,text", [
    (dict(heads=3), "heads", "width = 32 must be divisible"),
    (dict(norm_position="mid"), "norm_position", "'mid' is not known; allowed: pre, post"),
    (dict(warmup_steps=-1), "warmup_steps", "warmup_steps = -1 is out of range"),
    (dict(dataset="adding"), "dataset", "cannot train on it"),
    (dict(layernorm=True), "layernorm", "own residual stream"),
    (dict(depth=49), "depth", "blocks of model 'transformer'"),
])
def test_bad_values_are_named(changes, field, text):
    with pytest.raises(ConfigError, match=text) as err:
        _cfg(**changes).validate()
    assert err.value.field == field


def test_mlp_defaults_are_unchanged_by_the_new_fields():
    c = RunConfig()
    assert (c.model, c.heads, c.norm_position, c.warmup_steps) == ("mlp", 4, "pre", 0)
    assert c.validate() is c

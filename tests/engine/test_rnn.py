"""The recurrent net is torch's RNN/LSTM/GRU: same names, same outputs, same gradients,
and its per-step dL/dh_t is the gradient autograd gives a plain torch model step by step."""
import math

import pytest
import torch
from torch import nn

from gradsim.config import ConfigError, RunConfig
from gradsim.models.family import FAMILIES, family_for, recurrent_units
from gradsim.models.rnn import RecurrentNet

CASES = [("rnn", "tanh", 1), ("rnn", "relu", 1), ("rnn", "tanh", 3), ("lstm", "tanh", 1), ("lstm", "tanh", 2),
         ("gru", "tanh", 1), ("gru", "tanh", 2)]
TORCH = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class Plain(nn.Module):
    """The plain torch model the contract names: a fused layer and a Linear head on the last step."""

    def __init__(self, cell, n_in, n_out, depth, width, nonlinearity):
        super().__init__()
        kw = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
        self.rnn = TORCH[cell](n_in, width, depth, batch_first=True, **kw)
        self.head = nn.Linear(width, n_out)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def _pair(cell, act, depth, n_in=3, n_out=2, width=16, seed=0):
    net = RecurrentNet(cell, n_in, n_out, depth, width, act)
    gen = torch.Generator().manual_seed(seed)
    net.reinit("xavier_normal", gen, bias_std=0.1, recurrent_init="normal:0.9", forget_bias=1.0)
    plain = Plain(cell, n_in, n_out, depth, width, act)
    plain.load_state_dict(net.state_dict())  # strict: every name and shape must match
    return net, plain


@pytest.mark.parametrize("cell,act,depth", CASES)
def test_names_and_shapes_are_torchs_own(cell, act, depth):
    net, plain = _pair(cell, act, depth)
    assert [(n, tuple(p.shape)) for n, p in net.named_parameters()] == [(n, tuple(p.shape)) for n, p in plain.named_parameters()]


@pytest.mark.parametrize("cell,act,depth", CASES)
def test_outputs_and_parameter_gradients_match_a_plain_torch_model(cell, act, depth):
    net, plain = _pair(cell, act, depth)
    x = torch.randn(5, 7, 3, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 1, 0, 1])
    out, _, _ = net.forward_capture(x)
    ref = plain(x)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    nn.functional.cross_entropy(out, y).backward()
    nn.functional.cross_entropy(ref, y).backward()
    theirs = dict(plain.named_parameters())
    for name, p in net.named_parameters():
        torch.testing.assert_close(p.grad, theirs[name].grad, rtol=1e-4, atol=1e-6, msg=name)


def _plain_step_by_step_grads(plain, cell, x, y, loss_fn=nn.functional.cross_entropy):
    """dL/dh_t of the top layer from the plain fused layer run one step at a time:
    autograd keeps each step's state tensor, so its .grad is the total gradient."""
    state = None
    tops = []
    for t in range(x.shape[1]):
        out, state = plain.rnn(x[:, t : t + 1], state)
        h = state[0] if cell == "lstm" else state
        h.retain_grad()
        tops.append(h)
    out.retain_grad()  # the last step's output: the fused layer returns it apart from its state
    loss = loss_fn(plain.head(out[:, -1]), y)
    loss.backward()
    grads = [h.grad[-1] if h.grad is not None else torch.zeros_like(h[-1]) for h in tops]  # [-1]: the top layer
    grads[-1] = grads[-1] + out.grad[:, -1]
    return grads


@pytest.mark.parametrize("cell,act,depth", CASES)
def test_dl_dh_t_is_the_total_gradient_reaching_each_step(cell, act, depth):
    net, plain = _pair(cell, act, depth)
    x = torch.randn(4, 9, 3, generator=torch.Generator().manual_seed(2))
    y = torch.tensor([1, 0, 0, 1])
    out, hs, _ = net.forward_capture(x)
    nn.functional.cross_entropy(out, y).backward()
    want = _plain_step_by_step_grads(plain, cell, x, y)
    assert len(hs) == 9
    for t, (h, g) in enumerate(zip(hs, want)):
        torch.testing.assert_close(h.grad, g, rtol=1e-4, atol=1e-7, msg=f"t = {t + 1}")
    # the recurrent path matters: the first step's gradient is not the head's alone (which is 0 there)
    assert float(hs[0].grad.norm()) > 0


def test_recurrent_inits_have_the_stated_form():
    gen = torch.Generator().manual_seed(0)
    net = RecurrentNet("rnn", 2, 1, 2, 300)
    net.reinit_recurrent("identity", gen)
    assert all(torch.equal(w, torch.eye(300)) for w in net.recurrent_weights())
    net.reinit_recurrent("orthogonal", gen)
    for w in net.recurrent_weights():
        torch.testing.assert_close(w @ w.T, torch.eye(300), atol=1e-4, rtol=0)
    net.reinit_recurrent("normal:1.5", gen)
    w = net.recurrent_weights()[0].detach()
    assert abs(float(w.std()) / (1.5 / math.sqrt(300)) - 1) < 0.02
    assert abs(net.spectral_radius() / 1.5 - 1) < 0.15  # the circular law: radius G, up to finite-width fluctuation


def test_lstm_forget_bias_is_set_and_the_other_gates_are_not():
    net = RecurrentNet("lstm", 2, 1, 2, 8)
    net.reinit("xavier_normal", torch.Generator().manual_seed(0), forget_bias=1.0)
    for k in range(2):
        _, _, b_ih, b_hh = net.layer_params(k)
        total = b_ih + b_hh
        assert torch.all(total[8:16] == 1.0) and torch.all(total[:8] == 0) and torch.all(total[16:] == 0)


def test_units_are_time_steps_then_parameter_groups():
    cfg = RunConfig(model="lstm", dataset="adding", seq_len=5, depth=2, width=8)
    net = family_for(cfg).build(cfg)
    units = FAMILIES["lstm"].units(net)
    assert units == FAMILIES["lstm"].config_units(cfg.to_dict()) == recurrent_units(5, 2)
    assert [u.name for u in units] == ["t 1", "t 2", "t 3", "t 4", "t 5", "input 1", "recurrent 1", "input 2", "recurrent 2", "head"]
    names = dict(net.named_parameters())
    for u in units[5:]:
        assert u.kind == "param" and all(p in names for p in u.params)
    assert {p for u in units for p in u.params} == set(names)
    assert all(u.kind == "time" and u.params == () for u in units[:5])


@pytest.mark.parametrize("change,field,needle", [
    ({"model": "rnnx"}, "model", "'rnnx' is not known"),
    ({"seq_len": 0}, "seq_len", "seq_len = 0 is out of range: allowed 2 to 1000"),
    ({"seq_len": 1001}, "seq_len", "seq_len = 1001"),
    ({"recurrent_init": "normal:-1"}, "recurrent_init", "'normal:-1'"),
    ({"recurrent_init": "xavier"}, "recurrent_init", "allowed orthogonal, identity or normal:G"),
    ({"dataset": "spiral"}, "dataset", "model 'rnn' cannot train on it; allowed: adding, recall-first, seq-digits"),
    ({"depth": 5}, "depth", "depth = 5 is out of range: allowed 1 to 4"),
    ({"activation": "sigmoid"}, "activation", "model 'rnn' allows tanh, relu"),
    ({"batchnorm": True}, "batchnorm", "model 'rnn' has no batchnorm"),
    ({"forget_bias": float("nan")}, "forget_bias", "forget_bias = nan"),
    ({"dataset": "seq-digits", "seq_len": 10}, "seq_len", "seq-digits reads the 64 pixels"),
])
def test_bad_recurrent_configs_are_refused_naming_the_value(change, field, needle):
    base = {"model": "rnn", "dataset": "adding", "depth": 1, "seq_len": 10}
    with pytest.raises(ConfigError) as err:
        RunConfig(**{**base, **change}).validate()
    assert err.value.field == field and needle in str(err.value)


def test_the_mlp_refuses_sequence_tasks_and_lstm_keeps_tanh():
    with pytest.raises(ConfigError, match="model 'mlp' cannot train on it; allowed: spiral"):
        RunConfig(dataset="adding").validate()
    with pytest.raises(ConfigError, match="fixed gate nonlinearities"):
        RunConfig(model="gru", dataset="adding", depth=1, activation="relu").validate()
    assert FAMILIES["gru"].datasets == ("adding", "recall-first", "seq-digits") and "spiral" in FAMILIES["mlp"].datasets


def test_param_count_is_the_networks():
    for model in ("rnn", "lstm", "gru"):
        cfg = RunConfig(model=model, dataset="seq-digits", seq_len=8, depth=3, width=12)
        net = family_for(cfg).build(cfg)
        assert cfg.param_count() == sum(p.numel() for p in net.parameters())

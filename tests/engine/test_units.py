"""Units (what each row index of layers.csv is), session format 3, and the model-family interface."""
import json

import numpy as np
import pytest
import torch

from gradsim import config as config_module
from gradsim.commands import CommandError, parse_event
from gradsim.config import ConfigError, RunConfig
from gradsim.models.family import FAMILIES, MLPFamily, Unit, UnitError, family_for, units_from_json
from gradsim.session.io import SessionFormatError, export_session, load_session
from gradsim.session.store import Session
from gradsim.train.trainer import Trainer


def _config(**kw):
    base = dict(dataset="moons", n_samples=200, depth=3, width=8, batch_size=32, steps=6, stats_every=2)
    return RunConfig(**{**base, **kw})


def _run(**kw):
    t = Trainer(_config(**kw), [parse_event("3:batchnorm=on")])
    t.run()
    return t


def _rewrite_meta(folder, change):
    meta = json.loads((folder / "session.json").read_text())
    change(meta)
    (folder / "session.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("kw", [{}, {"batchnorm": True}, {"layernorm": True, "residual": True}, {"depth": 1}])
def test_unit_params_are_the_networks_own_parameter_names(kw):
    """Each unit names the weight and bias whose gradient norms its row records,
    as named_parameters() spells them; every Linear is one unit, the output too."""
    t = Trainer(_config(**kw))
    params = dict(t.net.named_parameters())
    assert [u.layer for u in t.units] == list(range(1, t.net.n_layers + 1))
    for u, lin in zip(t.units, t.net.linears):
        assert u.kind == "linear"
        weight, bias = u.params
        assert params[weight] is lin.weight and params[bias] is lin.bias
    # the row's grad_norm is the norm of the named parameter's gradient
    t.step()
    grad = t.session.layer_metric("grad_norm")[-1]
    for j, u in enumerate(t.units):
        assert grad[j] == pytest.approx(float(params[u.params[0]].grad.norm()), rel=1e-5)
    assert t.units[-1].name == "output" and t.units[0].name == "linear 1"
    assert t.session.units == t.units


def test_units_from_the_config_match_the_built_network():
    """Formats 1 and 2 (and the window, without torch) derive units from the config: the same ones."""
    for depth in (1, 4, 9):
        cfg = _config(depth=depth)
        fam = family_for(cfg)
        assert fam.config_units(cfg.to_dict()) == fam.units(fam.build(cfg))


def test_format_3_round_trip(tmp_path):
    t = _run()
    out = export_session(t.session, tmp_path / "run")
    meta = json.loads((out / "session.json").read_text())
    assert meta["format"] == "gradsim-session/3" and meta["model"] == "mlp"
    assert meta["units"][2] == {"layer": 3, "name": "linear 3", "kind": "linear", "params": ["linears.2.weight", "linears.2.bias"]}
    assert [u["name"] for u in meta["units"]] == ["linear 1", "linear 2", "linear 3", "output"]
    back = load_session(out)
    assert back.units == t.units and back.model == "mlp"
    assert np.array_equal(back.layers, t.session.layers, equal_nan=True)


def test_format_3_units_are_read_from_the_file_not_derived(tmp_path):
    """A renamed unit survives a load: the file's units win over the config's."""
    out = export_session(_run().session, tmp_path / "run")
    _rewrite_meta(out, lambda m: m["units"][0].update(name="first"))
    assert load_session(out).units[0].name == "first"


@pytest.mark.parametrize("fmt", ["gradsim-session/1", "gradsim-session/2"])
def test_formats_1_and_2_load_with_units_derived_from_the_config(tmp_path, fmt):
    t = _run()
    out = export_session(t.session, tmp_path / "run")

    def old(meta):
        meta["format"] = fmt
        del meta["model"], meta["units"]
        del meta["config"]["model"]  # v0.2.0 configs have no model field

    _rewrite_meta(out, old)
    if fmt.endswith("/1"):
        rows = (out / "layers.csv").read_text().splitlines()
        (out / "layers.csv").write_text("\n".join(r.rsplit(",", 1)[0] for r in rows) + "\n")
    back = load_session(out)
    assert back.model == "mlp"
    assert back.units == t.units
    assert [u.params for u in back.units] == [(f"linears.{j}.weight", f"linears.{j}.bias") for j in range(4)]


@pytest.mark.parametrize(
    "change, needle",
    [
        (lambda m: m.update(units=m["units"][:-1]), "3 units, but config depth = 3 describes 4"),
        (lambda m: m.update(units="linear"), "units has str"),
        (lambda m: m["units"][1].update(layer=7), "layer = 7, expected 2"),
        (lambda m: m["units"][1].update(name="linear 1"), "used twice"),
        (lambda m: m["units"][0].pop("kind"), "'kind' is missing"),
        (lambda m: m["units"][0].update(params="linears.0.weight"), "params"),
        (lambda m: m.update(model=3), "model = 3"),
        (lambda m: m["config"].update(depth=5), "config depth = 5 describes 6"),
        (lambda m: m.update(model="rnn"), "config model = 'mlp'"),
    ],
)
def test_bad_units_in_a_format_3_file_are_refused_clearly(tmp_path, change, needle):
    out = export_session(_run().session, tmp_path / "run")
    _rewrite_meta(out, change)
    with pytest.raises(SessionFormatError, match="session.json|layers.csv") as err:
        load_session(out)
    assert needle in str(err.value)


def test_unknown_model_is_refused_naming_the_allowed_ones():
    with pytest.raises(ConfigError) as err:
        RunConfig(model="cnn").validate()
    assert err.value.field == "model" and "'cnn'" in str(err.value) and "allowed: mlp" in str(err.value)
    with pytest.raises(ConfigError, match="model"):
        RunConfig.from_dict({"model": "transformer2"})
    with pytest.raises(UnitError, match="'cnn' is not known; allowed: mlp"):
        family_for({"model": "cnn"})


def test_a_v1_or_v2_session_of_an_unknown_model_is_refused_clearly(tmp_path):
    out = export_session(_run().session, tmp_path / "run")

    def old(meta):
        meta["format"] = "gradsim-session/2"
        meta["config"]["model"] = "cnn"

    _rewrite_meta(out, old)
    with pytest.raises(SessionFormatError, match="model = 'cnn' is not known"):
        load_session(out)


def test_the_registry_and_the_config_name_the_same_families():
    assert tuple(FAMILIES) == config_module.MODELS
    assert all(f.name == name for name, f in FAMILIES.items())
    assert family_for(RunConfig()) is FAMILIES["mlp"] and family_for({}) is FAMILIES["mlp"]


def test_the_mlp_takes_every_live_command_and_offers_its_theory():
    from gradsim.commands import PARSERS

    mlp = FAMILIES["mlp"]
    # W_hh and gates exist only in recurrent nets, a norm position only in transformers
    assert mlp.commands == frozenset(PARSERS) - {"recurrent_init", "forget_bias", "norm"}
    hook = mlp.theory()
    assert hook is not None
    t = Trainer(_config())
    x = t.probe_inputs(64)
    np.testing.assert_array_equal(np.asarray(hook(t.net, x), np.float32), t.predicted_gain(x))


class _NoSurgery(MLPFamily):
    """An MLP that takes only lr commands: the trainer must refuse the rest."""

    commands = frozenset({"lr"})


def test_commands_a_family_does_not_allow_are_refused_and_change_nothing(monkeypatch):
    monkeypatch.setitem(FAMILIES, "mlp", _NoSurgery())
    t = Trainer(_config())
    t.step()
    before = t.state(grads=True)
    events = list(t.session.events)
    for text in ("2:batchnorm=on", "2:activation=relu"):
        with pytest.raises(CommandError) as err:
            t.schedule(parse_event(text))
        assert "no live" in str(err.value) and "allowed: lr" in str(err.value)
        with pytest.raises(CommandError, match="allowed: lr"):
            t.apply(parse_event(text).command)
    after = t.state(grads=True)
    for k in ("structure", "lr", "step_index", "schedule", "optimizer_name"):
        assert after[k] == before[k], k
    for part in ("net", "grads"):
        assert after[part].keys() == before[part].keys()
        for name, value in before[part].items():
            assert torch.equal(after[part][name], value), (part, name)
    assert t.session.events == events and not t.net.has_batchnorm
    t.apply(parse_event("1:lr=0.01").command)  # an allowed one still applies
    assert t.lr == 0.01


def test_a_session_checks_units_against_its_rows():
    with pytest.raises(UnitError, match="2 units for 3 layers"):
        Session(3, {}, units=[Unit(1, "a", "linear"), Unit(2, "b", "linear")])
    assert [u.name for u in Session(3).units] == ["linear 1", "linear 2", "output"]
    with pytest.raises(UnitError, match="expected a list"):
        units_from_json({"layer": 1}, 1)

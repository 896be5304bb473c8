import json

import pytest

from gradsim.config import ConfigError, RunConfig


def test_defaults_are_valid_and_sensible():
    cfg = RunConfig().validate()
    assert (cfg.dataset, cfg.depth, cfg.width) == ("spiral", 10, 64)


@pytest.mark.parametrize(
    "changes, field, allowed",
    [
        (dict(depth=0), "depth", "1 to 200"),
        (dict(depth=201), "depth", "1 to 200"),
        (dict(width=4096), "width", "1 to 2048"),
        (dict(lr=float("nan")), "lr", "> 0"),
        (dict(lr=-1.0), "lr", "> 0"),
        (dict(lr=float("inf")), "lr", "> 0"),
        (dict(batch_size=0), "batch_size", "1 to 960"),
        (dict(batch_size=5000), "batch_size", "1 to 960"),
        (dict(clip_threshold=0.0), "clip_threshold", "> 0"),
        (dict(activation="swish"), "activation", "relu"),
        (dict(init="kaiming"), "init", "he_normal"),
        (dict(dataset="mnist"), "dataset", "digits"),
        (dict(optimizer="rmsprop"), "optimizer", "adam"),
        (dict(clip_mode="hard"), "clip_mode", "norm"),
        (dict(depth=2.5), "depth", "whole number"),
        (dict(stats_every=0), "stats_every", "1 to"),
    ],
)
def test_bad_values_name_the_field_and_the_allowed_range(changes, field, allowed):
    with pytest.raises(ConfigError) as err:
        RunConfig(**changes).validate()
    msg = str(err.value)
    assert msg.startswith(field) and allowed in msg and "\n" not in msg
    assert err.value.field == field  # a form highlights it without parsing the message


def test_config_error_field_survives_where_prefixes_and_covers_every_check():
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict({"lr": -1.0}, where="preset x.json")
    assert str(err.value).startswith("preset x.json: lr") and err.value.field == "lr"
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict({"speed": 3})
    assert err.value.field == "speed"
    with pytest.raises(ConfigError) as err:
        RunConfig(depth=200, width=2048).validate()
    assert err.value.field == "depth"
    with pytest.raises(ConfigError) as err:
        RunConfig().with_changes(lr="fast")
    assert err.value.field == "lr"


def test_size_guard_refuses_before_allocating():
    with pytest.raises(ConfigError, match="param_budget_mb"):
        RunConfig(depth=200, width=2048).validate()
    RunConfig(depth=200, width=2048, param_budget_mb=20000).validate()  # allowed when the budget says so


def test_json_round_trip_and_unknown_fields():
    cfg = RunConfig(depth=7, activation="relu", clip_mode="norm", clip_threshold=0.5, batchnorm=True)
    assert RunConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ConfigError, match="unknown field 'dept'"):
        RunConfig.from_dict({"dept": 3})
    with pytest.raises(ConfigError, match="depth = '3' has the wrong type"):
        RunConfig.from_dict({"depth": "3"})
    with pytest.raises(ConfigError, match="line 1"):
        RunConfig.from_json("{nope")
    assert json.loads(cfg.to_json())["depth"] == 7

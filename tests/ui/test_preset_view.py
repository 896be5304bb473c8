"""A preset opens the plots on the metric that shows its story."""
from __future__ import annotations

import json

import pytest

from gradsim.config import ConfigError
from gradsim.teaching.presets import load_preset, preset_from_file, preset_names


def test_every_preset_names_the_metric_of_its_story():
    for name in preset_names():
        assert load_preset(name).view_metric == "act_grad_norm", name  # every shipped lesson is about dL/dz


def test_a_bad_view_is_one_clear_error(tmp_path):
    data = json.loads(json.dumps({"name": "x", "description": "", "config": {}, "view": {"metric": "loss"}, "schema_version": 1}))
    path = tmp_path / "x.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"view metric 'loss' is not known; allowed: grad_norm"):
        preset_from_file(path)


def test_loading_exploding_relu_shows_the_backprop_signal(window):
    window.plots.set_metric("grad_norm")
    window.builder.apply_preset("exploding-relu")
    assert window.plots.metric_name == "act_grad_norm"
    assert window.plots.heatmap.metric_name == window.plots.depth_profile.metric_name == "act_grad_norm"
    assert window.plots.heatmap.combo.currentData() == "act_grad_norm"  # the selector says what is shown

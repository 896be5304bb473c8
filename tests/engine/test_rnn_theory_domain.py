"""The vanilla RNN's theory-domain verdict: in domain at a random draw, out for the identity
and for exploding-rnn's blown-up W_hh, and recorded in steps.csv."""
import dataclasses
import math

import numpy as np
import pytest

from gradsim.config import RunConfig
from gradsim.metrics import LAYER_INDEX
from gradsim.teaching.presets import load_preset
from gradsim.theory_verdicts import session_verdicts, verdict_at
from gradsim.train.trainer import Trainer

PRED, SIGNAL = LAYER_INDEX["pred_gain"], LAYER_INDEX["act_grad_norm"]


@pytest.mark.parametrize("G", [0.8, 1.0, 1.5])
def test_a_random_draw_is_in_domain_and_the_prediction_within_10_percent(G):
    T = 50
    t = Trainer(RunConfig(model="rnn", dataset="adding", seq_len=T, depth=1, width=256, batch_size=64, steps=1,
                          recurrent_init=f"normal:{G}"))
    rec = t.step()
    v = verdict_at(t.session, 0)
    assert v is not None and v.in_domain and v.reason == "", v
    g = rec.layers[:T, SIGNAL].astype(np.float64)
    p = rec.layers[: T - 2, PRED].astype(np.float64)
    m = g[: T - 2] / g[1 : T - 1]
    assert v.gain_error == pytest.approx(math.exp(np.mean(np.log(m / p))), rel=1e-9)
    assert abs(m.mean() / p.mean() - 1) < 0.10 and abs(v.gain_error - 1) < 0.10
    flag, err = session_verdicts(t.session)
    assert flag[0] == 1.0 and err[0] == pytest.approx(v.gain_error)


def test_the_identity_init_is_out_of_domain():
    cfg = dataclasses.replace(load_preset("irnn").config, steps=1)
    t = Trainer(cfg)
    t.step()
    v = verdict_at(t.session, 0)
    assert v is not None and not v.in_domain and v.reason == "identity"
    assert "identity" in v.words()
    assert session_verdicts(t.session)[0][0] == 0.0


def test_exploding_rnn_after_the_blow_up_is_out_of_domain():
    cfg = dataclasses.replace(load_preset("exploding-rnn").config, stats_every=10, steps=40)
    t = Trainer(cfg)
    while t.step() is not None:
        pass
    s = t.session
    first = verdict_at(s, 0)
    assert first is not None and first.in_domain  # the draw itself is the theory's case
    last = max(i for i in range(len(s)) if np.isfinite(s.layers[i, 0, PRED]))
    v = verdict_at(s, last)
    assert v is not None and not v.in_domain and v.reason in ("scale", "dead", "gain"), v
    wn = s.layers[:, cfg.seq_len + 1, LAYER_INDEX["weight_norm"]]
    assert v.scale_change == pytest.approx(float(wn[last]) / float(wn[0]))
    assert "no theory line" in v.words()

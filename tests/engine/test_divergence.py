import numpy as np

from gradsim.config import RunConfig
from gradsim.session.io import export_session, load_session
from gradsim.train.trainer import Trainer


def test_exploding_run_stops_cleanly_and_exports(tmp_path):
    cfg = RunConfig(depth=20, width=64, activation="relu", init="normal", init_std=0.5, lr=0.01, steps=500)
    t = Trainer(cfg)
    t.run()  # must not raise
    assert t.diverged_at is not None and t.finished and t.step_index == t.diverged_at + 1
    assert t.step() is None
    s = t.session
    assert s.diverged_at == t.diverged_at
    assert [e.kind for e in s.events].count("diverged") == 1
    last = s.last()
    assert last.scalar("diverged") == 1.0 and not np.isfinite([last.scalar("loss"), last.scalar("grad_norm_total")]).all()
    assert np.isfinite(s.scalars[:-1, 0]).all()  # every row before it is finite
    out = export_session(s, tmp_path / "run")
    back = load_session(out)
    assert back.diverged_at == t.diverged_at and len(back) == len(s)
    text = (out / "layers.csv").read_text()
    assert "nan" in text or "inf" in text


def test_nan_input_diverges_at_step_zero():
    t = Trainer(RunConfig(depth=3, width=8, steps=5))
    t._x[0:1000] = float("nan")
    t.run()
    assert t.diverged_at == 0 and len(t.session) == 1

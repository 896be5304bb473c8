"""The engine sends readouts that are no column of the rows: the spectral radius of the
recurrent weights (live: a recurrent_init command moves it at once) and the share of clipped
steps, each checked against numpy on the trainer's own weights and rows."""
import numpy as np

from gradsim.commands import SetRecurrentInit
from gradsim.config import RunConfig
from gradsim.service import protocol as pr
from tests.engine.test_engine_process import ThreadEngine, snapshots, step_to, until


def _last_readouts(seen):
    found = [s.readouts for s in snapshots(seen) if s.readouts is not None]
    assert found, "no snapshot carried readouts"
    return found[-1]


def _radius(trainer) -> float:
    w = trainer.net.rnn.weight_hh_l0.detach().numpy().astype(np.float64)
    return float(np.abs(np.linalg.eigvals(w)).max())


def test_a_recurrent_run_reports_its_spectral_radius_and_clipped_share():
    cfg = RunConfig(model="rnn", dataset="adding", seq_len=12, width=16, depth=1, recurrent_init="normal:0.5",
                    n_samples=200, batch_size=16, steps=50, clip_mode="norm", clip_threshold=0.05)
    e = ThreadEngine()
    try:
        e.send(pr.ResetRun(cfg))
        seen: list = []
        step_to(e, 4, seen)
        r = _last_readouts(seen)
        t = e.loop._trainer
        assert r.step == 4
        assert r.spectral_radius is not None and abs(r.spectral_radius - _radius(t)) < 1e-9
        clipped = t.session.column("clipped")
        assert len(clipped) == 4 and r.clipped_fraction == float(np.mean(clipped))
        # a re-init between steps: the radius that comes back is the new W_hh's
        e.send(SetRecurrentInit("normal:1.5"))
        r2 = until(e, pr.Snapshot).readouts  # the snapshot forced by the command carries them
        assert r2 is not None and r2.spectral_radius > 1.0
        assert abs(r2.spectral_radius - _radius(t)) < 1e-9 and r2.step == 4
    finally:
        e.close()


def test_an_mlp_run_has_no_spectral_radius():
    e = ThreadEngine()
    try:
        e.send(pr.ResetRun(RunConfig(depth=2, width=8, n_samples=100, batch_size=10, steps=5)))
        seen: list = []
        step_to(e, 2, seen)
        r = _last_readouts(seen)
        assert r.spectral_radius is None and r.clipped_fraction == 0.0
    finally:
        e.close()

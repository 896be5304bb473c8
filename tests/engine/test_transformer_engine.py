"""The window's engine loop runs a transformer: a Post-LN run forked, Pre-LN on branch B only,
and an MLP command refused with a message instead of a crash (in a thread, no Qt)."""
from gradsim.commands import SetActivation, SetNormPosition
from gradsim.config import RunConfig
from gradsim.service import protocol as ep
from tests.engine.test_engine_process import ThreadEngine, snapshots, step_to, until


def test_a_post_ln_run_forks_and_branch_b_moves_its_norms():
    cfg = RunConfig(model="transformer", dataset="recall-last", seq_len=6, depth=2, width=32, heads=4, activation="gelu",
                    norm_position="post", n_samples=120, batch_size=8, steps=6, stats_every=2, optimizer="adam", lr=1e-2)
    e = ThreadEngine()
    try:
        e.send(ep.ResetRun(cfg))
        seen: list = []
        step_to(e, 2, seen)
        e.send(ep.ForkRun())
        until(e, ep.Forked, seen)
        e.send(ep.BranchCommand(1, SetNormPosition("pre")))
        e.send(ep.BranchCommand(0, SetActivation("relu")))
        failed = until(e, ep.CommandFailed, seen)
        assert "model 'transformer' has no live 'activation' command" in failed.message
        e.send(ep.StartRun())
        until(e, ep.Finished, seen)
        assert not [r for r in seen if isinstance(r, ep.CommandFailed)]
        a, b = e.loop._trainer, e.loop._fork
        assert (a.net.norm_position, b.net.norm_position) == ("post", "pre")
        assert a.session.steps_run == b.session.steps_run == cfg.steps
        assert [(ev.step, ev.kind, ev.value) for ev in b.session.events if ev.kind == "norm"] == [(2, "norm", "pre")]
        assert not [ev for ev in a.session.events if ev.kind in ("norm", "activation")]
        assert snapshots(seen)
    finally:
        e.close()

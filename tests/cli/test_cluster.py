"""`check` and `sweep` on a real Dask cluster (LocalCluster: worker processes, not threads or mocks)
give the same results as local processes; an unreachable scheduler is one line and exit 2.

One cluster for the module (starting one costs a few seconds): 2 worker
processes with 1 thread each, as a small lab cluster would run them.
"""
import csv
import json

import pytest

from gradsim.cli.main import main
from gradsim.teaching.exercises import parse_exercise, write_submission
from gradsim.train.trainer import Trainer

distributed = pytest.importorskip("distributed", reason="the cluster extra is installed by `make test`")

EXERCISE = '''
id = "cluster"
title = "Cluster check"
preset = "vanishing-sigmoid"
config = { depth = 3, width = 8, n_samples = 128, batch_size = 32, steps = 8, stats_every = 2, dataset = "moons" }
events = ["4:batchnorm=on"]
[[objectives]]
id = "ran"
kind = "no_divergence"
steps = 8
[[objectives]]
id = "q"
kind = "answer"
question = "Ratio of layer 1 to the last hidden layer at step 0?"
compute = "layer_ratio"
metric = "act_grad_norm"
layer_a = 1
layer_b = "last_hidden"
step = 0
rel_tol = 0.05
'''


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=50) as c:
        yield c.scheduler_address


@pytest.fixture(scope="module")
def submissions(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    (root / "ex.toml").write_text(EXERCISE)
    ex = parse_exercise(EXERCISE, "ex.toml")
    subs = []
    for k, answer in enumerate([None, 7.0, None]):
        t = Trainer(ex.config, ex.events)
        t.run()
        truth = ex.answers[0].quantity.value(t.session)
        sub = write_submission(root / f"s{k}", ex, t.session, {"q": truth if answer is None else answer}, student=f"student {k}")
        subs.append(sub)
    # one edited submission, so a refused grade travels back from the cluster too
    text = (subs[2] / "steps.csv").read_text().splitlines()
    cells = text[3].split(",")
    cells[1] = repr(float(cells[1]) * 1.02)  # step 2's loss, +2 %
    text[3] = ",".join(cells)
    (subs[2] / "steps.csv").write_text("\n".join(text) + "\n")
    return root / "ex.toml", subs


def _table(path):
    return [{k: v for k, v in row.items()} for row in csv.DictReader(path.open())]


def test_check_on_the_cluster_equals_local(cluster, submissions, tmp_path):
    """~15-25 s here, justified: it is the one test of both parallel grading paths end to end.

    Most of the time is worker processes (the local pool's and the cluster's)
    importing torch once each; the runs themselves are 8 steps of a tiny net.
    """
    ex, subs = submissions
    args = ["check", str(ex)] + [str(s) for s in subs]
    assert main(args + ["--csv", str(tmp_path / "local.csv"), "--jobs", "2"]) == 0
    assert main(args + ["--csv", str(tmp_path / "dask.csv"), "--scheduler", cluster, "--feedback", str(tmp_path / "fb-dask")]) == 0
    local, dask = _table(tmp_path / "local.csv"), _table(tmp_path / "dask.csv")
    assert local == dask
    assert [r["score"] for r in dask] == ["1.0000", "0.5000", "0.0000"]
    assert "step 2, loss" in dask[2]["problems"]
    # the pages were made on the workers and written here by the client
    assert sorted(p.name for p in (tmp_path / "fb-dask").iterdir()) == ["s0.html", "s1.html", "s2.html"]


def test_sweep_on_the_cluster_equals_local(cluster, tmp_path):
    args = ["sweep", "--dataset", "moons", "--depth", "2,3", "--width", "6", "--steps", "5", "--stats-every", "2"]
    assert main(args + ["--out", str(tmp_path / "local"), "--jobs", "1"]) == 0
    assert main(args + ["--out", str(tmp_path / "dask"), "--scheduler", cluster]) == 0
    assert _table(tmp_path / "local" / "summary.csv") == _table(tmp_path / "dask" / "summary.csv")
    runs = sorted(p.name for p in (tmp_path / "local").iterdir() if p.is_dir())
    assert len(runs) == 2 and runs == sorted(p.name for p in (tmp_path / "dask").iterdir() if p.is_dir())
    for run in runs:
        for name in ("layers.csv", "events.csv"):
            assert (tmp_path / "local" / run / name).read_bytes() == (tmp_path / "dask" / run / name).read_bytes()
        assert json.loads((tmp_path / "dask" / run / "session.json").read_text())["config"]["depth"] in (2, 3)


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:9", "tcp://no-such-host.invalid:8786", "not-an-address"])
def test_unreachable_scheduler_is_one_line_and_exit_2(submissions, tmp_path, capsys, address):
    ex, subs = submissions
    assert main(["check", str(ex), str(subs[0]), "--csv", str(tmp_path / "s.csv"), "--scheduler", address]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and address in err[0] and "scheduler" in err[0]
    assert not (tmp_path / "s.csv").exists()
    assert main(["sweep", "--steps", "2", "--out", str(tmp_path / "o"), "--scheduler", address]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1

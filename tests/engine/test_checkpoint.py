"""Checkpoints: save_checkpoint/load_checkpoint and ``gradsim run --checkpoint /
--resume``: a run stopped, saved and resumed gives the rows of one unbroken run."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gradsim.cli.main import main
from gradsim.commands import Scheduled, SetActivation, SetLR
from gradsim.config import RunConfig
from gradsim.metrics import STEP_INDEX
from gradsim.train.checkpoint import FORMAT, CheckpointError, load_checkpoint, save_checkpoint, trainer_from_checkpoint
from gradsim.train.trainer import Trainer

RUN = ["--dataset", "moons", "--depth", "3", "--width", "8", "--batch-size", "16", "--optimizer", "adam", "--seed", "3",
       "--event", "4:activation=relu", "--event", "14:batchnorm=on", "--event", "17:lr=0.02"]


def _config(**changes: Any) -> RunConfig:
    base: dict[str, Any] = dict(dataset="moons", n_samples=100, depth=2, width=6, batch_size=16, steps=30, stats_every=4,
                activation="tanh", optimizer="momentum", lr=0.01, seed=9)
    base.update(changes)
    return RunConfig(**base)


def _csv(path: Path, from_step: int) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["step"]) >= from_step]
    for r in rows:
        r.pop("elapsed_s", None)  # wall clock
    return rows


def test_saved_checkpoint_continues_bit_for_bit(tmp_path):
    schedule = [Scheduled(12, SetActivation("elu")), Scheduled(3, SetLR(0.05))]
    a = Trainer(_config(), schedule)
    a.run(9)
    path = save_checkpoint(a, tmp_path / "run.ckpt")
    assert [p.name for p in tmp_path.iterdir()] == ["run.ckpt"]  # no temp file left
    data = torch.load(path, weights_only=True)  # tensors and plain types only
    assert data["format"] == FORMAT and data["steps_run"] == 9 and data["config"] == a.config.to_dict()
    assert data["events"] == [e.to_dict() for e in a.session.events]
    b = trainer_from_checkpoint(load_checkpoint(path))
    assert b.session.events == a.session.events and b.session.steps_run == 9
    a.run()
    b.run()
    keep = a.session.steps >= 9
    sa, sb = a.session.scalars[keep].copy(), b.session.scalars.copy()
    sa[:, STEP_INDEX["elapsed_s"]] = sb[:, STEP_INDEX["elapsed_s"]] = 0.0
    np.testing.assert_array_equal(sa, sb)
    np.testing.assert_array_equal(a.session.layers[keep], b.session.layers)
    np.testing.assert_array_equal(a.session.steps[keep], b.session.steps)
    assert b.net.activations == ["elu", "elu"] and b.session.events == a.session.events


def test_save_refuses_an_existing_file_unless_overwrite(tmp_path):
    t = Trainer(_config())
    target = tmp_path / "x.ckpt"
    target.write_bytes(b"keep me")
    with pytest.raises(CheckpointError, match=r"x\.ckpt already exists"):
        save_checkpoint(t, target)
    assert target.read_bytes() == b"keep me"
    save_checkpoint(t, target, overwrite=True)
    assert load_checkpoint(target)["state"]["step_index"] == 0


def test_load_refuses_missing_corrupt_and_foreign_files(tmp_path):
    with pytest.raises(CheckpointError, match="nope.ckpt does not exist"):
        load_checkpoint(tmp_path / "nope.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="junk.ckpt is corrupt or not a gradsim checkpoint"):
        load_checkpoint(tmp_path / "junk.ckpt")
    good = save_checkpoint(Trainer(_config()), tmp_path / "good.ckpt")
    (tmp_path / "cut.ckpt").write_bytes(good.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="cut.ckpt is corrupt"):
        load_checkpoint(tmp_path / "cut.ckpt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a gradsim checkpoint.*expected 'gradsim-checkpoint/1'"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_cli_resume_gives_the_rows_of_an_unbroken_run(tmp_path, capsys):
    assert main(["run", *RUN, "--steps", "20", "--out", str(tmp_path / "full")]) == 0
    ckpt = tmp_path / "half.ckpt"
    assert main(["run", *RUN, "--steps", "10", "--out", str(tmp_path / "half"), "--checkpoint", str(ckpt)]) == 0
    assert main(["run", "--resume", str(ckpt), "--steps", "20", "--out", str(tmp_path / "rest")]) == 0
    for name in ("steps.csv", "layers.csv"):
        full = _csv(tmp_path / "full" / name, 10)
        rest = _csv(tmp_path / "rest" / name, 10)
        assert len(full) > 0 and rest == full
    assert (tmp_path / "rest" / "events.csv").read_text() == (tmp_path / "full" / "events.csv").read_text()


def test_cli_resume_refusals_are_one_line(tmp_path, capsys):
    out = str(tmp_path / "o")
    assert main(["run", "--resume", str(tmp_path / "missing.ckpt"), "--out", out]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"gradsim: error: checkpoint {tmp_path / 'missing.ckpt'} does not exist"]
    (tmp_path / "bad.ckpt").write_text("garbage")
    assert main(["run", "--resume", str(tmp_path / "bad.ckpt"), "--out", out]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.ckpt is corrupt or not a gradsim checkpoint" in err[0]
    ckpt = save_checkpoint(Trainer(_config(steps=30)), tmp_path / "c.ckpt")
    assert main(["run", "--resume", str(ckpt), "--depth", "4", "--out", out]) == 2
    assert "not --depth" in capsys.readouterr().err
    at9 = Trainer(_config(steps=30))
    at9.run(9)
    later = save_checkpoint(at9, tmp_path / "at9.ckpt")
    assert main(["run", "--resume", str(later), "--steps", "8", "--out", out]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["gradsim: error: --steps 8: the checkpoint is already at step 9; allowed 9 or more"]
    assert main(["run", *RUN, "--steps", "5", "--out", out, "--checkpoint", str(ckpt)]) == 2
    assert "c.ckpt: the file already exists" in capsys.readouterr().err
    assert not Path(out).exists()  # refused before running

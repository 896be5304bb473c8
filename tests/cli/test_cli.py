"""python -m gradsim run / sweep, as a user types them."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gradsim.session.io import STEPS_HEADER
from gradsim.cli.main import main
from gradsim.config import RunConfig

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--dataset", "moons", "--depth", "3", "--width", "8", "--batch-size", "32", "--steps", "15", "--stats-every", "5"]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "gradsim", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_run_with_preset_writes_the_four_files_and_a_summary(tmp_path):
    r = _cli("run", "--preset", "vanishing-sigmoid", "--steps", "30", "--out", str(tmp_path / "run1"))
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(tmp_path / "run1")) == ["events.csv", "layers.csv", "session.json", "steps.csv"]
    assert "vanishing toward the input" in r.stdout and "No divergence." in r.stdout
    assert "Traceback" not in r.stderr


def test_run_with_no_flags_uses_the_default_config(tmp_path):
    assert main(["run", "--steps", "3", "--out", str(tmp_path / "d")]) == 0
    cfg = json.loads((tmp_path / "d" / "session.json").read_text())["config"]
    assert cfg["dataset"] == "spiral" and cfg["depth"] == 10 and cfg["steps"] == 3


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--depth", "500"], "depth = 500 is out of range: allowed 1 to 200"),
        (["--lr", "nan"], "lr = nan"),
        (["--lr", "abc"], "'abc' is not a number"),
        (["--activation", "swish"], "activation = 'swish' is not known"),
        (["--clip", "norm:-1"], "clip=norm:-1"),
        (["--event", "x:lr=1"], "STEP:KEY=VALUE"),
        (["--event", "5:speed=1"], "unknown key 'speed'"),
        (["--preset", "nope"], "preset 'nope' is not known"),
        (["--config", "/nonexistent.json"], "no such file"),
        (["--batch-size", "100000"], "batch_size = 100000"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--depth", "3", "--event", "2:activation=relu@9"], "layer 9 has no activation; allowed 1 to 3"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(tmp_path, capsys, args, needle):
    code = main(["run", *args, "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert needle in err and len(err.splitlines()) == 1 and err.startswith("gradsim: error:")
    assert not (tmp_path / "x").exists()


def test_bad_config_file_contents(tmp_path, capsys):
    f = tmp_path / "c.json"
    f.write_text('{"depth": 3, "colour": "red"}')
    assert main(["run", "--config", str(f), "--out", str(tmp_path / "x")]) == 2
    assert "unknown field 'colour'" in capsys.readouterr().err
    f.write_text('{"depth": 3,')
    assert main(["run", "--config", str(f), "--out", str(tmp_path / "x")]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_unwritable_output_reports_and_exits_2(tmp_path, capsys):
    blocker = tmp_path / "f"
    blocker.write_text("")
    assert main(["run", *TINY, "--out", str(blocker / "sub")]) == 2
    assert "cannot export session" in capsys.readouterr().err


def test_flags_override_preset_and_events_replay_from_config(tmp_path):
    first = tmp_path / "a"
    assert main(["run", "--preset", "batchnorm-rescue", *TINY, "--steps", "302", "--event", "9:lr=0.01", "--out", str(first)]) == 0
    events = (first / "events.csv").read_text()
    assert "300,batchnorm,on" in events and "9,lr,0.01" in events
    cfg = json.loads((first / "session.json").read_text())["config"]
    assert cfg["depth"] == 3 and cfg["activation"] == "sigmoid"
    second = tmp_path / "b"
    assert main(["run", "--config", str(first / "session.json"), "--out", str(second)]) == 0
    elapsed = STEPS_HEADER.index("elapsed_s")  # wall clock
    strip = lambda p: [",".join(c for i, c in enumerate(l.split(",")) if i != elapsed) for l in p.read_text().splitlines()]
    assert strip(first / "steps.csv") == strip(second / "steps.csv")
    assert (first / "layers.csv").read_text() == (second / "layers.csv").read_text()


def test_sweep_writes_summary_and_each_session(tmp_path):
    out = tmp_path / "sw"
    code = main(["sweep", *TINY[:4], "--batch-size", "32", "--steps", "6", "--depth", "2,4", "--activation", "sigmoid,relu", "--jobs", "2", "--out", str(out)])
    assert code == 0
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert len(rows) == 4
    assert {(r["depth"], r["activation"]) for r in rows} == {("2", "sigmoid"), ("2", "relu"), ("4", "sigmoid"), ("4", "relu")}
    for r in rows:
        folder = out / r["folder"]
        assert (folder / "layers.csv").is_file()
        first = next(csv.DictReader((folder / "layers.csv").open()))
        assert float(r["grad_norm_first_step0"]) == pytest.approx(float(first["grad_norm"]))
        assert r["diverged_at"] == ""


def test_sweep_rejects_a_bad_value_before_running_anything(tmp_path, capsys):
    assert main(["sweep", "--depth", "3,999", "--out", str(tmp_path / "s")]) == 2
    assert "depth = 999" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_deeply_nested_json_config_is_one_line_and_exit_2(tmp_path):
    """100,000 nested brackets gave a RecursionError traceback and exit 1."""
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    r = _cli("run", "--config", str(deep), "--out", str(tmp_path / "o"))
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "deep.json" in lines[0] and "nested too deeply" in lines[0], r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "o").exists()


def test_the_same_reader_refuses_deep_json_in_sessions_presets_and_submissions(tmp_path):
    from gradsim.config import ConfigError, RunConfig
    from gradsim.teaching.presets import preset_from_file
    from gradsim.session.io import SessionFormatError, load_session

    text = "{\"a\":" * 50_000 + "1" + "}" * 50_000
    with pytest.raises(ConfigError, match="nested too deeply"):
        RunConfig.from_json(text)
    (tmp_path / "p.json").write_text(text)
    with pytest.raises(ConfigError, match="nested too deeply"):
        preset_from_file(tmp_path / "p.json")
    sess = tmp_path / "s"
    sess.mkdir()
    (sess / "session.json").write_text(text)
    with pytest.raises(SessionFormatError, match="nested too deeply"):
        load_session(sess)


def test_summary_reads_step_0_without_copying_the_store(tmp_path, monkeypatch):
    """cli used rows_after(-1) to read row 0: a copy of every recorded row (up to 256 MB)."""
    from gradsim.cli import run as cli
    from gradsim.config import RunConfig
    from gradsim.session.store import Session
    from gradsim.train.trainer import Trainer

    t = Trainer(RunConfig(dataset="moons", depth=3, width=16, batch_size=32, steps=20))
    t.run()

    def refuse(*a, **k):
        raise AssertionError("rows_after copies the whole store")

    monkeypatch.setattr(Session, "rows_after", refuse)
    text = cli.summary(t)
    g0 = t.session.layer_metric("act_grad_norm")[0]
    assert f"layer 1 / last = {g0[0] / g0[-1]:.3g}" in text
    first = t.session.first()
    assert first.step == 0 and first.layers.shape == (4, len(t.session.layers[0][0]))
    assert np.array_equal(first.layers, t.session.layers[0], equal_nan=True)
    first.layers[:] = -1  # a copy of one row, not a view into the store
    assert t.session.layers[0, 0, 0] != -1
    assert Session(2).first() is None
    from gradsim.service.sweep import sweep_task

    row, files = sweep_task((0, RunConfig(dataset="moons", depth=3, width=16, batch_size=32, steps=5).to_dict(), [], "sw"))
    assert sorted(files) == ["events.csv", "layers.csv", "session.json", "steps.csv"]
    assert float(row["act_grad_norm_first_step0"]) > 0


def test_residual_and_layernorm_flags_and_events(tmp_path, capsys):
    out = tmp_path / "res"
    assert main(["run", *TINY, "--residual", "--residual-alpha", "0.4", "--layernorm", "--event", "5:residual=off", "--event", "7:layernorm=off", "--out", str(out)]) == 0
    data = json.loads((out / "session.json").read_text())
    assert data["config"]["residual"] is True and data["config"]["residual_alpha"] == 0.4 and data["config"]["layernorm"] is True
    kinds = [(e["step"], e["kind"], e["value"]) for e in data["events"]]
    assert (5, "residual", "off") in kinds and (7, "layernorm", "off") in kinds
    assert main(["run", *TINY, "--event", "3:residual=sideways", "--out", str(tmp_path / "bad")]) == 2
    assert "residual=sideways" in capsys.readouterr().err


def test_replicate_list_and_bad_input(capsys):
    assert main(["replicate", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ("he2015", "glorot2010", "saxe2014", "pennington2017", "schoenholz2017", "ioffe2015", "pascanu2013", "bengio1994", "hochreiter1997", "le2015"):
        assert name in out
    assert main(["replicate", "nobody1999", "--out", "x"]) == 2
    assert "replication 'nobody1999' is not known; allowed: he2015" in capsys.readouterr().err
    assert main(["replicate", "he2015"]) == 2
    assert "--out" in capsys.readouterr().err


def test_replicate_exit_status_follows_the_verdict(tmp_path, monkeypatch, capsys):
    """Exit 0 when reproduced, 1 when not: a tiny replication whose criterion is set by the test."""
    from gradsim import replications
    from gradsim.replications.framework import Outcome, Replication, Run

    class Tiny(Replication):
        name, title, citation, claim, setup = "tiny", "Tiny", "nobody", "the loss is finite", "one small run"
        want = True

        def runs(self, mode, seed=0):
            return [Run(f"only-seed{seed}", RunConfig(dataset="moons", depth=2, width=4, steps=3, seed=seed))]

        def analyse(self, results, mode):
            (r,) = results.values()
            finite = bool(np.isfinite(r.loss()).all())
            return Outcome(finite == self.want, f"finite: {finite}", "loss finite", [{"run": r.run.key, "finite": int(finite)}])

        def draw(self, fig, results, outcome):
            fig.add_subplot(1, 1, 1).plot(next(iter(results.values())).loss())

    monkeypatch.setitem(replications.REPLICATIONS, "tiny", Tiny())
    assert main(["replicate", "tiny", "--quick", "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "Verdict: REPRODUCED." in out and "reproduced: 4/4 seeds" in out
    Tiny.want = False
    assert main(["replicate", "tiny", "--seed", "3", "--seeds", "2", "--out", str(tmp_path / "b")]) == 1
    out = capsys.readouterr().out
    assert "Verdict: NOT REPRODUCED." in out and "reproduced: 0/2 seeds" in out and "seeds 3..4" in out
    assert sorted(p.name for p in (tmp_path / "b" / "runs").iterdir()) == ["only-seed3", "only-seed4"]
    assert (tmp_path / "b" / "figure.png").is_file()
    seeds_csv = (tmp_path / "b" / "seeds.csv").read_text().splitlines()
    assert seeds_csv == ["replication_seed,reproduced", "3,0", "4,0"]


@pytest.mark.parametrize("flags, bad", [(["--seeds", "0"], "--seeds 0"), (["--seed", "-1"], "--seed -1"), (["--seeds", "x"], "'x'"),
                                        (["--seed", "1.5"], "'1.5'")])
def test_replicate_bad_seed_flags_one_line_exit_2_nothing_written(tmp_path, capsys, flags, bad):
    assert main(["replicate", "he2015", *flags, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and bad in err[0], err
    assert not (tmp_path / "o").exists()


def test_zip_output_is_named_as_a_zip_in_the_last_line(tmp_path, capsys):
    assert main(["run", *TINY, "--steps", "2", "--out", str(tmp_path / "r.zip")]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith(f"Session written to {tmp_path / 'r.zip'} (a .zip of session.json")
    assert main(["run", *TINY, "--steps", "2", "--out", str(tmp_path / "r")]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith(f"Session written to {tmp_path / 'r'}/ (session.json")


def test_check_refuses_a_csv_path_that_is_a_folder_before_grading(tmp_path, capsys):
    # It used to replay every submission first, then fail to write: all work lost.
    ex = ROOT / "resources" / "exercises" / "01-vanishing-sigmoid.toml"
    assert main(["check", str(ex), str(tmp_path / "missing"), "--csv", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is a folder" in err and "Grading" not in err


def test_events_after_the_last_step_are_reported_not_dropped_silently(tmp_path, capsys):
    assert main(["run", "--preset", "batchnorm-rescue", *TINY, "--steps", "3", "--event", "2:lr=0.01", "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert "not applied, the run ended after 3 steps: 300:batchnorm=on" in err and "2:lr" not in err


def test_sweep_names_the_bad_value_of_a_list_flag(tmp_path, capsys):
    assert main(["sweep", "--depth", "2,x", "--steps", "2", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "'x' in '2,x' is not a valid int" in err and "lambda" not in err


def test_check_says_when_the_csv_folder_is_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("")
    ex = ROOT / "resources" / "exercises" / "01-vanishing-sigmoid.toml"
    assert main(["check", str(ex), str(tmp_path / "missing"), "--csv", str(tmp_path / "f" / "s.csv")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_init_flag_takes_the_same_name_number_spelling_as_events(tmp_path, capsys):
    """`--init normal:0.5` was refused as an unknown scheme although events,
    presets and the window all spell a scaled init that way."""
    assert main(["run", *TINY, "--init", "normal:0.5", "--out", str(tmp_path / "n")]) == 0
    cfg = json.loads((tmp_path / "n" / "session.json").read_text())["config"]
    assert cfg["init"] == "normal" and cfg["init_std"] == 0.5
    assert main(["run", *TINY, "--init", "uniform:0.2", "--out", str(tmp_path / "u")]) == 0
    cfg = json.loads((tmp_path / "u" / "session.json").read_text())["config"]
    assert cfg["init"] == "uniform" and cfg["init_scale"] == 0.2
    capsys.readouterr()
    assert main(["run", *TINY, "--init", "he_normal:2", "--out", str(tmp_path / "h")]) == 2
    err = capsys.readouterr().err
    assert "he_normal:2" in err and "only normal:STD and uniform:SCALE take a number" in err
    assert not (tmp_path / "h").exists()


def test_summary_and_sweep_report_the_final_step_not_the_last_thinned_row():
    """A store that thinned keeps every 2^k-th step: its last row may be steps before the end."""
    from gradsim.cli import run as cli
    from gradsim.service.sweep import sweep_task
    from gradsim.train.trainer import Trainer

    cfg = RunConfig(dataset="moons", depth=3, width=16, batch_size=32, steps=47, max_memory_mb=0.002)
    t = Trainer(cfg)
    seen = []
    t.run(callback=seen.append)
    final, row_last = seen[-1], t.session.last()
    assert final.step == 46 and row_last.step < 46 and row_last.scalar("loss") != final.scalar("loss")
    text = cli.summary(t)
    assert f"Final loss {final.scalar('loss'):.3g}, batch accuracy {final.scalar('accuracy'):.3g}" in text
    gw = final.layer_metric("grad_norm")
    assert f"||dL/dW|| layer 1: {gw[0]:.3g}, layer 4: {gw[-1]:.3g}" in text

    row, _ = sweep_task((0, cfg.to_dict(), [], "sw"))
    assert row["final_loss"] == repr(final.scalar("loss"))
    assert row["final_accuracy"] == repr(final.scalar("accuracy"))
    assert row["grad_norm_first_end"] == "%.9g" % gw[0]

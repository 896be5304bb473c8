"""The transformer's flags as a user types them: bad values are one line and exit 2 from the
real process, nothing is written, and --model transformer alone picks a task it can train on."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "gradsim", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("flags, text", [
    (["--width", "64", "--heads", "3"], "heads = 3: width = 64 must be divisible by the number of heads"),
    (["--norm-position", "mid"], "norm_position = 'mid' is not known; allowed: pre, post"),
    (["--warmup-steps", "-1"], "warmup_steps = -1 is out of range: allowed 0 to"),
])
def test_bad_transformer_values_are_one_line_and_exit_2(tmp_path, flags, text):
    r = _cli("run", "--model", "transformer", *flags, "--steps", "2", "--out", str(tmp_path / "x"))
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gradsim: error:") and text in lines[0]
    assert not (tmp_path / "x").exists()


def test_model_transformer_alone_trains_on_a_sequence_task(tmp_path):
    r = _cli("run", "--model", "transformer", "--width", "16", "--seq-len", "4", "--steps", "2", "--out", str(tmp_path / "t"))
    assert r.returncode == 0, r.stderr
    meta = json.loads((tmp_path / "t" / "session.json").read_text())
    assert meta["model"] == "transformer" and meta["config"]["dataset"] == "recall-last" and meta["config"]["depth"] == 4
    assert [u["name"] for u in meta["units"]][:5] == ["stream 1", "stream 2", "stream 3", "stream 4", "stream 5"]

"""Exported files and folders get the permissions the user's umask gives.

mkstemp/mkdtemp create owner-only temporaries (0600/0700); before the fix every
export stayed owner-only, so an instructor could not collect submissions from a
shared lab folder.
"""
import os
import stat
import sys

import numpy as np
import pytest

from gradsim.metrics import STEP_METRICS
from gradsim.session import io as session_io
from gradsim.session.store import Session, StepRecord

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")


@pytest.fixture(params=[0o022, 0o077])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


def _session():
    s = Session(2, {"depth": 1})
    s.append(StepRecord(0, np.zeros(len(STEP_METRICS)), np.zeros((2, 11), np.float32), True))
    return s


def test_export_follows_the_umask(tmp_path, umask):
    folder = session_io.export_session(_session(), tmp_path / "run")
    assert _mode(folder) == 0o777 & ~umask
    assert {_mode(f) for f in folder.iterdir()} == {0o666 & ~umask}
    assert _mode(session_io.export_session(_session(), tmp_path / "run.zip")) == 0o666 & ~umask
    session_io.write_atomic(tmp_path / "scores.csv", "a\n")
    assert _mode(tmp_path / "scores.csv") == 0o666 & ~umask
    session_io.write_folder(tmp_path / "sweep-run", {"x.csv": b"1\n"})
    assert _mode(tmp_path / "sweep-run") == 0o777 & ~umask
    assert _mode(tmp_path / "sweep-run" / "x.csv") == 0o666 & ~umask

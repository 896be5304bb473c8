"""The window hands in a submission to a typed new folder or to a name ending in .zip."""
from __future__ import annotations

import json
import zipfile

import pytest
from PySide6.QtWidgets import QFileDialog

from ui.run_controller import RunState
from ui.submission_target import submission_path


def test_the_zip_filter_adds_the_suffix_and_a_folder_name_stays_as_typed():
    assert submission_path("/x/ada", "Zip archive (*.zip)") == "/x/ada.zip"
    assert submission_path("/x/ada.ZIP", "Zip archive (*.zip)") == "/x/ada.ZIP"
    assert submission_path("/x/new/ada", "Submission folder (*)") == "/x/new/ada"
    assert submission_path("", "Zip archive (*.zip)") == ""


@pytest.mark.parametrize("name", ["class/week-3/ada", "ada.zip", "ada-zip-filter"])
def test_the_window_writes_a_submission_where_the_student_typed(window, qtbot, monkeypatch, tmp_path, name):
    window.builder.set_config(window.builder.config().with_changes(steps=5))
    assert window.start_run()
    qtbot.waitUntil(lambda: window.state is RunState.FINISHED, timeout=60000)
    teaching = window.teaching
    ex = teaching.exercise.exercises()[0]
    teaching.open_exercise(ex.id)
    teaching.exercise.set_student("Ada")
    typed = tmp_path / name
    chosen = "Zip archive (*.zip)" if name.endswith("filter") else "Submission folder (*)"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(typed), chosen)))
    assert teaching.submit_current(lambda ok: None)
    want = str(typed) + (".zip" if name.endswith("filter") else "")
    qtbot.waitUntil(lambda: teaching.last_submission == want, timeout=20000)
    if want.endswith(".zip"):
        with zipfile.ZipFile(want) as zf:
            doc = json.loads(zf.read("submission.json"))
            assert "steps.csv" in zf.namelist()
    else:  # a new folder (and its new parents) was created
        doc = json.loads((typed / "submission.json").read_text())
    assert doc["exercise"] == ex.id and doc["student"] == "Ada"
    assert window.dialogs == []

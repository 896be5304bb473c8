"""Where a submission goes: a new (or empty) folder, or a file name ending in .zip.

Why a save dialog and not a folder picker: Qt's folder picker accepts only a
folder that exists, so a student could not type the new folder its title
invited, and a .zip (which the grader reads) could not be chosen at all.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

TITLE = "Export submission: type a new folder name, or a name ending in .zip"
FILTERS = "Submission folder (*);;Zip archive (*.zip)"


def submission_path(path: str, chosen_filter: str) -> str:
    """The path the dialog's answer means: ``.zip`` added when the zip filter was chosen."""
    if path and "zip" in (chosen_filter or "").lower() and not path.lower().endswith(".zip"):
        path += ".zip"
    return path


def ask_submission_target(parent: QWidget, start_dir: str, exercise_id: str) -> str:
    """Ask the student where to write; "" when cancelled (or when replacing a zip is declined)."""
    path, chosen = QFileDialog.getSaveFileName(
        parent, TITLE, str(Path(start_dir) / f"submission-{exercise_id}"), FILTERS,
        options=QFileDialog.Option.DontConfirmOverwrite,  # a folder is written into, not replaced
    )
    path = submission_path(path, chosen)
    if path.lower().endswith(".zip") and Path(path).is_file():
        answer = QMessageBox.question(parent, "Replace the submission?", f"{path} exists. Replace it with this submission?",
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        if answer != QMessageBox.StandardButton.Yes:
            return ""
    return path

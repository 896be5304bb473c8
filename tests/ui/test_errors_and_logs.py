"""Errors are logged, never swallowed: closing, the error dialog's Copy details, the log folder, the log file."""
from __future__ import annotations

import logging
import subprocess

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication


def test_close_logs_a_settings_failure_and_still_stops_the_worker(window, qtbot, monkeypatch, caplog):
    """closeEvent used to swallow any exception with ``pass``; now it is logged with its traceback."""
    from ui import settings as st

    def broken(*_args, **_kwargs):
        raise RuntimeError("settings file is read-only")

    monkeypatch.setattr(st, "save_window", broken)
    window.run.warm_up()
    qtbot.waitUntil(window.worker.isRunning, timeout=10000)
    with caplog.at_level(logging.ERROR, logger="ui.main_window"):
        assert window.close()
    assert not window.worker.isRunning()
    records = [r for r in caplog.records if r.name == "ui.main_window"]
    assert records and "settings could not be saved" in records[0].getMessage()
    assert records[0].exc_info[0] is RuntimeError


def test_error_dialog_copies_its_details(window, qtbot):
    box = window.show_error("Export failed", "cannot export session to '/x'", "Traceback (most recent call last): ...")
    qtbot.mouseClick(box.copy_button, Qt.MouseButton.LeftButton)
    text = QGuiApplication.clipboard().text()
    assert text.startswith("Export failed\n\ncannot export session to '/x'")
    assert "Traceback (most recent call last)" in text and "GradSim " in text
    assert box.copy_button.text() == "Copied"


def test_help_menu_opens_the_log_folder(window, monkeypatch, tmp_path):
    from PySide6.QtGui import QDesktopServices

    opened = []
    monkeypatch.setenv("GRADSIM_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(lambda url: opened.append(url.toLocalFile()) or True))
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    action = next(a for a in help_menu.actions() if a.text() == "Open &log folder")
    action.trigger()
    assert opened == [str(tmp_path / "logs")] and (tmp_path / "logs").is_dir()


def test_the_app_writes_a_log_file_in_its_log_folder(subprocess_env, tmp_path):
    env, root, python = subprocess_env
    logs = tmp_path / "logs"
    env["GRADSIM_LOG_DIR"] = str(logs)
    code = (
        "import logging, sys\n"
        "from ui.app import _make_app\n"
        "app = _make_app()\n"
        "try:\n"
        "    raise ValueError('a broken thing')\n"
        "except ValueError:\n"
        "    logging.getLogger('ui.test').exception('while testing')\n"
    )
    subprocess.run([python, "-c", code], cwd=root, env=env, check=True, timeout=120)
    text = (logs / "gradsim.log").read_text()
    assert "ERROR ui.test" in text and "while testing" in text and "ValueError: a broken thing" in text

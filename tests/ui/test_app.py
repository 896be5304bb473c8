"""Command-line flags of ``main.py``: headless screenshot, self-test, clear errors."""
from __future__ import annotations

import json
import subprocess

import pytest

from ui.app import main


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("gradsim ")


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--steps", "zero"], "'zero' is not a whole number"),
        (["--steps", "0"], "must be at least 1"),
        (["--preset", "no-such-preset"], "preset 'no-such-preset' is not known; allowed:"),
        (["--screenshot", "out.jpg"], "must end in .png"),
        (["--screenshot", "/no/such/folder/x.png"], "does not exist"),
        (["--self-test", "--screenshot", "x.png"], "not both"),
    ],
)
def test_bad_flags_exit_2_with_one_line(argv, words, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gradsim: error: ")
    assert words in err


def test_bad_config_file_exits_2(tmp_path, capsys):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"depth": -3}))
    assert main(["--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "depth" in err and err.count("\n") == 1


def test_self_test_subprocess_exits_0(subprocess_env):
    env, root, python = subprocess_env
    proc = subprocess.run([python, "main.py", "--self-test"], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "self-test passed" in proc.stdout
    assert "FAIL" not in proc.stdout
    assert "QThread: Destroyed" not in proc.stderr


def test_screenshot_subprocess_writes_png(subprocess_env, tmp_path):
    env, root, python = subprocess_env
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps({"dataset": "moons", "n_samples": 200, "depth": 5, "width": 16, "batch_size": 32, "steps": 500}))
    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        [python, "main.py", "--config", str(cfg), "--steps", "30", "--screenshot", str(shot)],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    from PySide6.QtGui import QImage

    img = QImage(str(shot))
    assert img.width() >= 1000 and img.height() >= 600
    assert "step 30" in proc.stdout
    assert "QThread: Destroyed" not in proc.stderr


def test_window_modules_do_not_import_torch(subprocess_env):
    """torch (~2.4 s) is imported by the worker thread, never on the way to the first paint."""
    env, root, python = subprocess_env
    code = (
        "import sys\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "import ui.app, ui.main_window\n"
        "w = ui.main_window.MainWindow(persist=False)\n"
        "assert 'torch' not in sys.modules, 'torch imported while building the window'\n"
        "w.close()\n"
        "print('ok')\n"
    )
    proc = subprocess.run([python, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stdout + proc.stderr


def test_first_paint_before_torch_and_clean_exit(subprocess_env):
    """``python main.py`` paints its window before torch is imported, and exits with status 0."""
    env, root, python = subprocess_env
    env = dict(env, GRADSIM_REPORT_FIRST_PAINT="1")  # quit right after the first paint
    proc = subprocess.run([python, "main.py"], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # no crash at interpreter exit either
    assert "first-paint" in proc.stdout and "torch=False" in proc.stdout

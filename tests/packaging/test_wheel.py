"""The wheel a user installs works from any folder: presets, exercises and icons included.

What a new user does: build the wheel (``pip wheel .``), install it into a fresh
venv, and run GradSim from a folder that is not the checkout. Done here without
network: the wheel is built with --no-build-isolation (setuptools comes with the
test extra), and the fresh venv reaches the dependencies (torch, Qt, ...) through
a ``.pth`` line naming this venv's site-packages, instead of downloading them.
A ``.pth`` line only adds a folder to sys.path; the ``.pth`` files inside it (this
checkout's editable install) are not run, so the temporary venv can only import
GradSim from the wheel it installed.

Why one test of ~30 s (the suite's limit for a test is 20 s unless justified):
building and installing a wheel and starting the real entry points (the GUI's
--self-test trains a small run) is what the test is for; it is done once and every
check shares it. Runs in CI with the rest of the suite (not marked ``packaging``).
"""
from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: Folder on disk -> its installed package name (pyproject.toml's package-dir).
INSTALLED_AS = {"gradsim": "gradsim", "ui": "gradsim_ui", "resources": "gradsim_resources"}


def _packages_on_disk() -> set[str]:
    out = set()
    for folder, name in INSTALLED_AS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder).parts
            out.add(".".join((name, *rel)))
    return out


def test_pyproject_lists_every_package_on_disk():
    """An explicit package list (needed to rename ui/) must not forget a new subpackage."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    missing = sorted(_packages_on_disk() - listed)
    assert not missing, f"add {missing} to [tool.setuptools] packages in pyproject.toml, or the wheel lacks them"
    assert config["package-dir"] == {"gradsim_ui": "ui", "gradsim_resources": "resources"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Build the wheel from a copy of the sources (an in-tree build would leave build/ in the checkout)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("gradsim", "ui", "resources"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(out), str(src)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    from gradsim import __version__

    (whl,) = out.glob("gradsim-*.whl")
    assert whl.name == f"gradsim-{__version__}-py3-none-any.whl"  # the one version string, gradsim/__init__.py
    return whl


def test_wheel_holds_the_data_files_and_no_top_level_ui(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert tops == {"gradsim", "gradsim_ui", "gradsim_resources"}
    for preset in (REPO / "resources" / "presets").glob("*.json"):
        assert f"gradsim_resources/presets/{preset.name}" in names
    for ex in (REPO / "resources" / "exercises").glob("*.toml"):
        assert f"gradsim_resources/exercises/{ex.name}" in names
    for ex in (REPO / "resources" / "exercises" / "watched").glob("*.toml"):
        assert f"gradsim_resources/exercises/watched/{ex.name}" in names
    assert "gradsim_resources/icons/gradsim.svg" in names
    assert "gradsim_ui/plots/heatmap.py" in names


def test_installed_wheel_runs_a_preset_and_the_gui_from_another_folder(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)  # this venv's pip installs into it (pip --python)
    py = env_dir / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # Dependencies from this venv (no download); GradSim itself only from the wheel.
    (Path(purelib) / "deps-from-test-venv.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q", str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GRADSIM_RESOURCES")}
    env.update(QT_QPA_PLATFORM="offscreen", OMP_NUM_THREADS="1", HOME=str(tmp_path / "home"),
               XDG_CONFIG_HOME=str(tmp_path / "xdg"), GRADSIM_LOG_DIR=str(tmp_path / "logs"))

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), cwd=elsewhere, env=env, capture_output=True, text=True, timeout=timeout)

    where = run(str(py), "-c", (
        "import gradsim, gradsim_ui, gradsim_resources\n"
        "from gradsim.resources import resource_path\n"
        "from gradsim.teaching.exercises import exercise_files\n"
        "print(gradsim.__file__); print(gradsim_ui.__file__); print(resource_path('presets'))\n"
        "print(len(exercise_files()), resource_path('icons', 'gradsim.svg').is_file())\n"
        "import importlib.util; print(importlib.util.find_spec('ui'))\n"
    ))
    assert where.returncode == 0, where.stderr
    lines = where.stdout.splitlines()
    assert all(str(env_dir) in line for line in lines[:3]), lines  # the wheel's copy, not the checkout
    assert lines[3] == f"{len(list((REPO / 'resources' / 'exercises').glob('*.toml')))} True"
    assert lines[4] == "None"  # no top-level ``ui`` installed

    out = tmp_path / "run"
    cli = run(str(env_dir / "bin" / "gradsim-cli"), "run", "--preset", "vanishing-sigmoid", "--steps", "3", "--out", str(out))
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert (out / "session.json").is_file() and "vanishing-sigmoid" in (out / "events.csv").read_text()

    version = run(str(env_dir / "bin" / "gradsim"), "--version")
    from gradsim import __version__

    assert version.returncode == 0 and version.stdout.strip() == f"gradsim {__version__}", version.stdout + version.stderr
    selftest = run(str(env_dir / "bin" / "gradsim"), "--self-test", timeout=600)
    assert selftest.returncode == 0 and "self-test passed" in selftest.stdout, selftest.stdout + selftest.stderr

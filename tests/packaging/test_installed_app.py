"""Smoke test of the real Linux artefact: the built ``.deb``, installed into a temporary root.

Selected with ``-m packaging`` (deselected by default in pyproject.toml) and run by
``packaging/build_linux.sh`` after it builds the package:

    GRADSIM_DEB=packaging/dist/gradsim_0.2.0_amd64.deb pytest -m packaging tests/packaging

Without GRADSIM_DEB the newest ``packaging/dist/gradsim_*.deb`` is used; with none
built, the tests are skipped with a message saying how to build one.

``dpkg-deb -x`` unpacks the package's files (not its maintainer scripts) into a
temporary root; the launcher ``ROOT/usr/bin/gradsim`` is a relative symlink to
``ROOT/opt/gradsim/gradsim``, so it runs the unpacked bundle, not an installed one.
The app runs with a scrubbed environment (no PYTHONPATH, no GRADSIM_RESOURCES, HOME
in the temporary folder, cwd outside the checkout), so it can only succeed with what
the package itself carries.

``GRADSIM_TEST_DPKG_INSTALL=1`` (as root, on a throw-away machine) also installs the
package for real with ``dpkg -i``, runs ``gradsim --version`` from PATH, purges it and
checks that nothing is left behind.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.packaging

REPO = Path(__file__).resolve().parents[2]


def _read_version() -> str:
    """The version the packaging reads (packaging/version.py), without putting packaging/ on sys.path."""
    spec = importlib.util.spec_from_file_location("_gradsim_packaging_version", REPO / "packaging" / "version.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.read_version(REPO)


VERSION = _read_version()
SELF_TEST_TIMEOUT_S = 600


def _find_deb() -> Path:
    env = os.environ.get("GRADSIM_DEB")
    if env:
        path = Path(env)
        if not path.is_file():
            pytest.fail(f"GRADSIM_DEB={env} does not exist")
        return path.resolve()
    built = sorted((REPO / "packaging" / "dist").glob("gradsim_*.deb"), key=lambda p: p.stat().st_mtime)
    if not built:
        pytest.skip("no .deb built: run packaging/build_linux.sh (it runs these tests too)")
    return built[-1]


@pytest.fixture(scope="module")
def deb() -> Path:
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed")
    return _find_deb()


@pytest.fixture(scope="module")
def root(deb: Path, tmp_path_factory) -> Path:
    """The package's files unpacked into a temporary root, as ``dpkg -x`` does."""
    root = tmp_path_factory.mktemp("deb-root")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root


@pytest.fixture(scope="module")
def launcher(root: Path) -> Path:
    return root / "usr" / "bin" / "gradsim"


@pytest.fixture
def app_env(tmp_path) -> dict[str, str]:
    """A clean environment: nothing from the checkout or a venv can help the app."""
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_RUNTIME_DIR": str(home / "runtime"),
        "TMPDIR": str(tmp_path),
        "LANG": "C.UTF-8",
        "QT_QPA_PLATFORM": "offscreen",
        "OMP_NUM_THREADS": "1",
    }
    (home / "runtime").mkdir(mode=0o700)
    return env


def _run(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def _explain(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"


# --------------------------------------------------------------------------------------
# The package's metadata and layout


def test_control_fields(deb: Path) -> None:
    fields = subprocess.run(["dpkg-deb", "-f", str(deb), "Package", "Version", "Architecture"],
                            capture_output=True, text=True, check=True).stdout
    assert "Package: gradsim" in fields
    assert f"Version: {VERSION}" in fields
    assert "Architecture: amd64" in fields


def test_depends_names_the_system_libraries(deb: Path) -> None:
    """What the bundle links but does not carry is a dependency (packaging/linux/deb_depends.py)."""
    depends = subprocess.run(["dpkg-deb", "-f", str(deb), "Depends"], capture_output=True, text=True,
                             check=True).stdout
    for package in ("libc6", "libx11-6", "libglib2.0-0", "libfontconfig1", "libfreetype6", "libdbus-1-3", "zlib1g"):
        assert re.search(rf"(^|[ ,]){re.escape(package)}", depends), f"{package} missing from Depends: {depends}"


def test_maintainer_scripts(deb: Path, tmp_path) -> None:
    ctrl = tmp_path / "DEBIAN"
    subprocess.run(["dpkg-deb", "-e", str(deb), str(ctrl)], check=True)
    postrm = ctrl / "postrm"
    assert postrm.is_file() and os.access(postrm, os.X_OK), "the package has an executable postrm"
    assert "rm -rf /opt/gradsim" in postrm.read_text(), "uninstall removes /opt/gradsim, run-time leftovers included"
    for script in ("postinst", "postrm"):
        subprocess.run(["sh", "-n", str(ctrl / script)], check=True)


def test_layout(root: Path, launcher: Path) -> None:
    assert launcher.is_symlink(), "the launcher on PATH is /usr/bin/gradsim"
    assert os.readlink(launcher) == "../../opt/gradsim/gradsim", "a relative link, so the package is relocatable for tests"
    assert launcher.resolve() == (root / "opt" / "gradsim" / "gradsim").resolve()
    assert os.access(launcher.resolve(), os.X_OK)
    internal = root / "opt" / "gradsim" / "_internal"
    presets = sorted(p.name for p in (internal / "resources" / "presets").glob("*.json"))
    assert presets == sorted(p.name for p in (REPO / "resources" / "presets").glob("*.json")), "resources/ is bundled"
    assert (internal / "resources" / "icons" / "gradsim.svg").is_file()


def test_menu_entry_and_icon(root: Path) -> None:
    desktop = (root / "usr" / "share" / "applications" / "gradsim.desktop").read_text()
    entries = dict(line.split("=", 1) for line in desktop.splitlines() if "=" in line)
    assert entries["Type"] == "Application"
    assert entries["Exec"].split()[0] == "gradsim", "the menu entry starts the launcher on PATH"
    assert entries["Icon"] == "gradsim"
    icon = root / "usr" / "share" / "icons" / "hicolor" / "scalable" / "apps" / "gradsim.svg"
    assert icon.is_file() and "<svg" in icon.read_text()
    if shutil.which("desktop-file-validate"):
        subprocess.run(["desktop-file-validate", str(root / "usr/share/applications/gradsim.desktop")], check=True)


def test_bundle_is_trimmed(root: Path) -> None:
    """CPU-only torch, only the Qt parts the app uses, no translations or test suites."""
    internal = root / "opt" / "gradsim" / "_internal"
    files = [p.relative_to(internal).as_posix() for p in internal.rglob("*") if p.is_file() or p.is_symlink()]
    cuda_lib = r"lib(cudart|cublas|cudnn|cufft|curand|cusparse|nccl|nvrtc|nvJitLink|torch_cuda|c10_cuda)[^/]*\.so"
    cuda = [f for f in files if re.search(cuda_lib, f) or f.startswith("nvidia/")]
    assert not cuda, f"CUDA files in the bundle: {cuda[:10]}"
    assert not [f for f in files if "/translations/" in f], "Qt translations are left out"
    assert not [f for f in files if f.startswith("torch/test/") or f.startswith("torch/include/")]
    assert not [f for f in files if re.search(r"Qt6(Qml|Quick|WebEngine|Pdf|Multimedia|3D)", f)]
    platforms = {Path(f).name for f in files if "/plugins/platforms/" in f}
    assert {"libqoffscreen.so", "libqxcb.so"} <= platforms, platforms
    assert any(f.endswith("iconengines/libqsvgicon.so") for f in files), "the SVG icon engine is bundled"
    # the module trees the app never imports (packaging/unused_modules.py) are not
    # analysed, so neither their sources nor the libraries only they needed are bundled
    for tree in ("torch/_inductor/", "torch/_dynamo/", "torch/onnx/", "torch/distributed/fsdp/", "sympy/", "networkx/"):
        assert not [f for f in files if f.startswith(tree)], f"{tree} is left out"
    assert not [f for f in files if re.match(r"lib(ssl|crypto|sqlite3|readline)\.so", Path(f).name)], "no TLS, sqlite, readline"
    # the desktop's X11/font/GLib/D-Bus/compression libraries come from the distribution
    from_system = [f for f in files if re.match(r"lib(X11|glib-2\.0|fontconfig|freetype|dbus-1|systemd|gcrypt|z|zstd)\.so", f)]
    assert not from_system, f"taken from the distribution (Depends:), not bundled: {from_system}"
    # torch's .py sources stay only where torch reads them at import (gradsim.spec)
    torch_sources = [f for f in files if f.startswith("torch/") and f.endswith(".py")]
    assert "torch/utils/_config_module.py" in torch_sources and "torch/nn/functional.py" in torch_sources
    assert len(torch_sources) < 100, f"{len(torch_sources)} torch .py files: the source trimming did not run"
    # PySide6.QtOpenGL's 8.9 MB binding is replaced by a stand-in (hooks/rthook_no_qtopengl.py);
    # QtOpenGLWidgets, which pyqtgraph subclasses at import, stays
    assert not [f for f in files if re.match(r"PySide6/QtOpenGL\.", f)], "the QtOpenGL binding is left out"
    assert [f for f in files if re.match(r"PySide6/QtOpenGLWidgets\.", f)], "QtOpenGLWidgets is bundled"
    # ICU's data library without the tables QtCore never asks for (packaging/linux/slim_icu.py)
    icudata = [internal / f for f in files if re.match(r"libicudata\.so\.\d+$", Path(f).name)]
    assert icudata and all(p.stat().st_size < 20e6 for p in icudata if not p.is_symlink()), icudata


def test_slim_icu_answers_as_the_full_one(root: Path, tmp_path) -> None:
    """What QtCore asks ICU for (collation, case mapping, codecs, time zones) is unchanged.

    The same Qt script runs twice in this interpreter's PySide6: with its own ICU data
    library, and with the bundle's slimmed one preloaded in its place. The only allowed
    difference is QTimeZone::displayName, whose localised names were dropped (root kept).
    """
    pytest.importorskip("PySide6.QtCore")
    from PySide6 import QtCore

    qt_icu = sorted(Path(QtCore.__file__).parent.glob("Qt/lib/libicudata.so.*"))
    bundled = sorted((root / "opt" / "gradsim" / "_internal").rglob("libicudata.so.*"))
    bundled = [p for p in bundled if not p.is_symlink()]
    if not qt_icu or not bundled or qt_icu[0].name != bundled[0].name:
        pytest.skip(f"this PySide6's ICU ({qt_icu}) is not the bundle's ({bundled})")
    script = tmp_path / "icu_check.py"
    script.write_text(_ICU_CHECK)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    full = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    slim = subprocess.run([sys.executable, str(script)], env=dict(env, LD_PRELOAD=str(bundled[0])),
                          capture_output=True, text=True, timeout=120)
    assert full.returncode == 0 and slim.returncode == 0, (full.stderr, slim.stderr)
    full_lines, slim_lines = full.stdout.splitlines(), slim.stdout.splitlines()
    assert len(full_lines) == len(slim_lines) > 10
    for a, b in zip(full_lines, slim_lines):
        if a.startswith("tzname "):
            assert b.split()[:2] == a.split()[:2] and b.split()[2].startswith("GMT"), (a, b)
        else:
            assert a == b


_ICU_CHECK = """
import functools
from PySide6.QtCore import QCollator, QCoreApplication, QDate, QDateTime, QLocale, QStringConverter, QStringDecoder, QTimeZone
app = QCoreApplication([])
words = ["\u00c4pfel", "apfel", "Zebra", "\u00d6sterreich", "ober", "file10", "file9", "\u010daj", "cukr", "hrad", "chata"]
for loc in ["de_DE", "sv_SE", "cs_CZ", "en_US", "ja_JP", "tr_TR", "zh_CN"]:
    c = QCollator(QLocale(loc))
    c.setNumericMode(True)
    print("collate", loc, sorted(words, key=functools.cmp_to_key(c.compare)))
print("case", QLocale("tr_TR").toUpper("istanbul"), QLocale("de_DE").toUpper("stra\u00dfe"), QLocale("el").toLower("\u03a3\u038a\u03a3\u03a5\u03a6\u039f\u03a3"))
for name in ["Shift_JIS", "windows-1250", "GB18030", "KOI8-R", "ISO-2022-JP"]:
    print("codec", name, QStringDecoder(name).isValid())
print("codecs", len(QStringConverter.availableCodecs()))
tz = QTimeZone(b"Europe/Berlin")
print("tz", tz.isValid(), tz.offsetFromUtc(QDateTime(QDate(2026, 1, 15).startOfDay())), len(QTimeZone.availableTimeZoneIds()))
for loc in ["en_US", "de_DE"]:
    print("tzname", loc, tz.displayName(QTimeZone.TimeType.StandardTime, QTimeZone.NameType.LongName, QLocale(loc)))
print("date", QLocale("de_DE").toString(QDate(2026, 11, 30), QLocale.FormatType.LongFormat), QLocale("fr_FR").toString(1234567.5, "f", 2))
"""


# --------------------------------------------------------------------------------------
# Running the installed app


def test_version(launcher: Path, app_env: dict[str, str], tmp_path) -> None:
    proc = _run([str(launcher), "--version"], app_env, tmp_path, timeout=120)
    assert proc.returncode == 0, _explain(proc)
    assert proc.stdout.strip() == f"gradsim {VERSION}", _explain(proc)


def test_self_test_trains_and_exports(launcher: Path, app_env: dict[str, str], tmp_path) -> None:
    """The frozen app drives its own window: a run with a live toggle, plots, an export."""
    proc = _run([str(launcher), "--self-test"], app_env, tmp_path, timeout=SELF_TEST_TIMEOUT_S)
    print(proc.stdout)
    assert proc.returncode == 0, _explain(proc)
    out = proc.stdout
    assert "self-test passed" in out, _explain(proc)
    assert not [line for line in out.splitlines() if line.startswith("FAIL")], _explain(proc)
    # it trained ...
    assert re.search(r"^ok +the run finishes", out, re.M), _explain(proc)
    assert re.search(r"^ok +the window's session holds every step", out, re.M), _explain(proc)
    assert re.search(r"^ok +the plots received data", out, re.M), _explain(proc)
    # ... in its engine child process, started by multiprocessing from the frozen executable
    # (main.py's freeze_support() and PyInstaller's multiprocessing runtime hook) ...
    assert re.search(r"^ok +training runs in its own engine process \(mode: process", out, re.M), _explain(proc)
    assert re.search(r"^ok +closing the window ends the engine process", out, re.M), _explain(proc)
    # ... and exported a session
    assert re.search(r"^ok +the session exports through the worker", out, re.M), _explain(proc)
    assert re.search(r"^ok +the export holds the four files", out, re.M), _explain(proc)
    assert "Traceback" not in proc.stderr, _explain(proc)
    # the .py sources torch reads at import are bundled (gradsim.spec keeps them; without
    # them torch warns once per @torch.jit._overload function, or fails to import)
    assert "Unable to retrieve source" not in proc.stderr, _explain(proc)


def test_preset_screenshot(launcher: Path, app_env: dict[str, str], tmp_path) -> None:
    """A preset read from the bundled resources/, a few steps, a PNG of the window."""
    shot = tmp_path / "shot.png"
    proc = _run([str(launcher), "--preset", "vanishing-sigmoid", "--steps", "5", "--screenshot", str(shot)],
                app_env, tmp_path, timeout=SELF_TEST_TIMEOUT_S)
    assert proc.returncode == 0, _explain(proc)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_digits_run(launcher: Path, app_env: dict[str, str], tmp_path) -> None:
    """The real digits data set: scikit-learn's bundled data files survived the trimming."""
    config = tmp_path / "digits.json"
    config.write_text(json.dumps({"dataset": "digits", "depth": 3, "width": 16, "batch_size": 64, "steps": 5}))
    shot = tmp_path / "digits.png"
    proc = _run([str(launcher), "--config", str(config), "--screenshot", str(shot)],
                app_env, tmp_path, timeout=SELF_TEST_TIMEOUT_S)
    assert proc.returncode == 0, _explain(proc)
    assert "screenshot of step 5" in proc.stdout, _explain(proc)
    assert shot.is_file()


def test_bad_flag_is_reported(launcher: Path, app_env: dict[str, str], tmp_path) -> None:
    proc = _run([str(launcher), "--preset", "no-such-preset", "--self-test"], app_env, tmp_path, timeout=120)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, _explain(proc)


# --------------------------------------------------------------------------------------
# A real install and purge (opt-in: it changes the machine)


@pytest.mark.skipif(os.environ.get("GRADSIM_TEST_DPKG_INSTALL") != "1",
                    reason="set GRADSIM_TEST_DPKG_INSTALL=1 (as root, on a throw-away machine) to install for real")
def test_install_and_purge_leave_nothing(deb: Path, app_env: dict[str, str], tmp_path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if subprocess.run(["dpkg-query", "-W", "gradsim"], capture_output=True).returncode == 0:
        pytest.skip("gradsim is already installed on this machine; not touching it")
    owned = [line for line in subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True,
                                             check=True).stdout.splitlines()]
    assert owned
    try:
        # --force-depends: the X libraries are not needed for the offscreen run
        subprocess.run(["dpkg", "--force-depends", "-i", str(deb)], check=True, capture_output=True)
        proc = _run(["gradsim", "--version"], app_env, tmp_path, timeout=120)
        assert proc.returncode == 0 and proc.stdout.strip() == f"gradsim {VERSION}", _explain(proc)
        # the app may leave run-time files in its folder: the uninstall must remove them too
        (Path("/opt/gradsim") / "leftover-written-at-run-time").write_text("x")
    finally:
        subprocess.run(["dpkg", "--purge", "gradsim"], check=True, capture_output=True)
    assert not Path("/opt/gradsim").exists()
    assert not Path("/usr/bin/gradsim").exists()
    assert not Path("/usr/share/applications/gradsim.desktop").exists()
    assert not Path("/usr/share/icons/hicolor/scalable/apps/gradsim.svg").exists()
    assert not Path("/usr/share/doc/gradsim").exists()

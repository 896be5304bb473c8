"""Size and start-up figures of a built GradSim bundle: the benchmark line of packaging/README.md.

    python packaging/measure.py packaging/dist/gradsim [--deb FILE] [--tarball FILE]
                                [--runs 5] [--drop-caches]

Start-up is measured on the frozen app itself, headless (QT_QPA_PLATFORM=offscreen
unless set): the app prints ``first-paint <unix time>`` when its main window first
paints and then quits (the ``GRADSIM_REPORT_FIRST_PAINT`` hook of ``ui/app.py``); the
figure is that time minus the time just before the process was started, so it
includes the PyInstaller bootloader, unpacking nothing (one-folder), importing Qt and
the app, and the first paint. torch is not imported before the first paint.

``--drop-caches`` (root only) empties the kernel's page cache before the first run, so
that run reads every file from disk: the "cold" figure. Without it (or as non-root)
the first run is only "first after build" and says so. ``--version`` time is also
reported (bootloader + Python start + argparse; no Qt).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def tree_bytes(folder: Path) -> int:
    total = 0
    for base, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(base) / name
            if not path.is_symlink():
                total += path.stat().st_size
    return total


def mb(n: int) -> str:
    return f"{n / 1e6:.0f} MB"


def drop_caches() -> bool:
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def first_paint_s(exe: Path, env: dict[str, str]) -> float:
    env = dict(env, GRADSIM_REPORT_FIRST_PAINT="1")
    t0 = time.time()
    proc = subprocess.run([str(exe)], env=env, capture_output=True, text=True, timeout=300)
    for line in proc.stdout.splitlines():
        if line.startswith("first-paint "):
            return float(line.split()[1]) - t0
    raise SystemExit(f"measure: no first-paint line (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


def version_s(exe: Path, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([str(exe), "--version"], env=env, capture_output=True, check=True, timeout=120)
    return time.perf_counter() - t0


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("app", type=Path, help="the one-folder build (folder holding the gradsim executable)")
    p.add_argument("--deb", type=Path)
    p.add_argument("--tarball", type=Path)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--drop-caches", action="store_true")
    args = p.parse_args(argv)

    exe = args.app / ("gradsim.exe" if sys.platform == "win32" else "gradsim")
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    parts = [f"one-folder build {mb(tree_bytes(args.app))} unpacked"]
    if args.deb:
        parts.append(f".deb {mb(args.deb.stat().st_size)}")
    if args.tarball:
        parts.append(f".tar.gz {mb(args.tarball.stat().st_size)}")

    cold_label = "cold (page cache dropped)" if args.drop_caches and drop_caches() else "first run after build"
    first = first_paint_s(exe, env)
    warm = [first_paint_s(exe, env) for _ in range(args.runs)]
    versions = [version_s(exe, env) for _ in range(args.runs)]
    parts.append(f"start to first window paint: {first:.2f} s {cold_label}, "
                 f"{statistics.median(warm):.2f} s warm (median of {args.runs})")
    parts.append(f"--version {statistics.median(versions):.2f} s")
    print(f"benchmark: {'; '.join(parts)} [QT_QPA_PLATFORM={env['QT_QPA_PLATFORM']}, {os.cpu_count()} CPUs]")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

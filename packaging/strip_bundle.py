"""Strip the symbol tables of the bundle's Linux libraries, except those that must not be stripped.

    python packaging/strip_bundle.py packaging/dist/gradsim     # gradsim.spec calls strip_bundle()

Why not PyInstaller's ``strip=True``: it strips every binary, and the libraries that
auditwheel vendored into a wheel's ``*.libs`` folder (numpy.libs: OpenBLAS, gfortran)
were rewritten by patchelf; ``strip`` then produces files the loader rejects ("ELF
load command address/offset not page-aligned", found here with OpenBLAS). Those are
left as they are. Everything else (torch's libraries, the Python runtime, Qt, PySide6,
numpy's own extension modules: checked, numpy imports and computes after stripping;
the size target) is stripped with ``--strip-unneeded``, which keeps the dynamic symbols the
loader needs.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path



def _is_elf(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def strip_bundle(app_dir: Path) -> tuple[int, int]:
    """Strip what is safe to strip; returns (files stripped, bytes saved)."""
    strip = shutil.which("strip")
    if not strip:
        print("strip_bundle: no strip command; nothing stripped")
        return 0, 0
    internal = app_dir / "_internal"
    files, saved = 0, 0
    for path in sorted(internal.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        top = path.relative_to(internal).parts[0]
        if top.endswith(".libs"):  # auditwheel's vendored, patchelf-rewritten libraries
            continue
        if not _is_elf(path):
            continue
        before = path.stat().st_size
        subprocess.run([strip, "--strip-unneeded", str(path)], check=True)
        saved += before - path.stat().st_size
        files += 1
    return files, saved


if __name__ == "__main__":
    n, saved = strip_bundle(Path(sys.argv[1]))
    print(f"strip_bundle: {n} files, {saved / 1e6:.0f} MB saved")

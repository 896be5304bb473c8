"""The ``Depends:`` line of the .deb: the system libraries the frozen app links but does not bundle.

    python packaging/linux/deb_depends.py packaging/dist/gradsim

PyInstaller bundles most shared libraries it finds, but leaves out the C library and
the ones that must match the user's system (libGL/libEGL, libxcb, ...). This script
reads every ELF file of the bundle with ``objdump -p``, keeps the DT_NEEDED libraries
that are not in the bundle, finds the package owning each on the build machine
(``dpkg -S``), and gives glibc the highest GLIBC_x.y symbol version any file requires.
A .deb therefore targets the distribution family it was built on (Debian 12 here).

dpkg-shlibdeps is not used: it cannot tell the bundle's private libraries from system
ones, so it would list every bundled library as a dependency.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

GLIBC_SONAMES = {"libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1", "libutil.so.1",
                 "ld-linux-x86-64.so.2", "libresolv.so.2", "libanl.so.1"}
# When a library is not installed on the build machine, its Debian package name.
KNOWN = {"libGL.so.1": "libgl1", "libEGL.so.1": "libegl1", "libOpenGL.so.0": "libopengl0",
         "libGLX.so.0": "libglx0", "libxcb.so.1": "libxcb1"}


def elf_files(root: Path):
    for base, _dirs, files in os.walk(root):
        for name in files:
            path = Path(base) / name
            if path.is_symlink():
                continue
            with open(path, "rb") as f:
                if f.read(4) == b"\x7fELF":
                    yield path


def needed_and_glibc(path: Path) -> tuple[set[str], tuple[int, ...]]:
    out = subprocess.run(["objdump", "-p", str(path)], capture_output=True, text=True).stdout
    needed = set(re.findall(r"^\s*NEEDED\s+(\S+)", out, re.M))
    versions = [tuple(int(x) for x in v.split(".")) for v in re.findall(r"GLIBC_(\d+(?:\.\d+)+)", out)]
    return needed, max(versions, default=(2, 17))


def owning_package(soname: str) -> str | None:
    ldconfig = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True).stdout
    for line in ldconfig.splitlines():
        m = re.match(rf"\s*{re.escape(soname)} \((?:libc6,)?x86-64[^)]*\) => (\S+)", line)
        if m:
            for path in {m.group(1), str(Path(m.group(1)).resolve())}:
                found = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
                if found.returncode == 0:
                    return found.stdout.split(":", 1)[0].strip()
    return KNOWN.get(soname)


def main(argv: list[str]) -> int:
    root = Path(argv[0])
    bundled = {name for _base, _dirs, files in os.walk(root) for name in files}
    system: set[str] = set()
    glibc = (2, 17)
    for path in elf_files(root):
        needed, version = needed_and_glibc(path)
        system |= {n for n in needed if n not in bundled}
        glibc = max(glibc, version)
    packages = {f"libc6 (>= {'.'.join(map(str, glibc))})"}
    unknown = []
    for soname in sorted(system - GLIBC_SONAMES):
        pkg = owning_package(soname)
        if pkg:
            packages.add(pkg)
        else:
            unknown.append(soname)
    if unknown:
        print(f"deb_depends: no package found for {', '.join(unknown)} (not listed)", file=sys.stderr)
    print(", ".join(sorted(packages)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Rebuild the bundle's ICU data library without the tables Qt never reads (Linux; ~22 of 32 MB).

    python packaging/linux/slim_icu.py packaging/dist/gradsim     # gradsim.spec calls slim_icu()

PySide6's QtCore links ICU 73, whose ``libicudata.so.73`` is nothing but one symbol,
``icudt73_dat``: ICU's whole data package (a table of contents and ~3,900 items). Qt
6.11's QtCore is the only Qt library that calls ICU, and the ICU functions it imports
(``objdump -T libQt6Core.so.6``) are exactly: collation (``ucol_*``: ``QCollator``,
which ``QFileSystemModel`` sorts the file dialog with), legacy text codecs
(``ucnv_*``: ``QStringConverter``), case mapping (``u_strToUpper/Lower``) and time
zones (``ucal_open``, ``ucal_getCanonicalTimeZoneID``, ``ucal_getTimeZoneDisplayName``).
None of them reads ICU's display names of units, currencies, languages and regions
(``QLocale`` has its own CLDR tables), spell-out rules, transliterators or break
iterators (Qt segments text itself): those trees go. Of the time-zone display names
(read only by ``QTimeZone::displayName``, which GradSim never calls) the root locale
stays, so such a call still gets an answer. Collation, converters, normalisation,
time-zone rules and the locales' own data stay. This script takes the package out of
the library, removes the items with ICU's own ``icupkg`` and links the smaller package
into a new ``libicudata.so.73`` exporting the same symbol.

Needs ``icupkg`` (Debian/Ubuntu: ``icu-devtools``; any ICU version reads the package
format), ``cc``, ``nm`` and ``readelf``. Without them the library is left as it is
and the script says so: the bundle is then ~22 MB larger, nothing else changes.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

#: ICU data trees that no ICU function QtCore calls reads: display names of units,
#: currencies, languages and regions, spell-out rules, transliterators, break iterators.
DROPPED_TREES = ("unit", "curr", "lang", "region", "rbnf", "translit", "brkitr")
#: Trees of which only the root locale stays: ``zone`` (time-zone display names), read by
#: ``ucal_getTimeZoneDisplayName`` for ``QTimeZone::displayName``, which GradSim never
#: calls; with the root items a call still gets an answer ("GMT+01:00" style).
ROOT_ONLY_TREES = ("zone",)
KEPT_IN_ROOT_ONLY = ("root.res", "pool.res", "res_index.res")


def _dropped(item: str) -> bool:
    tree, _, rest = item.partition("/")
    if not rest:
        return False
    return tree in DROPPED_TREES or (tree in ROOT_ONLY_TREES and rest not in KEPT_IN_ROOT_ONLY)


def _tools() -> dict[str, str] | None:
    found = {name: shutil.which(name) for name in ("icupkg", "cc", "nm", "readelf")}
    missing = [name for name, path in found.items() if not path]
    if missing:
        print(f"slim_icu: {', '.join(missing)} not found (Debian/Ubuntu: apt install icu-devtools gcc binutils); "
              "ICU data left as it is (~22 MB more)")
        return None
    return found


def _symbol_bytes(lib: Path, tools: dict[str, str]) -> tuple[str, bytes]:
    """The ``icudtNN_dat`` symbol's name and bytes, read through the ELF section table."""
    syms = subprocess.run([tools["nm"], "-D", "--defined-only", "-S", str(lib)], capture_output=True, text=True,
                          check=True).stdout
    m = re.search(r"^([0-9a-f]+) ([0-9a-f]+) [RrDd] (icudt\d+_dat)$", syms, re.M)
    if not m:
        raise SystemExit(f"slim_icu: no icudt*_dat symbol in {lib}")
    addr, size, name = int(m.group(1), 16), int(m.group(2), 16), m.group(3)
    sections = subprocess.run([tools["readelf"], "-SW", str(lib)], capture_output=True, text=True, check=True).stdout
    for line in sections.splitlines():
        s = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+PROGBITS\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)", line)
        if s:
            sec_addr, sec_off, sec_size = (int(x, 16) for x in s.group(2, 3, 4))
            if sec_addr <= addr and addr + size <= sec_addr + sec_size:
                data = lib.read_bytes()[sec_off + addr - sec_addr: sec_off + addr - sec_addr + size]
                return name, data
    raise SystemExit(f"slim_icu: {name} is in no PROGBITS section of {lib}")


def slim_icu(app_dir: Path) -> tuple[int, int]:
    """Replace the bundle's libicudata; returns (bytes before, bytes after), equal if nothing changed."""
    libs = [p for p in app_dir.rglob("libicudata.so.*") if not p.is_symlink()]
    if not libs:
        print("slim_icu: no libicudata in the bundle")
        return 0, 0
    tools = _tools()
    lib = libs[0]
    before = lib.stat().st_size
    if tools is None:
        return before, before
    name, data = _symbol_bytes(lib, tools)
    soname = lib.name
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # icupkg takes the package name (the items' "icudt73l/" prefix: l = little-endian)
        # from the file name, so both files are called that, in two folders
        package = name[: -len("_dat")] + ("l" if sys.byteorder == "little" else "b")
        (tmp / "in").mkdir()
        (tmp / "out").mkdir()
        full, slim = tmp / "in" / f"{package}.dat", tmp / "out" / f"{package}.dat"
        full.write_bytes(data)
        items = subprocess.run([tools["icupkg"], "-l", str(full)], capture_output=True, text=True,
                               check=True).stdout.split()
        drop = [item for item in items if _dropped(item)]
        (tmp / "drop.txt").write_text("\n".join(drop) + "\n")
        subprocess.run([tools["icupkg"], "-r", str(tmp / "drop.txt"), str(full), str(slim)], check=True,
                       capture_output=True)
        asm = tmp / "icudata.S"
        asm.write_text(
            "\t.section .rodata\n\t.balign 16\n"
            f"\t.globl {name}\n\t.type {name}, @object\n\t.size {name}, {slim.stat().st_size}\n"
            f"{name}:\n\t.incbin \"{slim}\"\n"
            "\t.section .note.GNU-stack,\"\",@progbits\n")
        out = tmp / soname
        subprocess.run([tools["cc"], "-shared", "-nostdlib", "-Wl,-soname," + soname, "-Wl,-z,noexecstack",
                        "-o", str(out), str(asm)], check=True)
        shutil.copyfile(out, lib)
    after = lib.stat().st_size
    print(f"slim_icu: {lib.relative_to(app_dir)}: {len(drop)} of {len(items)} items dropped, "
          f"{before / 1e6:.1f} -> {after / 1e6:.1f} MB")
    return before, after


if __name__ == "__main__":
    b, a = slim_icu(Path(sys.argv[1]))
    print(f"slim_icu: {(b - a) / 1e6:.0f} MB saved")

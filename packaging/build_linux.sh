#!/usr/bin/env bash
# Build GradSim for Linux: a PyInstaller one-folder app, a .tar.gz of it and a .deb,
# then smoke-test the .deb (tests/packaging, `pytest -m packaging`).
#
#   packaging/build_linux.sh              # everything, on a fresh clone
#   packaging/build_linux.sh --no-test    # skip the smoke test and the benchmark
#   packaging/build_linux.sh --fresh      # recreate the cached build venv first
#
# Needs: python3 (3.11+) with venv, dpkg-deb, tar, and about 4 GB of free disk.
# Output: packaging/dist/gradsim/ (the one-folder app),
#         packaging/dist/gradsim-VERSION-linux-x86_64.tar.gz,
#         packaging/dist/gradsim_VERSION_amd64.deb
# The build never touches .venv: it has its own venv, cached in ~/.cache/gradsim-build
# (GRADSIM_BUILD_CACHE) per set of pins and linked as packaging/.build-venv.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

RUN_TEST=1
FRESH=0
for arg in "$@"; do
  case "$arg" in
    --no-test) RUN_TEST=0 ;;
    --fresh) FRESH=1 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "build_linux.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

PYTHON="${PYTHON:-python3}"
VENV="packaging/.build-venv"
DIST="packaging/dist"
WORK="packaging/build"
VERSION="$("$PYTHON" packaging/version.py)"
ARCH_DEB="amd64"
ARCH_TAR="linux-x86_64"
log() { printf '\n== %s\n' "$*"; }

# icupkg and cc rebuild ICU's data library without the tables Qt never reads (~18 MB;
# packaging/linux/slim_icu.py); strip and readelf come with binutils
for tool in dpkg-deb tar icupkg cc strip readelf nm; do
  command -v "$tool" >/dev/null || {
    echo "build_linux.sh: $tool is required (Debian/Ubuntu: apt install dpkg-dev icu-devtools gcc binutils)" >&2
    exit 1
  }
done
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "build_linux.sh: Python 3.11+ is required ($PYTHON)" >&2; exit 1; }

# ---------------------------------------------------------------------------------------
# The build venv is cached outside the checkout, one per set of pins (the lock file, the
# build tools, pyproject's ranges, the Python), so a fresh clone on the same machine (or
# a CI runner restoring the cache) does not reinstall torch: ~2 minutes and ~1.5 GB of
# writes saved. packaging/.build-venv is a link to it. --fresh rebuilds it.
APP_REQS="$WORK/requirements-app.txt"
mkdir -p "$WORK"
"$PYTHON" - "$APP_REQS" <<'EOF'
import sys, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
open(sys.argv[1], "w").write("\n".join(deps) + "\n")
EOF
# torch must be the CPU build. Here /opt/wheels holds the local CPU wheel; elsewhere
# PyTorch's CPU index is added (PyPI's Linux torch wheel is the ~3 GB CUDA build).
if [ -d /opt/wheels ]; then
  TORCH_SOURCE=(--find-links /opt/wheels)
else
  TORCH_SOURCE=(--extra-index-url "${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}")
fi
WANT_STAMP="$( { cat requirements/lock.txt packaging/requirements-build.txt "$APP_REQS"; "$PYTHON" -VV; \
  echo "${TORCH_SOURCE[*]}"; } | sha256sum | cut -c1-16)"
CACHE="${GRADSIM_BUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gradsim-build}"
CACHED_VENV="$CACHE/venv-$WANT_STAMP"
log "build venv ($VENV -> $CACHED_VENV)"
if [ "$FRESH" = 1 ] || [ ! -f "$CACHED_VENV/.complete" ]; then
  rm -rf "$CACHED_VENV"
  mkdir -p "$CACHE"
  # the venvs of other pin sets are stale: ~1.5 GB each
  find "$CACHE" -mindepth 1 -maxdepth 1 -name 'venv-*' -exec rm -rf {} +
  "$PYTHON" -m venv "$CACHED_VENV"
  # --no-compile: byte-compiling ~5,000 files costs CPU for nothing here (PyInstaller
  # compiles what it bundles itself)
  "$CACHED_VENV/bin/python" -m pip install -q --no-compile "${TORCH_SOURCE[@]}" -c requirements/lock.txt \
    -r "$APP_REQS" -r packaging/requirements-build.txt
  touch "$CACHED_VENV/.complete"
fi
# a venv from before the cache (a real folder) is replaced by the link
if [ -e "$VENV" ] && [ ! -L "$VENV" ]; then rm -rf "$VENV"; fi
ln -sfn "$CACHED_VENV" "$VENV"
"$VENV/bin/python" - <<'EOF'
import torch, PySide6, PyInstaller
if torch.version.cuda is not None:
    raise SystemExit(f"build_linux.sh: torch {torch.__version__} is a CUDA build; the bundle must be CPU-only")
print(f"torch {torch.__version__} (CPU), PySide6 {PySide6.__version__}, PyInstaller {PyInstaller.__version__}")
EOF

# ---------------------------------------------------------------------------------------
log "PyInstaller one-folder build (gradsim $VERSION)"
rm -rf "$DIST/gradsim"
"$VENV/bin/pyinstaller" --noconfirm --clean --log-level WARN \
  --distpath "$DIST" --workpath "$WORK/pyinstaller" packaging/gradsim.spec
APP="$DIST/gradsim"
test -x "$APP/gradsim"
# the bundled resources are where gradsim.resources.resource_root() looks (sys._MEIPASS)
test -d "$APP/_internal/resources/presets"
"$APP/gradsim" --version
# both artefacts get sane permissions (no group/other write)
chmod -R u+rwX,go+rX,go-w "$APP"
# the .deb's stage holds hard links to the app, not a copy of ~500 MB (same file system;
# dpkg-deb only reads them). Linked before tar starts reading: a new link changes a
# file's ctime, which tar reports as "file changed as we read it".
STAGE="$WORK/deb/gradsim_${VERSION}_${ARCH_DEB}"
rm -rf "$STAGE"
mkdir -p "$STAGE/DEBIAN" "$STAGE/opt" "$STAGE/usr/bin" \
  "$STAGE/usr/share/applications" "$STAGE/usr/share/icons/hicolor/scalable/apps" \
  "$STAGE/usr/share/doc/gradsim"
cp -al "$APP" "$STAGE/opt/gradsim" 2>/dev/null || { rm -rf "$STAGE/opt/gradsim"; cp -a "$APP" "$STAGE/opt/gradsim"; }

# ---------------------------------------------------------------------------------------
TARBALL="$DIST/gradsim-$VERSION-$ARCH_TAR.tar.gz"
log "tarball $TARBALL (in the background, while the .deb is built and tested)"
rm -f "$TARBALL"
GZIP_CMD=gzip
command -v pigz >/dev/null && GZIP_CMD=pigz  # parallel gzip, same format, where installed
tar -C "$DIST" --owner=0 --group=0 --numeric-owner -cf - gradsim | "$GZIP_CMD" -6 > "$TARBALL.part" \
  && mv "$TARBALL.part" "$TARBALL" &
TAR_PID=$!

# ---------------------------------------------------------------------------------------
DEB="$DIST/gradsim_${VERSION}_${ARCH_DEB}.deb"
log "Debian package $DEB"
# Launcher on PATH: a relative symlink, so it also works from a `dpkg -x` root (the smoke
# test); the PyInstaller bootloader resolves it through /proc/self/exe.
ln -s ../../opt/gradsim/gradsim "$STAGE/usr/bin/gradsim"
# the menu entry and icon are the app's own (resources/), also bundled in _internal/resources
install -m 0644 resources/gradsim.desktop "$STAGE/usr/share/applications/gradsim.desktop"
install -m 0644 resources/icons/gradsim.svg "$STAGE/usr/share/icons/hicolor/scalable/apps/gradsim.svg"
install -m 0644 packaging/debian/copyright "$STAGE/usr/share/doc/gradsim/copyright"
INSTALLED_SIZE="$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)"
# Depends: the system libraries the bundle links but does not carry (packaging/linux/deb_depends.py)
if command -v objdump >/dev/null && command -v dpkg >/dev/null; then
  DEPENDS="$("$PYTHON" packaging/linux/deb_depends.py "$APP")"
else
  echo "build_linux.sh: objdump or dpkg missing; using a generic Depends line" >&2
  DEPENDS="libc6 (>= 2.28), libegl1, libgl1, libxcb1"
fi
echo "Depends: $DEPENDS"
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH_DEB/" -e "s/@INSTALLED_SIZE@/$INSTALLED_SIZE/" \
  -e "s/@DEPENDS@/$DEPENDS/" packaging/debian/control.in > "$STAGE/DEBIAN/control"
install -m 0755 packaging/debian/postinst packaging/debian/postrm "$STAGE/DEBIAN/"
# dpkg-deb wants sane permissions: no group/other write anywhere. opt/gradsim got them
# before the tarball started; chmod on its links would change the files' ctime under tar
# ("file changed as we read it"), so only the rest of the stage is touched.
chmod u+rwX,go+rX,go-w "$STAGE" "$STAGE/opt"
chmod -R u+rwX,go+rX,go-w "$STAGE/DEBIAN" "$STAGE/usr"
rm -f "$DEB"
# zstd, not xz: xz of a ~600 MB tree took ~10 minutes on one core (DESIGN.md section 7);
# zstd (supported by dpkg since 1.21.18, Debian 12 / Ubuntu 21.10) takes well under one.
dpkg-deb --root-owner-group -Zzstd --build "$STAGE" "$DEB"
dpkg-deb --info "$DEB" | sed -n '1,20p'

# ---------------------------------------------------------------------------------------
log "sizes"
du -sh "$APP" | sed 's/^/one-folder build (unpacked): /'
ls -lh "$DEB" | awk '{print $5, $9}'

if [ "$RUN_TEST" = 1 ]; then
  log "smoke test of the .deb (pytest -m packaging tests/packaging)"
  GRADSIM_DEB="$DEB" "$VENV/bin/python" -m pytest -m packaging tests/packaging -v -p no:cacheprovider
fi
wait "$TAR_PID" || { echo "build_linux.sh: packing $TARBALL failed" >&2; exit 1; }
ls -lh "$TARBALL" | awk '{print $5, $9}'
if [ "$RUN_TEST" = 1 ]; then
  log "benchmark (packaging/measure.py; the README's figures)"
  "$VENV/bin/python" packaging/measure.py "$APP" --deb "$DEB" --tarball "$TARBALL" --runs 3
fi
log "done: $DEB $TARBALL"

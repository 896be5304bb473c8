#!/usr/bin/env bash
# Build GradSim for Linux: a PyInstaller one-folder app, a .tar.gz of it and a .deb,
# then smoke-test the .deb (tests/packaging, `pytest -m packaging`).
#
#   packaging/build_linux.sh              # everything, on a fresh clone
#   packaging/build_linux.sh --no-test    # skip the smoke test and the benchmark
#   packaging/build_linux.sh --fresh      # recreate packaging/.build-venv first
#
# Needs: python3 (3.11+) with venv, dpkg-deb, tar, and about 4 GB of free disk.
# Output: packaging/dist/gradsim/ (the one-folder app),
#         packaging/dist/gradsim-VERSION-linux-x86_64.tar.gz,
#         packaging/dist/gradsim_VERSION_amd64.deb
# The build never touches .venv: it has its own venv, packaging/.build-venv.
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

for tool in dpkg-deb tar; do
  command -v "$tool" >/dev/null || { echo "build_linux.sh: $tool is required" >&2; exit 1; }
done
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "build_linux.sh: Python 3.11+ is required ($PYTHON)" >&2; exit 1; }

# ---------------------------------------------------------------------------------------
log "build venv ($VENV)"
# The app's dependencies are the ranges of pyproject.toml, pinned by requirements/lock.txt.
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
STAMP="$VENV/.stamp"
WANT_STAMP="$(cat requirements/lock.txt packaging/requirements-build.txt "$APP_REQS" | sha256sum | cut -c1-16)"
if [ "$FRESH" = 1 ] || [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT_STAMP" ]; then
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q "${TORCH_SOURCE[@]}" -c requirements/lock.txt \
    -r "$APP_REQS" -r packaging/requirements-build.txt
  echo "$WANT_STAMP" > "$STAMP"
fi
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

# ---------------------------------------------------------------------------------------
TARBALL="$DIST/gradsim-$VERSION-$ARCH_TAR.tar.gz"
log "tarball $TARBALL"
rm -f "$TARBALL"
tar -C "$DIST" --owner=0 --group=0 --numeric-owner -czf "$TARBALL" gradsim

# ---------------------------------------------------------------------------------------
DEB="$DIST/gradsim_${VERSION}_${ARCH_DEB}.deb"
log "Debian package $DEB"
STAGE="$WORK/deb/gradsim_${VERSION}_${ARCH_DEB}"
rm -rf "$STAGE"
mkdir -p "$STAGE/DEBIAN" "$STAGE/opt" "$STAGE/usr/bin" \
  "$STAGE/usr/share/applications" "$STAGE/usr/share/icons/hicolor/scalable/apps" \
  "$STAGE/usr/share/doc/gradsim"
cp -a "$APP" "$STAGE/opt/gradsim"
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
# dpkg-deb wants sane permissions: no group/other write anywhere
chmod -R u+rwX,go+rX,go-w "$STAGE"
rm -f "$DEB"
# zstd, not xz: xz of a ~600 MB tree took ~10 minutes on one core (DESIGN.md section 7);
# zstd (supported by dpkg since 1.21.18, Debian 12 / Ubuntu 21.10) takes well under one.
dpkg-deb --root-owner-group -Zzstd --build "$STAGE" "$DEB"
dpkg-deb --info "$DEB" | sed -n '1,20p'

# ---------------------------------------------------------------------------------------
log "sizes"
du -sh "$APP" | sed 's/^/one-folder build (unpacked): /'
ls -lh "$TARBALL" "$DEB" | awk '{print $5, $9}'

if [ "$RUN_TEST" = 1 ]; then
  log "smoke test of the .deb (pytest -m packaging tests/packaging)"
  GRADSIM_DEB="$DEB" "$VENV/bin/python" -m pytest -m packaging tests/packaging -v -p no:cacheprovider
  log "benchmark (packaging/measure.py; the README's figures)"
  "$VENV/bin/python" packaging/measure.py "$APP" --deb "$DEB" --tarball "$TARBALL" --runs 3
fi
log "done: $DEB $TARBALL"

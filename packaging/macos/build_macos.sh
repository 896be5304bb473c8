#!/usr/bin/env bash
# Build GradSim for macOS: GradSim.app (PyInstaller BUNDLE) and a drag-to-Applications .dmg.
#
# NOT RUN on the Linux build machine; written for macOS 13+ on Apple silicon (a
# macos-14 GitHub runner in .github/workflows/package.yml). Needs Python 3.11
# (python.org or setup-python; $PYTHON), Xcode command line tools (codesign, hdiutil).
#
#   packaging/macos/build_macos.sh [--no-test]
#
# Signing: without GRADSIM_CODESIGN_IDENTITY the app is ad-hoc signed by PyInstaller
# (runs on the machine that built it; elsewhere Gatekeeper asks the user to allow it
# in System Settings > Privacy & Security). For distribution set
#   GRADSIM_CODESIGN_IDENTITY="Developer ID Application: NAME (TEAMID)"
# and, to notarize, GRADSIM_NOTARY_PROFILE (a `xcrun notarytool store-credentials` profile).
#
# Output: packaging/dist/GradSim.app, packaging/dist/GradSim-VERSION-macos-ARCH.dmg
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
RUN_TEST=1
[ "${1:-}" = "--no-test" ] && RUN_TEST=0

PYTHON="${PYTHON:-python3}"
VENV="packaging/.build-venv"
DIST="packaging/dist"
WORK="packaging/build"
VERSION="$("$PYTHON" packaging/version.py)"
ARCH="$(uname -m)"   # arm64 or x86_64
log() { printf '\n== %s\n' "$*"; }

log "build venv ($VENV)"
mkdir -p "$WORK"
"$PYTHON" - "$WORK/requirements-app.txt" <<'EOF'
import sys, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
open(sys.argv[1], "w").write("\n".join(deps) + "\n")
EOF
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
# PyPI's macOS torch wheels have no CUDA; the lock file pins the exact versions.
"$VENV/bin/python" -m pip install -q -c requirements/lock.txt \
  -r "$WORK/requirements-app.txt" -r packaging/requirements-build.txt

log "icons"
QT_QPA_PLATFORM=offscreen "$VENV/bin/python" packaging/render_icons.py "$WORK/icons"

log "PyInstaller GradSim.app (gradsim $VERSION, $ARCH)"
rm -rf "$DIST/gradsim" "$DIST/GradSim.app"
"$VENV/bin/pyinstaller" --noconfirm --clean --log-level WARN \
  --distpath "$DIST" --workpath "$WORK/pyinstaller" packaging/gradsim.spec
APP="$DIST/GradSim.app"
test -x "$APP/Contents/MacOS/gradsim"
# resources/ sits where gradsim.resources.resource_root() looks: sys._MEIPASS/resources,
# i.e. Contents/Frameworks/resources (PyInstaller keeps the data in Contents/Resources and
# links it from Contents/Frameworks)
test -d "$APP/Contents/Frameworks/resources/presets"

if [ -n "${GRADSIM_CODESIGN_IDENTITY:-}" ]; then
  log "verify signature"
  codesign --verify --deep --strict --verbose=2 "$APP"
fi

if [ "$RUN_TEST" = 1 ]; then
  log "smoke test: the bundle's --version and --self-test (offscreen)"
  "$APP/Contents/MacOS/gradsim" --version
  QT_QPA_PLATFORM=offscreen "$APP/Contents/MacOS/gradsim" --self-test | tee "$WORK/self-test.log"
  grep -q "self-test passed" "$WORK/self-test.log"
fi

log "disk image"
DMG="$DIST/GradSim-$VERSION-macos-$ARCH.dmg"
STAGE="$WORK/dmg"
rm -rf "$STAGE" "$DMG"
mkdir -p "$STAGE"
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"
hdiutil create -volname "GradSim $VERSION" -srcfolder "$STAGE" -fs HFS+ -format UDZO -ov "$DMG"
if [ -n "${GRADSIM_CODESIGN_IDENTITY:-}" ]; then
  codesign --sign "$GRADSIM_CODESIGN_IDENTITY" --timestamp "$DMG"
  if [ -n "${GRADSIM_NOTARY_PROFILE:-}" ]; then
    log "notarize"
    xcrun notarytool submit "$DMG" --keychain-profile "$GRADSIM_NOTARY_PROFILE" --wait
    xcrun stapler staple "$DMG"
  fi
fi

if [ "$RUN_TEST" = 1 ]; then
  log "smoke test: the .dmg mounts and its app runs"
  MNT="$(mktemp -d)"
  hdiutil attach -nobrowse -readonly -mountpoint "$MNT" "$DMG"
  trap 'hdiutil detach "$MNT" -quiet || true' EXIT
  QT_QPA_PLATFORM=offscreen "$MNT/GradSim.app/Contents/MacOS/gradsim" --version
fi

log "sizes"
du -sh "$APP"
ls -lh "$DMG"
log "done: $DMG"

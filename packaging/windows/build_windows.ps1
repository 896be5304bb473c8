# Build GradSim for Windows x64: PyInstaller one-folder app + Inno Setup installer.
#
# NOT RUN on the Linux build machine; written for a Windows 10/11 or windows-2022
# GitHub runner (.github/workflows/package.yml runs it). Needs Python 3.11 x64 on PATH
# (or $env:PYTHON) and Inno Setup 6 (ISCC.exe; installed with choco if missing).
#
#   powershell -ExecutionPolicy Bypass -File packaging\windows\build_windows.ps1 [-NoTest]
#
# Output: packaging\dist\gradsim\ (one-folder app), packaging\dist\gradsim-VERSION-windows-x64.zip,
#         packaging\dist\GradSim-VERSION-windows-x64-setup.exe
# The smoke test installs the setup silently per user into a temporary folder, runs the
# installed app's --self-test offscreen, uninstalls silently and checks the folder is gone.
param([switch]$NoTest)
$ErrorActionPreference = "Stop"
Set-StrictMode -Version Latest

$Root = Resolve-Path (Join-Path $PSScriptRoot "..\..")
Set-Location $Root
$Python = if ($env:PYTHON) { $env:PYTHON } else { "python" }
$Venv = "packaging\.build-venv"
$VPy = Join-Path $Venv "Scripts\python.exe"
$Version = (& $Python packaging\version.py).Trim()
function Step($m) { Write-Host "`n== $m" }
function Check($what) { if ($LASTEXITCODE -ne 0) { throw "$what failed (exit $LASTEXITCODE)" } }

Step "build venv ($Venv)"
New-Item -ItemType Directory -Force packaging\build | Out-Null
& $Python -c "import tomllib; d = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; open('packaging/build/requirements-app.txt', 'w').write(chr(10).join(d) + chr(10))"
Check "reading pyproject.toml"
if (-not (Test-Path $VPy)) { & $Python -m venv $Venv; Check "venv" }
# PyPI's Windows torch wheels are CPU-only; the lock file pins the exact versions.
& $VPy -m pip install -q -c requirements\lock.txt -r packaging\build\requirements-app.txt -r packaging\requirements-build.txt
Check "pip install"
& $VPy -c "import torch, sys; sys.exit(torch.version.cuda is not None)"
Check "CPU-only torch check"

Step "icons"
$env:QT_QPA_PLATFORM = "offscreen"
& $VPy packaging\render_icons.py packaging\build\icons
Check "render_icons"
Remove-Item Env:QT_QPA_PLATFORM

Step "PyInstaller one-folder build (gradsim $Version)"
if (Test-Path packaging\dist\gradsim) { Remove-Item -Recurse -Force packaging\dist\gradsim }
& $VPy -m PyInstaller --noconfirm --clean --log-level WARN --distpath packaging\dist --workpath packaging\build\pyinstaller packaging\gradsim.spec
Check "PyInstaller"
if (-not (Test-Path packaging\dist\gradsim\_internal\resources\presets)) { throw "resources/ missing from the bundle" }

Step "zip"
$Zip = "packaging\dist\gradsim-$Version-windows-x64.zip"
if (Test-Path $Zip) { Remove-Item $Zip }
Compress-Archive -Path packaging\dist\gradsim -DestinationPath $Zip

Step "Inno Setup"
$Iscc = Join-Path ${env:ProgramFiles(x86)} "Inno Setup 6\ISCC.exe"
if (-not (Test-Path $Iscc)) { choco install innosetup -y --no-progress; Check "choco install innosetup" }
& $Iscc "/DAppVersion=$Version" packaging\inno\gradsim.iss
Check "ISCC"
$Setup = "packaging\dist\GradSim-$Version-windows-x64-setup.exe"
if (-not (Test-Path $Setup)) { throw "$Setup was not made" }

$AppBytes = (Get-ChildItem -Recurse -File packaging\dist\gradsim | Measure-Object -Sum Length).Sum
Write-Host ("one-folder build: {0:N0} MB unpacked; setup: {1:N0} MB" -f ($AppBytes / 1e6), ((Get-Item $Setup).Length / 1e6))

if (-not $NoTest) {
  Step "smoke test: silent per-user install, --self-test, silent uninstall"
  $Dir = Join-Path $env:RUNNER_TEMP "GradSim-test"
  if (-not $env:RUNNER_TEMP) { $Dir = Join-Path $env:TEMP "GradSim-test" }
  $p = Start-Process -Wait -PassThru $Setup -ArgumentList "/VERYSILENT", "/SUPPRESSMSGBOXES", "/NORESTART", "/CURRENTUSER", "/DIR=`"$Dir`""
  if ($p.ExitCode -ne 0) { throw "setup exit $($p.ExitCode)" }
  $Exe = Join-Path $Dir "gradsim.exe"
  # The Windows build is windowed (no console), so the check is the exit status.
  $p = Start-Process -Wait -PassThru $Exe -ArgumentList "--version"
  if ($p.ExitCode -ne 0) { throw "--version exit $($p.ExitCode)" }
  $env:QT_QPA_PLATFORM = "offscreen"
  $t = Measure-Command { $p = Start-Process -Wait -PassThru $Exe -ArgumentList "--self-test" }
  Remove-Item Env:QT_QPA_PLATFORM
  if ($p.ExitCode -ne 0) { throw "installed app --self-test exit $($p.ExitCode)" }
  Write-Host ("self-test passed in {0:N1} s" -f $t.TotalSeconds)
  $p = Start-Process -Wait -PassThru (Join-Path $Dir "unins000.exe") -ArgumentList "/VERYSILENT", "/SUPPRESSMSGBOXES", "/NORESTART"
  if ($p.ExitCode -ne 0) { throw "uninstall exit $($p.ExitCode)" }
  Start-Sleep -Seconds 3  # the uninstaller finishes deleting itself from a child process
  if (Test-Path $Dir) { throw "uninstall left $Dir behind" }
  Write-Host "smoke test passed"
}
Step "done: $Setup $Zip"

; Inno Setup 6 script for GradSim on Windows (x64).
;
; NOT BUILT OR RUN on the Linux build machine: it is built by
; packaging/windows/build_windows.ps1 on a Windows runner (.github/workflows/package.yml),
; which first makes the PyInstaller one-folder build (packaging/dist/gradsim) and the
; icon (packaging/build/icons/gradsim.ico), then runs:
;
;   ISCC.exe /DAppVersion=0.2.0 packaging\inno\gradsim.iss
;
; Install modes: per user (default, no admin rights: %LOCALAPPDATA%\Programs\GradSim)
; or per machine (C:\Program Files\GradSim) - the wizard asks, and the command line
; chooses with /CURRENTUSER or /ALLUSERS. Silent install for IT staff:
;
;   GradSim-0.2.0-windows-x64-setup.exe /VERYSILENT /SUPPRESSMSGBOXES /ALLUSERS /NORESTART
;
; Uninstall: Settings > Apps, or "{app}\unins000.exe /VERYSILENT". It removes the
; program folder, run-time leftovers included, and the Start-menu shortcut. The user's
; own settings (%APPDATA%\GradSim\GradSim.ini) and exported sessions are left alone.

#ifndef AppVersion
  #error Pass the version: ISCC /DAppVersion=X.Y.Z (build_windows.ps1 reads it from gradsim/__init__.py)
#endif
#ifndef SourceDir
  #define SourceDir "..\dist\gradsim"
#endif
#ifndef IconFile
  #define IconFile "..\build\icons\gradsim.ico"
#endif
#define AppName "GradSim"
#define AppExe "gradsim.exe"

[Setup]
; AppId identifies the product for upgrades and uninstall: never change it.
AppId={{6E0C6F1B-2B7A-4B5E-9C52-0B7F3C1D9A41}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=GradSim maintainers
AppComments=Simulator of vanishing and exploding gradients
VersionInfoVersion={#AppVersion}
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
; per-user by default; the wizard (or /ALLUSERS) may switch to a per-machine install
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog commandline
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputDir=..\dist
OutputBaseFilename=GradSim-{#AppVersion}-windows-x64-setup
SetupIconFile={#IconFile}
UninstallDisplayIcon={app}\{#AppExe}
UninstallDisplayName={#AppName} {#AppVersion}
Compression=lzma2/max
SolidCompression=yes
LZMANumBlockThreads=4
WizardStyle=modern
CloseApplications=yes
RestartApplications=no

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
; Start-menu shortcut (per user or all users, following the install mode)
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#AppExe}"; WorkingDir: "{userdocs}"; Comment: "Train a deep network live and watch its gradients"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; WorkingDir: "{userdocs}"; Tasks: desktopicon

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
; anything the app wrote into its own folder at run time (e.g. byte-code caches)
Type: filesandordirs; Name: "{app}"

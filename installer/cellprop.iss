; Inno Setup script: wraps the PyInstaller one-folder bundle (installer\dist\cellprop) into
; a Windows setup program. Build the bundle first on Windows (python installer\build.py),
; then: iscc installer\cellprop.iss  ->  installer\Output\cellprop-setup-<version>.exe
#define AppName "cellprop"
#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif

[Setup]
AppId={{6F1C3B52-2B0E-4C4B-9C58-1D2E5A4F7C10}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=cellprop developers
LicenseFile=..\LICENSE
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
OutputBaseFilename=cellprop-setup-{#AppVersion}
SetupIconFile=..\resources\icons\cellprop.ico
Compression=lzma2
SolidCompression=yes
ArchitecturesInstallIn64BitMode=x64compatible
PrivilegesRequiredOverridesAllowed=dialog
ChangesEnvironment=yes

[Files]
Source: "dist\cellprop\*"; DestDir: "{app}"; Flags: recursesubdirs createallsubdirs ignoreversion

[Icons]
Name: "{group}\cellprop"; Filename: "{app}\cellprop-gui.exe"
Name: "{autodesktop}\cellprop"; Filename: "{app}\cellprop-gui.exe"; Tasks: desktopicon

[Tasks]
Name: "desktopicon"; Description: "Create a desktop shortcut"; Flags: unchecked
Name: "addtopath"; Description: "Add the cellprop command line to PATH"; Flags: unchecked

[Registry]
Root: HKCU; Subkey: "Environment"; ValueType: expandsz; ValueName: "Path"; \
  ValueData: "{olddata};{app}"; Tasks: addtopath; Check: NeedsAddPath(ExpandConstant('{app}'))

[Code]
function NeedsAddPath(Dir: string): boolean;
var Paths: string;
begin
  if not RegQueryStringValue(HKEY_CURRENT_USER, 'Environment', 'Path', Paths) then
  begin
    Result := True;
    exit;
  end;
  Result := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Paths) + ';') = 0;
end;

[Run]
Filename: "{app}\cellprop-gui.exe"; Description: "Start cellprop"; Flags: nowait postinstall skipifsilent

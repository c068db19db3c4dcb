; Inno Setup script: wraps the PyInstaller one-folder bundle (installer\dist\cellprop) into
; a Windows setup program. Build the bundle first on Windows (python installer\build.py),
; then: iscc installer\cellprop.iss  ->  installer\Output\cellprop-setup-<version>.exe
#define AppName "cellprop"
#define SystemEnv "SYSTEM\CurrentControlSet\Control\Session Manager\Environment"
; the version: pyproject.toml's, given by build.py's hint (iscc /DAppVersion=X.Y.Z)
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
; the bundle is x64 code: not on 32-bit Windows (ARM64 runs x64 programs)
ArchitecturesAllowed=x64compatible
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
; PATH of the user who installs for themselves, or of every user for an all-users install
Root: HKCU; Subkey: "Environment"; ValueType: expandsz; ValueName: "Path"; \
  ValueData: "{olddata};{app}"; Tasks: addtopath; \
  Check: (not IsAdminInstallMode) and NeedsAddPath(ExpandConstant('{app}'))
Root: HKLM; Subkey: "{#SystemEnv}"; ValueType: expandsz; ValueName: "Path"; \
  ValueData: "{olddata};{app}"; Tasks: addtopath; \
  Check: IsAdminInstallMode and NeedsAddPath(ExpandConstant('{app}'))

[Code]
function PathKey(var Root: Integer): string;
begin
  if IsAdminInstallMode then
  begin
    Root := HKEY_LOCAL_MACHINE;
    Result := '{#SystemEnv}';
  end
  else
  begin
    Root := HKEY_CURRENT_USER;
    Result := 'Environment';
  end;
end;

function NeedsAddPath(Dir: string): boolean;
var Paths, Key: string; Root: Integer;
begin
  Key := PathKey(Root);
  if not RegQueryStringValue(Root, Key, 'Path', Paths) then
  begin
    Result := True;
    exit;
  end;
  Result := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Paths) + ';') = 0;
end;

{ Uninstalling takes the app's folder out of PATH again (the entry added above). }
procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
var Paths, Key, Dir: string; Root, At: Integer;
begin
  if CurUninstallStep <> usPostUninstall then
    exit;
  Key := PathKey(Root);
  if not RegQueryStringValue(Root, Key, 'Path', Paths) then
    exit;
  Dir := ExpandConstant('{app}');
  Paths := ';' + Paths + ';';
  At := Pos(';' + Uppercase(Dir) + ';', Uppercase(Paths));
  if At = 0 then
    exit;
  Delete(Paths, At, Length(Dir) + 1);
  Paths := Copy(Paths, 2, Length(Paths) - 2);
  RegWriteExpandStringValue(Root, Key, 'Path', Paths);
end;

[Run]
Filename: "{app}\cellprop-gui.exe"; Description: "Start cellprop"; Flags: nowait postinstall skipifsilent

# Installs Tether for the current user, without administrator rights:
# copies tether.exe and tetherd.exe to %LOCALAPPDATA%\Programs\Tether,
# registers the tether:// link scheme under HKCU, starts the tray at login
# (the same HKCU Run value the tray's "Start at login" toggles), adds a
# Start menu shortcut and starts the tray.
#   powershell -ExecutionPolicy Bypass -File .\install.ps1 [-NoAutostart] [-NoStart]
# The background engine (tetherd install: a per-user Scheduled Task, no
# administrator rights) is separate, see README "Install".
param([switch]$NoAutostart, [switch]$NoStart)
$ErrorActionPreference = 'Stop'

$src = $PSScriptRoot
$dest = Join-Path $env:LOCALAPPDATA 'Programs\Tether'
New-Item -ItemType Directory -Force -Path $dest | Out-Null
# A running tray holds its exe open: stop it first (it is restarted below).
Get-Process -Name tether -ErrorAction SilentlyContinue | Where-Object { $_.Path -eq (Join-Path $dest 'tether.exe') } | Stop-Process -Force
foreach ($f in 'tether.exe', 'tetherd.exe', 'uninstall.ps1') {
    Copy-Item -Force (Join-Path $src $f) (Join-Path $dest $f)
}
$tray = Join-Path $dest 'tether.exe'

# tether://connect?relay=...&token=... opens the tray (one instance; a second
# launch hands the link to the first).
$cls = 'HKCU:\Software\Classes\tether'
New-Item -Force -Path "$cls\shell\open\command" | Out-Null
New-Item -Force -Path "$cls\DefaultIcon" | Out-Null
Set-ItemProperty -Path $cls -Name '(default)' -Value 'URL:Tether link'
Set-ItemProperty -Path $cls -Name 'URL Protocol' -Value ''
Set-ItemProperty -Path "$cls\DefaultIcon" -Name '(default)' -Value "`"$tray`",0"
Set-ItemProperty -Path "$cls\shell\open\command" -Name '(default)' -Value "`"$tray`" `"%1`""

if (-not $NoAutostart) {
    Set-ItemProperty -Path 'HKCU:\Software\Microsoft\Windows\CurrentVersion\Run' -Name 'Tether' -Value "`"$tray`""
}

$menu = Join-Path ([Environment]::GetFolderPath('Programs')) 'Tether.lnk'
$sh = New-Object -ComObject WScript.Shell
$lnk = $sh.CreateShortcut($menu)
$lnk.TargetPath = $tray
$lnk.Save()

# tetherd on PATH for this user.
$userPath = [Environment]::GetEnvironmentVariable('Path', 'User')
if (($userPath -split ';') -notcontains $dest) {
    [Environment]::SetEnvironmentVariable('Path', (($userPath, $dest) -ne '' -join ';'), 'User')
}

if (-not $NoStart) { Start-Process -FilePath $tray }
Write-Host "Tether installed in $dest. Uninstall: powershell -File `"$dest\uninstall.ps1`""

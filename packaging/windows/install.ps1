# Installs Tether for the current user, without administrator rights:
# copies tether.exe and tetherd.exe to %LOCALAPPDATA%\Programs\Tether,
# registers the tether:// link scheme under HKCU, starts the tray at login
# (the same HKCU Run value the tray's "Start at login" toggles), adds a
# Start menu shortcut, puts the folder on the user's PATH and starts the tray.
#   powershell -ExecutionPolicy Bypass -File .\install.ps1 [-NoAutostart] [-NoStart]
# The background engine (tetherd install: a per-user Scheduled Task, no
# administrator rights) is separate, see README "Install". Over an earlier
# install, its task is stopped while the files are replaced and started
# again afterwards.
# tether-setup_VERSION_windows_ARCH.exe (tether.nsi) does the same; keep
# them in step.
param([switch]$NoAutostart, [switch]$NoStart)
$ErrorActionPreference = 'Stop'

$src = $PSScriptRoot
$dest = Join-Path $env:LOCALAPPDATA 'Programs\Tether'
New-Item -ItemType Directory -Force -Path $dest | Out-Null

# runTetherd ARGS: runs the installed tetherd.exe; returns its exit code and
# output. Windows PowerShell turns a native program's stderr into errors,
# which 'Stop' would throw: collect them as text instead.
function runTetherd([string[]]$arguments) {
    $ErrorActionPreference = 'Continue'
    $out = & (Join-Path $dest 'tetherd.exe') @arguments 2>&1 | ForEach-Object { "$_" }
    return @{ Code = $LASTEXITCODE; Output = ($out -join "`n") }
}

# An update: the background engine (tetherd's Scheduled Task) runs the
# tetherd.exe about to be replaced. Stop it now, start it again below.
$taskInstalled = $false
if (Test-Path (Join-Path $dest 'tetherd.exe')) {
    $r = runTetherd @('stop')
    if ($r.Code -eq 0) {
        $taskInstalled = $true
        Write-Host 'Stopped the background engine (tetherd''s Scheduled Task).'
    } elseif ($r.Output -notmatch 'not installed') {
        # Installed, but stopping failed: say so; the copy below fails if
        # it still runs, and the task is started again after.
        $taskInstalled = $true
        Write-Warning "tetherd stop: $($r.Output)"
    }
}

# A running tray or tetherd holds its exe open: stop what runs from $dest
# (the tray is restarted below) and wait until it is gone.
Get-Process -Name tether, tetherd -ErrorAction SilentlyContinue |
    Where-Object { $_.Path -and $_.Path.StartsWith($dest + '\', [StringComparison]::OrdinalIgnoreCase) } |
    ForEach-Object { Stop-Process -InputObject $_ -Force; [void]$_.WaitForExit(10000) }

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

if ($taskInstalled) {
    $r = runTetherd @('start')
    if ($r.Code -ne 0) { Write-Warning "tetherd start: $($r.Output) (it starts at your next logon)" }
}

if (-not $NoStart) { Start-Process -FilePath $tray }
Write-Host "Tether installed in $dest. Uninstall: powershell -ExecutionPolicy Bypass -File `"$dest\uninstall.ps1`""

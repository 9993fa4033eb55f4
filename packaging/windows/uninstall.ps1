# Removes what install.ps1 (or tether-setup_*.exe) added, starting with
# tetherd's Scheduled Task (`tetherd uninstall`): left behind, it would start
# a deleted tetherd.exe at every logon. When that fails nothing else is
# removed, unless -Force. Your files (mcp.json, settings, logs in
# %APPDATA%\tether) and the token in Credential Manager stay; delete them by
# hand, or `tetherd token clear` first, if you want them gone.
#   powershell -ExecutionPolicy Bypass -File "$env:LOCALAPPDATA\Programs\Tether\uninstall.ps1" [-Force]
param([switch]$Force)
$ErrorActionPreference = 'Stop'
$dest = Join-Path $env:LOCALAPPDATA 'Programs\Tether'
$tetherd = Join-Path $dest 'tetherd.exe'

if (Test-Path $tetherd) {
    # Windows PowerShell turns a native program's stderr into errors, which
    # 'Stop' would throw: collect them as text instead.
    $ErrorActionPreference = 'Continue'
    $out = & $tetherd uninstall 2>&1 | ForEach-Object { "$_" }
    $code = $LASTEXITCODE
    $ErrorActionPreference = 'Stop'
    if ($out) { Write-Host ($out -join "`n") }
    if ($code -ne 0) {
        if (-not $Force) {
            Write-Host "tetherd uninstall failed (exit $code): its Scheduled Task stays. Nothing was removed."
            Write-Host 'Delete the task "Tether bridge (...)" in Task Scheduler and run this again, or run it with -Force.'
            exit 1
        }
        Write-Warning 'tetherd uninstall failed; -Force: removing the rest anyway (delete the task in Task Scheduler).'
    }
}

# Stop the tray and any tetherd running from $dest, and wait until they are gone.
Get-Process -Name tether, tetherd -ErrorAction SilentlyContinue |
    Where-Object { $_.Path -and $_.Path.StartsWith($dest + '\', [StringComparison]::OrdinalIgnoreCase) } |
    ForEach-Object { Stop-Process -InputObject $_ -Force; [void]$_.WaitForExit(10000) }

# The programs first: when one cannot be deleted, the rest stays as it is,
# so this script can run again.
foreach ($f in 'tether.exe', 'tetherd.exe') {
    $p = Join-Path $dest $f
    try {
        if (Test-Path $p) { Remove-Item -Force $p }
    } catch {
        Write-Host "Could not delete ${p}: $($_.Exception.Message)"
        Write-Host 'Close Tether and run this again. Tether was not removed.'
        exit 1
    }
}

Remove-Item -Recurse -Force -Path 'HKCU:\Software\Classes\tether' -ErrorAction SilentlyContinue
Remove-ItemProperty -Path 'HKCU:\Software\Microsoft\Windows\CurrentVersion\Run' -Name 'Tether' -ErrorAction SilentlyContinue
Remove-Item -Force (Join-Path ([Environment]::GetFolderPath('Programs')) 'Tether.lnk') -ErrorAction SilentlyContinue
$userPath = [Environment]::GetEnvironmentVariable('Path', 'User')
if (($userPath -split ';') -contains $dest) {
    [Environment]::SetEnvironmentVariable('Path', ((($userPath -split ';') | Where-Object { $_ -and $_ -ne $dest }) -join ';'), 'User')
}
# The setup .exe's entry in Settings > Apps (its Uninstall.exe goes with the folder).
Remove-Item -Recurse -Force -Path 'HKCU:\Software\Microsoft\Windows\CurrentVersion\Uninstall\Tether' -ErrorAction SilentlyContinue

Set-Location $env:TEMP
try {
    Remove-Item -Recurse -Force $dest
} catch {
    Write-Host "Tether is unregistered, but $dest could not be deleted: $($_.Exception.Message)"
    exit 1
}
Write-Host 'Tether removed.'

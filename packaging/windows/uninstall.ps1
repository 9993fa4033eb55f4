# Removes what install.ps1 added. Your files (mcp.json, settings, logs in
# %APPDATA%\tether) and the token in Credential Manager stay; delete them by
# hand, or `tetherd token clear` first, if you want them gone.
$ErrorActionPreference = 'Continue'
$dest = Join-Path $env:LOCALAPPDATA 'Programs\Tether'
Get-Process -Name tether -ErrorAction SilentlyContinue | Where-Object { $_.Path -eq (Join-Path $dest 'tether.exe') } | Stop-Process -Force
Remove-Item -Recurse -Force -Path 'HKCU:\Software\Classes\tether' -ErrorAction SilentlyContinue
Remove-ItemProperty -Path 'HKCU:\Software\Microsoft\Windows\CurrentVersion\Run' -Name 'Tether' -ErrorAction SilentlyContinue
Remove-Item -Force (Join-Path ([Environment]::GetFolderPath('Programs')) 'Tether.lnk') -ErrorAction SilentlyContinue
$userPath = [Environment]::GetEnvironmentVariable('Path', 'User')
[Environment]::SetEnvironmentVariable('Path', (($userPath -split ';') | Where-Object { $_ -and $_ -ne $dest }) -join ';', 'User')
Set-Location $env:TEMP
Remove-Item -Recurse -Force $dest
Write-Host 'Tether removed.'

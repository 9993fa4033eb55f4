; The Windows installer: per user, no administrator rights (NSIS 3; Debian's
; `nsis` package builds it on Linux). packaging/build.sh runs
;   makensis -WX -DVERSION=1.2.3 -DWINVERSION=1.2.3.0 -DARCH=amd64 \
;     -DSRC=<folder with tether.exe and tetherd.exe> -DOUT=<setup.exe> tether.nsi
; It does what install.ps1 does, and the uninstaller what uninstall.ps1 does
; (keep the three in step): %LOCALAPPDATA%\Programs\Tether, the tether://
; handler and start at login under HKCU, a Start menu shortcut, the folder
; on the user's PATH; plus an entry in Settings > Apps (HKCU Uninstall).
;   tether-setup.exe [/S] [/NoAutostart] [/NoStart] [/D=folder]
; /S installs silently; /NoAutostart leaves out start at login; /NoStart
; does not start the tray afterwards. Uninstall.exe [/S].
; An update stops the background engine's Scheduled Task (`tetherd stop`)
; and anything running from the folder before replacing the files, and
; starts the task again afterwards; the uninstaller removes the task
; (`tetherd uninstall`) before anything else.

!ifndef VERSION | WINVERSION | ARCH | SRC | OUT
	!error "define VERSION, WINVERSION, ARCH, SRC and OUT (see the top of this file)"
!endif

Unicode true
; x86 stub for both payloads: it runs on amd64 and arm64 Windows alike.
Target x86-unicode
RequestExecutionLevel user
ManifestDPIAware true
SetCompressor /SOLID lzma
AllowSkipFiles off
CRCCheck on

!include LogicLib.nsh
!include x64.nsh
!include FileFunc.nsh
!include WordFunc.nsh
!include StrFunc.nsh
!include WinMessages.nsh
!include MUI2.nsh

Name "Tether"
OutFile "${OUT}"
InstallDir "$LOCALAPPDATA\Programs\Tether"
BrandingText "Tether ${VERSION}"
ShowInstDetails show
ShowUninstDetails show

VIProductVersion "${WINVERSION}"
VIFileVersion "${WINVERSION}"
VIAddVersionKey /LANG=1033 "ProductName" "Tether"
VIAddVersionKey /LANG=1033 "CompanyName" "Tether"
VIAddVersionKey /LANG=1033 "FileDescription" "Tether ${VERSION} setup (${ARCH})"
VIAddVersionKey /LANG=1033 "FileVersion" "${VERSION}"
VIAddVersionKey /LANG=1033 "ProductVersion" "${VERSION}"
VIAddVersionKey /LANG=1033 "LegalCopyright" "Tether developers"

!define UNINSTKEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\Tether"
!define RUNKEY "Software\Microsoft\Windows\CurrentVersion\Run"
!define CLASSKEY "Software\Classes\tether"

!define MUI_ABORTWARNING
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

Var TaskInstalled

Function .onInit
	; The payload's architecture; Windows 11 on Arm runs amd64 programs too.
	!if "${ARCH}" == "arm64"
		${IfNot} ${IsNativeARM64}
			MessageBox MB_ICONSTOP "This is Tether for Windows on Arm (arm64). Use tether-setup_${VERSION}_windows_amd64.exe on this computer." /SD IDOK
			Abort
		${EndIf}
	!else
		${IfNot} ${IsNativeAMD64}
		${AndIfNot} ${IsNativeARM64}
			MessageBox MB_ICONSTOP "Tether needs 64-bit Windows." /SD IDOK
			Abort
		${EndIf}
	!endif
FunctionEnd

; StopProcesses: ends tether.exe and tetherd.exe started from $INSTDIR (a
; running exe cannot be replaced or deleted) and waits until they are gone.
; PowerShell, because only it matches processes by their path; the 64-bit
; one (through Sysnative from this 32-bit installer), because a 32-bit
; process cannot read a 64-bit process's path. The folder goes in through
; the environment, so no quoting can break.
!macro StopProcesses un
Function ${un}StopProcesses
	System::Call 'kernel32::SetEnvironmentVariable(t "TETHER_INSTDIR", t "$INSTDIR")i'
	StrCpy $0 "$WINDIR\Sysnative\WindowsPowerShell\v1.0\powershell.exe"
	${IfNot} ${FileExists} $0
		StrCpy $0 "$SYSDIR\WindowsPowerShell\v1.0\powershell.exe"
	${EndIf}
	; Exit 0 unless stopping one failed (no process at all is not an error).
	nsExec::ExecToLog `"$0" -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command "$$ErrorActionPreference = 'Stop'; $$d = $$env:TETHER_INSTDIR.TrimEnd([char]92) + [char]92; Get-Process -Name tether, tetherd -ErrorAction SilentlyContinue | Where-Object { $$_.Path -and $$_.Path.StartsWith($$d, [StringComparison]::OrdinalIgnoreCase) } | ForEach-Object { Stop-Process -InputObject $$_ -Force; [void]$$_.WaitForExit(10000) }; exit 0"`
	Pop $0
	${If} $0 != 0
		DetailPrint "Stopping Tether's running programs: powershell exit $0"
	${EndIf}
FunctionEnd
!macroend
!insertmacro StopProcesses ""
!insertmacro StopProcesses "un."

; EditPath: adds (+) or removes (-) $INSTDIR in the user's PATH
; (HKCU\Environment). NSIS strings hold ${NSIS_MAX_STRLEN} characters: a
; longer PATH cannot be read whole, so it is left alone (and said so)
; rather than cut.
!define /math PATHMAX ${NSIS_MAX_STRLEN} - 1
!macro EditPath un
Function ${un}EditPath
	Exch $R0 ; "+" or "-"
	Push $R1
	Push $R2
	Push $R3
	ClearErrors
	ReadRegStr $R1 HKCU "Environment" "Path"
	${If} ${Errors}
		; Missing, or too long to read: tell them apart by listing the values.
		StrCpy $R3 0
		${Do}
			EnumRegValue $R2 HKCU "Environment" $R3
			${If} $R2 == ""
				${Break}
			${EndIf}
			${If} $R2 == "Path"
				DetailPrint "Your PATH is too long to edit here: $(^Name) left it as it was ($R0 $INSTDIR by hand)."
				Goto done
			${EndIf}
			IntOp $R3 $R3 + 1
		${Loop}
		StrCpy $R1 ""
	${EndIf}
	; A read of NSIS_MAX_STRLEN-1 characters may have been cut; the result
	; of an addition must fit too.
	StrLen $R3 $R1
	${If} $R0 == "+"
		StrLen $R2 $INSTDIR
		IntOp $R3 $R3 + $R2
		IntOp $R3 $R3 + 1
	${EndIf}
	${If} $R3 >= ${PATHMAX}
		DetailPrint "Your PATH is too long to edit here: $(^Name) left it as it was ($R0 $INSTDIR by hand)."
		Goto done
	${EndIf}
	${${un}WordAdd} "$R1" ";" "$R0$INSTDIR" $R2
	${If} $R2 != $R1
		WriteRegExpandStr HKCU "Environment" "Path" $R2
		SendMessage ${HWND_BROADCAST} ${WM_SETTINGCHANGE} 0 "STR:Environment" /TIMEOUT=2000
	${EndIf}
done:
	Pop $R3
	Pop $R2
	Pop $R1
	Pop $R0
FunctionEnd
!macroend
!insertmacro EditPath ""
!insertmacro EditPath "un."

${StrStr}

Section "Tether"
	SetOutPath $INSTDIR
	; An update: stop the background engine (the Scheduled Task of `tetherd
	; install`) and whatever else runs from here, so the files can be
	; replaced; the task is started again below.
	StrCpy $TaskInstalled 0
	${If} ${FileExists} "$INSTDIR\tetherd.exe"
		nsExec::ExecToStack '"$INSTDIR\tetherd.exe" stop'
		Pop $0
		Pop $1
		${If} $0 == 0
			StrCpy $TaskInstalled 1
			DetailPrint "Stopped the background engine (tetherd's Scheduled Task)."
		${Else}
			${StrStr} $2 $1 "not installed"
			${If} $2 == ""
				; Installed, but stopping failed: say so, still start it after.
				StrCpy $TaskInstalled 1
				DetailPrint "tetherd stop: $1"
			${EndIf}
		${EndIf}
	${EndIf}
	Call StopProcesses

	File "${SRC}\tether.exe"
	File "${SRC}\tetherd.exe"
	WriteUninstaller "$INSTDIR\Uninstall.exe"

	; tether://connect?relay=...&token=... opens the tray (one instance; a
	; second launch hands the link to the first).
	WriteRegStr HKCU "${CLASSKEY}" "" "URL:Tether link"
	WriteRegStr HKCU "${CLASSKEY}" "URL Protocol" ""
	WriteRegStr HKCU "${CLASSKEY}\DefaultIcon" "" '"$INSTDIR\tether.exe",0'
	WriteRegStr HKCU "${CLASSKEY}\shell\open\command" "" '"$INSTDIR\tether.exe" "%1"'

	; Start at login: the same HKCU Run value the tray's "Start at login" toggles.
	${GetParameters} $R0
	ClearErrors
	${GetOptions} $R0 "/NoAutostart" $R1
	${If} ${Errors}
		WriteRegStr HKCU "${RUNKEY}" "Tether" '"$INSTDIR\tether.exe"'
	${EndIf}

	CreateShortcut "$SMPROGRAMS\Tether.lnk" "$INSTDIR\tether.exe"

	; tetherd on PATH for this user.
	Push "+"
	Call EditPath

	; Settings > Apps.
	WriteRegStr HKCU "${UNINSTKEY}" "DisplayName" "Tether"
	WriteRegStr HKCU "${UNINSTKEY}" "DisplayVersion" "${VERSION}"
	WriteRegStr HKCU "${UNINSTKEY}" "Publisher" "Tether"
	WriteRegStr HKCU "${UNINSTKEY}" "DisplayIcon" "$INSTDIR\tether.exe,0"
	WriteRegStr HKCU "${UNINSTKEY}" "InstallLocation" "$INSTDIR"
	WriteRegStr HKCU "${UNINSTKEY}" "UninstallString" '"$INSTDIR\Uninstall.exe"'
	WriteRegStr HKCU "${UNINSTKEY}" "QuietUninstallString" '"$INSTDIR\Uninstall.exe" /S'
	WriteRegStr HKCU "${UNINSTKEY}" "URLInfoAbout" "https://github.com/tether-dev/tether"
	WriteRegDWORD HKCU "${UNINSTKEY}" "NoModify" 1
	WriteRegDWORD HKCU "${UNINSTKEY}" "NoRepair" 1
	${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
	WriteRegDWORD HKCU "${UNINSTKEY}" "EstimatedSize" $0

	${If} $TaskInstalled == 1
		nsExec::ExecToLog '"$INSTDIR\tetherd.exe" start'
		Pop $0
	${EndIf}

	ClearErrors
	${GetOptions} $R0 "/NoStart" $R1
	${If} ${Errors}
		Exec '"$INSTDIR\tether.exe"'
	${EndIf}
	DetailPrint "Tether ${VERSION} is installed in $INSTDIR. The background engine at every logon (optional): tetherd install"
SectionEnd

Section "Uninstall"
	; The Scheduled Task first: left behind, it would start a deleted
	; tetherd.exe at every logon. `tetherd uninstall` exits 0 when there is
	; no task.
	${If} ${FileExists} "$INSTDIR\tetherd.exe"
		nsExec::ExecToStack '"$INSTDIR\tetherd.exe" uninstall'
		Pop $0
		Pop $1
		DetailPrint "$1"
		${If} $0 != 0
			${IfNot} ${Cmd} `MessageBox MB_YESNO|MB_ICONEXCLAMATION "Removing tetherd's Scheduled Task failed:$\r$\n$1$\r$\nRemove Tether anyway? The task would then fail at every logon until you delete it in Task Scheduler." /SD IDNO IDYES`
				SetErrorLevel 2
				Abort "Nothing was removed."
			${EndIf}
		${EndIf}
	${EndIf}
	Call un.StopProcesses

	; The programs first: if one cannot be deleted, everything else stays,
	; so this uninstaller can run again.
	ClearErrors
	Delete "$INSTDIR\tether.exe"
	Delete "$INSTDIR\tetherd.exe"
	${If} ${Errors}
		MessageBox MB_ICONSTOP "Could not delete the programs in $INSTDIR (still running?). Close Tether and run the uninstaller again." /SD IDOK
		SetErrorLevel 2
		Abort "Tether was not removed."
	${EndIf}

	DeleteRegKey HKCU "${CLASSKEY}"
	DeleteRegValue HKCU "${RUNKEY}" "Tether"
	Delete "$SMPROGRAMS\Tether.lnk"
	Push "-"
	Call un.EditPath
	; uninstall.ps1 is there when the zip's install.ps1 installed first.
	Delete "$INSTDIR\uninstall.ps1"
	Delete "$INSTDIR\Uninstall.exe"
	DeleteRegKey HKCU "${UNINSTKEY}"
	ClearErrors
	RMDir "$INSTDIR"
	${If} ${Errors}
		DetailPrint "$INSTDIR holds files Tether did not put there; it stays."
	${EndIf}
	DetailPrint "Tether is removed. Your settings, mcp.json and logs in %APPDATA%\tether and the token in Credential Manager stay (tetherd token clear removes the token)."
SectionEnd

//go:build windows

// This file compiles here (GOOS=windows go vet) but cannot run here: there is
// no Windows machine in this environment, so the job object, the suspended
// start and the cmd /c quoting are untested by running code.

package mcpchild

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

// procPlatform holds the job object that contains the child and everything
// it starts, and a handle on the child for waiting.
type procPlatform struct {
	job  windows.Handle
	proc windows.Handle
}

// setupCmd starts the child suspended (so it cannot start grandchildren
// before it is in the job object) and without a console window (a tray app
// would otherwise flash one per server). A .cmd/.bat command (npx is npx.cmd)
// cannot be started by CreateProcess directly; it runs through cmd.exe with a
// command line quoted for cmd's rules, not for CommandLineToArgvW's.
func setupCmd(cmd *exec.Cmd, path string, args []string) error {
	attr := &syscall.SysProcAttr{
		CreationFlags: windows.CREATE_SUSPENDED | windows.CREATE_NO_WINDOW | windows.CREATE_NEW_PROCESS_GROUP,
	}
	if ext := strings.ToLower(filepath.Ext(path)); ext == ".cmd" || ext == ".bat" {
		line, err := batCommandLine(path, args)
		if err != nil {
			return err
		}
		comspec := filepath.Join(os.Getenv("SystemRoot"), "System32", "cmd.exe")
		if os.Getenv("SystemRoot") == "" {
			comspec = "cmd.exe"
		}
		cmd.Path = comspec
		cmd.Args = []string{comspec}
		attr.CmdLine = line
	}
	cmd.SysProcAttr = attr
	return nil
}

// afterStart puts the suspended child in a job object that kills every
// process in it when the job's last handle closes (JOB_OBJECT_LIMIT_KILL_ON_
// JOB_CLOSE) -- so even a crash of the bridge takes the servers with it --
// and then lets the child run. Children of the child are in the job too.
func (p *process) afterStart() error {
	h, err := windows.OpenProcess(windows.PROCESS_SET_QUOTA|windows.PROCESS_TERMINATE|
		windows.PROCESS_QUERY_LIMITED_INFORMATION|windows.SYNCHRONIZE, false, uint32(p.Pid))
	if err != nil {
		return fmt.Errorf("open process: %w", err)
	}
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		windows.CloseHandle(h)
		return fmt.Errorf("create job object: %w", err)
	}
	info := windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION{}
	info.BasicLimitInformation.LimitFlags = windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
	if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		windows.CloseHandle(job)
		windows.CloseHandle(h)
		return fmt.Errorf("set job object limits: %w", err)
	}
	if err := windows.AssignProcessToJobObject(job, h); err != nil {
		windows.CloseHandle(job)
		windows.CloseHandle(h)
		return fmt.Errorf("assign process to job object: %w", err)
	}
	p.plat = procPlatform{job: job, proc: h}
	if err := resumeProcess(uint32(p.Pid)); err != nil {
		return fmt.Errorf("resume process: %w", err)
	}
	return nil
}

// resumeProcess resumes the threads of a process started with
// CREATE_SUSPENDED. exec does not hand out the main thread's handle, so the
// threads are found with a toolhelp snapshot (a new process has one).
func resumeProcess(pid uint32) error {
	snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPTHREAD, 0)
	if err != nil {
		return err
	}
	defer windows.CloseHandle(snap)
	var te windows.ThreadEntry32
	te.Size = uint32(unsafe.Sizeof(te))
	resumed := 0
	for err = windows.Thread32First(snap, &te); err == nil; err = windows.Thread32Next(snap, &te) {
		if te.OwnerProcessID != pid {
			continue
		}
		th, err := windows.OpenThread(windows.THREAD_SUSPEND_RESUME, false, te.ThreadID)
		if err != nil {
			return err
		}
		_, err = windows.ResumeThread(th)
		windows.CloseHandle(th)
		if err != nil {
			return err
		}
		resumed++
	}
	if resumed == 0 {
		return errors.New("no thread found")
	}
	return nil
}

// releasePlatform closes the job (killing anything left in it) and the
// process handle.
func (p *process) releasePlatform() {
	if p.plat.job != 0 {
		windows.CloseHandle(p.plat.job)
		p.plat.job = 0
	}
	if p.plat.proc != 0 {
		windows.CloseHandle(p.plat.proc)
		p.plat.proc = 0
	}
}

// canTerminate: a console-less child has no polite signal on Windows
// (GenerateConsoleCtrlEvent needs a shared console), so stop goes from
// "close stdin" straight to terminating the job.
func (p *process) canTerminate() bool { return false }

// signalGroup terminates every process in the job. The job handle, unlike a
// PID, cannot refer to anyone else.
func (p *process) signalGroup(stopSignal) error {
	if p.plat.job == 0 {
		return nil
	}
	return windows.TerminateJobObject(p.plat.job, 1)
}

// waitLeader waits on our handle of the child; the handle keeps the PID from
// being reused, so killing the rest of the job before cmd.Wait is safe.
func (p *process) waitLeader() bool {
	if p.plat.proc == 0 {
		return false
	}
	_, err := windows.WaitForSingleObject(p.plat.proc, windows.INFINITE)
	return err == nil
}

// killLeftovers terminates what is left in the job after the child exited.
func (p *process) killLeftovers() {
	if p.plat.job != 0 {
		_ = windows.TerminateJobObject(p.plat.job, 1)
	}
}

// exitFailure classifies an exit: Windows has no signals, a killed
// process has the exit code TerminateProcess was given.
func exitFailure(ps *os.ProcessState) Failure {
	return Failure{Kind: FailExited, ExitCode: ps.ExitCode()}
}

func exitDescription(ps *os.ProcessState) string {
	return fmt.Sprintf("exit status %d", ps.ExitCode())
}

// baseEnv on Windows is the process environment: Windows services and GUI
// apps get the user's PATH from the registry, there is no login shell.
func baseEnv(context.Context) []string { return os.Environ() }

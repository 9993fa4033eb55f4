package main

// Windows: tetherd as a per-user Scheduled Task; the task itself and every
// decision about it live in schtask.go (no build tag, tested on Linux with a
// fake runner). This file only connects them to schtasks.exe and to the
// current user. See docs/windows-service.md for why not an SCM service.
//
// Not runnable here (no Task Scheduler on the Linux CI machine):
// compile-checked with GOOS=windows go vet.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

func newServiceManager() (serviceManager, error) {
	u, err := user.Current()
	if err != nil {
		return nil, fmt.Errorf("find the current user: %w", err)
	}
	// On Windows, Uid is the user's SID string.
	return &schTask{user: taskUser{SID: u.Uid, Name: u.Username}, runner: execRunner{}, poll: 200 * time.Millisecond}, nil
}

// execRunner runs schtasks.exe for real.
type execRunner struct{}

func (execRunner) run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// serviceRun runs the engine for `tetherd run --service`. The Task Scheduler
// starts a plain process (no SCM handshake); `tetherd.exe` is a console
// program, so Windows gives it a console window in the user's session. When
// this process is that console's only user, detach from it so the window
// goes away (it may flash at logon); the engine logs to its file, not to
// stderr, when run as a service. `schtasks /End` terminates the process; the
// MCP servers go with it through their job object (mcpchild).
func serviceRun(ctx context.Context, run func(context.Context) error) error {
	if ownConsole() {
		if r, _, err := procFreeConsole.Call(); r == 0 {
			fmt.Fprintln(os.Stderr, "tetherd: detach from the console:", err)
		}
	}
	return run(ctx)
}

// x/sys/windows wraps neither call.
var (
	kernel32                  = windows.NewLazySystemDLL("kernel32.dll")
	procGetConsoleProcessList = kernel32.NewProc("GetConsoleProcessList")
	procFreeConsole           = kernel32.NewProc("FreeConsole")
)

// ownConsole says whether this process is alone on its console, i.e. the
// console was made for it rather than being a terminal someone typed in.
func ownConsole() bool {
	if err := procGetConsoleProcessList.Find(); err != nil {
		return false
	}
	var pids [2]uint32
	n, _, _ := procGetConsoleProcessList.Call(uintptr(unsafe.Pointer(&pids[0])), 2)
	return n == 1
}

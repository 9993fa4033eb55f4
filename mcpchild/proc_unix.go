//go:build linux || darwin

package mcpchild

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// procPlatform is per-OS state of a process; on unix the process group ID
// is the PID, so all there is to keep is whether the group is in the
// record that the next start reaps from (groups_unix.go).
type procPlatform struct {
	recorded bool
}

// setupCmd puts the child in a new process group whose ID is its PID, so
// that one kill(-pgid) reaches the wrapper (npx, uvx, sh -c) and everything
// it forked. A descendant that calls setsid/setpgid itself leaves the group;
// nothing short of cgroups could follow it, and MCP servers do not do that.
// On Linux the leader also dies with this process (setDeathSignal).
func setupCmd(cmd *exec.Cmd, _ string, _ []string) error {
	attr := &syscall.SysProcAttr{Setpgid: true}
	setDeathSignal(attr)
	cmd.SysProcAttr = attr
	return nil
}

// afterStart records the new group, so that if this process is killed
// before it can stop the child, the next start kills what is left of it.
func (p *process) afterStart() error {
	p.plat.recorded = recordGroup(p.Pid, p.log)
	return nil
}

// releasePlatform runs after the group was killed and the leader reaped:
// the group is no longer ours to reap later.
func (p *process) releasePlatform() {
	if p.plat.recorded {
		forgetGroup(p.Pid, p.log)
		p.plat.recorded = false
	}
}

// canTerminate: unix has SIGTERM.
func (p *process) canTerminate() bool { return true }

// signalGroup signals the whole group. Called with p.mu held and the leader
// not yet reaped, so the group ID is still ours.
func (p *process) signalGroup(sig stopSignal) error {
	s := syscall.SIGTERM
	if sig == sigKill {
		s = syscall.SIGKILL
	}
	err := syscall.Kill(-p.Pid, s)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// waitLeader blocks until the group leader has exited WITHOUT reaping it
// (waitid with WNOWAIT; Linux and macOS both have it). It returns true when
// that worked: the leader is then a zombie, which keeps its PID, and with it
// the process group ID, from being reused until cmd.Wait reaps it. That is
// the window in which reap kills what is left of the group.
//
// Why before the reap and not after: once the leader is reaped, its PID may
// be recycled. POSIX keeps a group ID unused while the group has members, so
// kill(-pgid) after the reap is safe when grandchildren remain; but when the
// group is empty the ID is free, and a new process that becomes a group
// leader under that PID would get our SIGKILL. Killing while the zombie pins
// the ID has no such window. If waitid is unavailable we fall back to
// reap-then-kill and accept that (microseconds wide) window.
func (p *process) waitLeader() bool {
	var info [128]byte // siginfo_t (128 bytes on Linux, 104 on macOS); content unused
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(p.Pid),
			uintptr(unsafe.Pointer(&info[0])), unix.WEXITED|unix.WNOWAIT, 0, 0)
		switch errno {
		case 0:
			return true
		case syscall.EINTR:
			continue
		default:
			p.log.Debug("waitid without reaping failed; reaping first", "err", errno)
			return false
		}
	}
}

// pPID is P_PID of waitid's idtype_t, 1 on both Linux and macOS.
const pPID = 1

// killLeftovers sends SIGKILL to the group after the leader exited. Errors
// are ignored: ESRCH just means the group is already empty.
func (p *process) killLeftovers() {
	_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
}

// exitFailure classifies a wait status: an exit status or a signal.
func exitFailure(ps *os.ProcessState) Failure {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return Failure{Kind: FailCrashed, Signal: int(ws.Signal())}
	}
	return Failure{Kind: FailExited, ExitCode: ps.ExitCode()}
}

// exitDescription renders a wait status as "exit status 3" or "killed by signal 9".
func exitDescription(ps *os.ProcessState) string {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Sprintf("killed by signal %d", int(ws.Signal()))
	}
	return fmt.Sprintf("exit status %d", ps.ExitCode())
}

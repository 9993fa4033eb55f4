package mcpchild

import "syscall"

// setDeathSignal asks the kernel to SIGKILL the child when the thread that
// started it exits (PR_SET_PDEATHSIG), so a kill -9 of tetherd takes every
// group leader with it. It covers only the leader: what the leader forked
// (a wrapper's background job) is re-parented instead, and is killed by the
// next start from the process group record (groups_unix.go).
//
// Pdeathsig follows the forking *thread*, not the process. That is safe
// here without runtime.LockOSThread: the Go runtime ends a thread only when
// a goroutine exits while locked to it, and startProcess runs on mcpchild's
// own goroutines, which never lock one. A caller that starts children from a
// goroutine that has locked its thread and then exits would kill them.
func setDeathSignal(attr *syscall.SysProcAttr) {
	attr.Pdeathsig = syscall.SIGKILL
}

//go:build unix

package main

import (
	"os"
	"unsafe"
)

// scrubArgv overwrites os.Args[i] in place with NUL bytes. On unix the Go
// runtime builds os.Args on the very bytes the kernel put on the stack
// without copying them, and /proc/PID/cmdline (Linux) and KERN_PROCARGS2
// (macOS, what ps reads) read those bytes from the process's memory: so
// after this a tether:// link, and the token in it, no longer shows in ps.
// It shortens the window, it does not close it: the link was readable from
// exec until now (a few milliseconds). Whoever holds os.Args[i] sees the
// NULs too, so callers keep a strings.Clone of the argument first.
func scrubArgv(i int) {
	if i <= 0 || i >= len(os.Args) || os.Args[i] == "" {
		return
	}
	b := unsafe.Slice(unsafe.StringData(os.Args[i]), len(os.Args[i]))
	clear(b)
}

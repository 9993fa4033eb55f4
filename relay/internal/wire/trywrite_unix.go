//go:build unix

package wire

import (
	"net"
	"syscall"
)

// tryWrite writes as much of p as the socket takes without blocking and
// returns how much that was; 0 when c is not a socket it can reach.
func tryWrite(c net.Conn, p []byte) int {
	sc, ok := c.(syscall.Conn)
	if !ok || len(p) == 0 {
		return 0
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	_ = rc.Write(func(fd uintptr) bool {
		for n < len(p) {
			m, err := syscall.Write(int(fd), p[n:])
			if err == syscall.EINTR {
				continue
			}
			if err != nil || m <= 0 {
				break
			}
			n += m
		}
		return true // never wait here: a full socket is left to Write and its deadline
	})
	return n
}

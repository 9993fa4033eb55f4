//go:build unix

package app

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// On Unix the control socket is guarded three times: the folder must be
// 0700 and ours (checked before listening), the socket file is 0600, and
// on Linux and macOS the kernel-reported uid of every connecting process
// must be ours (SO_PEERCRED, LOCAL_PEERCRED). The last one holds even if
// someone loosens the file modes later.

// checkControlDir refuses a socket folder that other users could enter or
// that belongs to someone else.
func checkControlDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("control socket folder: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("control socket folder %s is not a folder", dir)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("control socket folder %s: cannot read its owner", dir)
	}
	if uid := os.Getuid(); int(st.Uid) != uid {
		return fmt.Errorf("control socket folder %s belongs to uid %d, not to you (uid %d): use a folder of your own (set TETHER_HOME) or fix it with: chown %d %s", dir, st.Uid, uid, uid, dir)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("control socket folder %s has mode %#o, so other users could reach the control socket: fix it with: chmod 700 %s", dir, perm, dir)
	}
	return nil
}

// controlLock takes the per-user engine lock. held is true (and the file
// nil) when another engine has it. flock locks belong to the open file, so
// two engines in one process exclude each other too, and the kernel drops
// the lock when a crashed engine's process ends.
func controlLock(path string) (f *os.File, held bool, err error) {
	f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("open engine lock: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if errors.Is(err, unix.EWOULDBLOCK) {
		f.Close()
		return nil, true, nil
	}
	if err != nil {
		f.Close()
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	// The PID is for people and for the "does not answer" message only.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, false, nil
}

// controlUnlock releases the lock; the file stays, because removing a lock
// file races with the next engine opening it.
func controlUnlock(f *os.File) {
	if f == nil {
		return
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	f.Close()
}

// controlLockPID reads the PID the lock holder wrote, 0 if unknown.
func controlLockPID(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

// restrictControlSocket makes the socket file owner-only. It is created
// with the process umask; the 0700 folder already covers the short window.
func restrictControlSocket(path string) error {
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("restrict control socket: %w", err)
	}
	return nil
}

// controlPeerAllowed accepts a connection only from our own uid, where the
// OS reports the peer (controlPeerCred); elsewhere it accepts and the file
// modes are the guard. Failing to read the credentials refuses.
func controlPeerAllowed(conn net.Conn) error {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return fmt.Errorf("peer check: %T has no file descriptor", conn)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("peer check: %w", err)
	}
	var uid, pid int
	var known bool
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		uid, pid, known, credErr = controlPeerCred(int(fd))
	}); err != nil {
		return fmt.Errorf("peer check: %w", err)
	}
	if credErr != nil {
		return fmt.Errorf("peer check: read peer credentials: %w", credErr)
	}
	if !known {
		return nil
	}
	return checkPeerUID(uid, pid, os.Getuid())
}

// checkPeerUID is the rule itself: only the same uid may drive the engine
// (root included: root is another user here).
func checkPeerUID(uid, pid, want int) error {
	if uid != want {
		return fmt.Errorf("peer uid %d (pid %d) is not the engine's uid %d", uid, pid, want)
	}
	return nil
}

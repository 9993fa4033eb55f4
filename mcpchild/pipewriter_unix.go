//go:build unix

package mcpchild

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// nonblockingWrite returns a write that never waits: os.Pipe's write end is
// in non-blocking mode (Go polls it), so writev returns EAGAIN, or writes
// part, when the pipe is full; the runtime's poller is never asked to wait.
// The returned func is for one caller at a time (pipeWriter's owner); its
// state lives in one struct so a call allocates nothing.
func nonblockingWrite(f *os.File) func([][]byte) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	w := &nbWriter{rc: rc, name: f.Name()}
	w.fn = w.writev
	return w.write
}

type nbWriter struct {
	rc   syscall.RawConn
	name string
	fn   func(fd uintptr) bool
	bufs [][]byte
	n    int
	err  error
}

func (w *nbWriter) write(bufs [][]byte) (int, error) {
	w.bufs = bufs
	err := w.rc.Write(w.fn)
	w.bufs = nil
	if err != nil {
		return 0, err
	}
	if w.err != nil {
		return 0, &os.PathError{Op: "write", Path: w.name, Err: w.err}
	}
	return w.n, nil
}

func (w *nbWriter) writev(fd uintptr) bool {
	for {
		w.n, w.err = unix.Writev(int(fd), w.bufs)
		if w.err != unix.EINTR {
			break
		}
	}
	if w.err == unix.EAGAIN {
		w.n, w.err = 0, nil
	}
	return true // done, whatever happened: never wait here
}

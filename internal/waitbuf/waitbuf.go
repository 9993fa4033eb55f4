// Package waitbuf captures a process's output so that tests and the
// benchmark harness can wait for a line to appear — on an event, never by
// sleeping and looking again.
package waitbuf

import (
	"bytes"
	"sync"
)

// Buffer is a goroutine-safe io.Writer. Its zero value is ready to use and
// keeps everything; Bounded keeps only the tail of a chatty process.
type Buffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on every Write
	max     int           // 0: unbounded
}

// Bounded returns a Buffer that, past max bytes, keeps the last quarter.
func Bounded(max int) *Buffer { return &Buffer{max: max} }

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.max > 0 && b.buf.Len() > b.max {
		keep := b.buf.Bytes()[b.buf.Len()-b.max/4:]
		b.buf = *bytes.NewBuffer(append([]byte(nil), keep...))
	}
	b.buf.Write(p)
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
	return len(p), nil
}

// Snapshot returns the output so far and a channel closed at the next Write.
func (b *Buffer) Snapshot() (string, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed == nil {
		b.changed = make(chan struct{})
	}
	return b.buf.String(), b.changed
}

func (b *Buffer) String() string { s, _ := b.Snapshot(); return s }

// Len is the number of bytes held.
func (b *Buffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

package mcpchild

import (
	"io"
	"sync"
)

// pipeWriter writes newline-delimited messages to a child's stdin without
// ever making the caller wait for the child.
//
// Why: Session.Handle runs on the bridge's relay read loop (app), so a write
// that blocked because a slow child stopped reading (a pipe holds 64 KiB)
// would stall every other session. And writing each message with its own
// syscall wastes the pipe under load.
//
// How: whoever finds the pipe free becomes its writer and writes, without
// blocking (tryWrite), its own message and then whatever others queued
// meanwhile, in one syscall per batch; the others only append to the queue
// and return. When the pipe is full, a drain goroutine takes over the queue
// and waits for the child; until the queue is empty again every write just
// queues. Bytes reach the pipe in the order write was called.
//
// The queue is unbounded, as the relay bounds what it sends (request
// timeouts and body limits); a child that never reads is restarted by no one
// here, but it costs only memory, never a stalled caller.
type pipeWriter struct {
	w io.Writer // the pipe, for the drain goroutine's blocking writes
	// try writes what it can of bufs without blocking and returns how many
	// bytes went; nil where the platform has no such write (every write
	// then goes through the drain goroutine).
	try func(bufs [][]byte) (int, error)

	mu      sync.Mutex
	pending []byte // queued bytes, newline-terminated messages in order
	spare   []byte // the other batch buffer, reused
	busy    bool   // a writer (a caller or the drain goroutine) owns the pipe
	held    bool   // see hold: writes queue until release
	err     error  // sticky: the pipe failed, the child is gone
	iov     [2][]byte
}

// maxCombineRounds bounds how many batches a caller writes for others
// before handing the rest to the drain goroutine.
const maxCombineRounds = 4

// keepBuffer is the largest batch buffer kept for reuse: a one-off huge
// message should not pin its memory.
const keepBuffer = 1 << 20

var newline = []byte{'\n'}

func newPipeWriter(w io.Writer, try func([][]byte) (int, error)) *pipeWriter {
	return &pipeWriter{w: w, try: try}
}

// write queues msg and a newline, writing them at once when the pipe is free
// and has room. It returns the pipe's error once the pipe failed; bytes
// queued before a failure are lost with the child (its death fails every
// pending request).
func (p *pipeWriter) write(msg []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	if p.busy || p.try == nil || p.held {
		p.pending = append(append(p.pending, msg...), '\n')
		if !p.busy && !p.held {
			p.busy = true
			go p.drain()
		}
		return nil
	}
	p.busy = true
	// p.iov holds the batch so that passing it to try allocates nothing;
	// only the owner touches it, and clears it before letting go.
	p.iov = [2][]byte{msg, newline}
	return p.own(p.iov[:], 0)
}

// hold makes writes queue without writing until release, for a caller that
// knows more messages follow at once (the bridge's relay reader with more
// frames already read): they then leave in one syscall, not one each. A
// drain already under way keeps writing what queues. The holder must call
// release, promptly.
func (p *pipeWriter) hold() {
	p.mu.Lock()
	p.held = true
	p.mu.Unlock()
}

// release ends hold and writes what queued meanwhile, the way write does.
func (p *pipeWriter) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held = false
	if p.busy || p.err != nil || len(p.pending) == 0 {
		return // nothing queued, or its writer is already at work
	}
	p.busy = true
	if p.try == nil {
		go p.drain()
		return
	}
	p.iov[0] = p.takePending()
	p.own(p.iov[:1], 1)
}

// own writes bufs as the pipe's owner (p.busy set by the caller, p.mu
// held), then whatever others queued meanwhile, for at most
// maxCombineRounds batches; what the pipe cannot take at once goes to the
// drain goroutine. A batch from round 1 on is a queue buffer, recycled
// once written.
func (p *pipeWriter) own(bufs [][]byte, round int) error {
	for ; ; round++ {
		p.mu.Unlock()
		n, err := p.try(bufs)
		p.mu.Lock()
		if err != nil {
			p.iov = [2][]byte{}
			p.fail(err)
			return err
		}
		if rest := drop(bufs, n); len(rest) > 0 {
			// The pipe is full: the child is behind. What is left goes
			// first, then what others queued; the drain goroutine waits.
			var q []byte
			for _, b := range rest {
				q = append(q, b...)
			}
			p.iov = [2][]byte{}
			p.pending = append(q, p.pending...)
			go p.drain()
			return nil
		}
		if round > 0 {
			p.recycle(bufs[0])
		}
		p.iov = [2][]byte{}
		if len(p.pending) == 0 {
			p.busy = false
			return nil
		}
		if round+1 == maxCombineRounds {
			go p.drain()
			return nil
		}
		p.iov[0] = p.takePending()
		bufs = p.iov[:1]
	}
}

// drain writes the queue with blocking writes until it is empty. It runs
// while p.busy, and clears it.
func (p *pipeWriter) drain() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.err == nil && len(p.pending) > 0 {
		batch := p.takePending()
		p.mu.Unlock()
		_, err := p.w.Write(batch)
		p.mu.Lock()
		if err != nil {
			p.fail(err)
			return
		}
		p.recycle(batch)
	}
	p.busy = false
}

// takePending returns the queue as a batch to write and starts a new queue
// in the spare buffer. Caller holds p.mu.
func (p *pipeWriter) takePending() []byte {
	batch := p.pending
	p.pending = p.spare[:0]
	p.spare = nil
	return batch
}

// recycle keeps a written batch buffer for the next batch. Caller holds p.mu.
func (p *pipeWriter) recycle(b []byte) {
	if cap(b) <= keepBuffer {
		p.spare = b[:0]
	}
}

// fail records the pipe's failure and drops the queue. Caller holds p.mu.
func (p *pipeWriter) fail(err error) {
	p.err = err
	p.pending, p.spare = nil, nil
	p.busy = false
}

// drop returns bufs without its first n bytes.
func drop(bufs [][]byte, n int) [][]byte {
	for len(bufs) > 0 && n >= len(bufs[0]) {
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	if len(bufs) > 0 && n > 0 {
		bufs = append([][]byte{bufs[0][n:]}, bufs[1:]...)
	}
	return bufs
}

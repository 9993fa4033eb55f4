package wire

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

var (
	// ErrClosed: the Conn was closed. Send returns it as is when the Conn
	// was closed before the call, and wrapped when its own write failed
	// (the failure closes the Conn through Config.Fail).
	ErrClosed = errors.New("connection closed")
	// ErrQueueFull: the queue stayed full for Config.QueueWait.
	ErrQueueFull = errors.New("send queue full")
)

// maxBatch bounds the messages written between cork and uncork, so a pong
// or close frame written meanwhile by another goroutine waits for at most
// this many.
const maxBatch = 64

// Config is one side's writing policy. Zero values switch a feature off,
// except where said.
type Config struct {
	// WriteWait is the deadline of every data write; a batch shares one.
	WriteWait time.Duration
	// Queue is the length of the bounded queue (at least 1).
	Queue int
	// QueueWait bounds how long Send waits for room in a full queue; zero
	// waits until ctx ends or the Conn closes.
	QueueWait time.Duration
	// InlineMax is the largest message Send writes on the caller's
	// goroutine; zero means any size.
	InlineMax int
	// BusyGap: a socket written less than this long ago is busy, and Send
	// queues rather than writes inline, so a burst is batched. Zero never
	// counts the socket busy.
	BusyGap time.Duration
	// Keepalive, if set, is called from Run KeepaliveFirst after Run starts
	// and then again after each duration it returns. It may write control
	// frames (pings). An error ends Run and goes to Fail.
	Keepalive      func(now time.Time) (next time.Duration, err error)
	KeepaliveFirst time.Duration
	// Wrote, if set, is called with the size of every data message written.
	Wrote func(n int)
	// Fail is called (required) when a write fails, with the cause; it must
	// close the Conn (Close) and the socket.
	Fail func(err error)
}

// Conn writes data messages to one WebSocket. Send and TrySend are safe
// from any goroutine; Run is the one loop that drains the queue.
type Conn struct {
	ws   *websocket.Conn
	cork *CorkConn // the socket's connection; nil when it could not be wrapped
	cfg  Config

	queue chan Message
	done  chan struct{}
	once  sync.Once
	err   error // why the Conn closed; written once, before done closes

	// wmu is held by whoever writes a data message: an inline Send or Run
	// (gorilla allows one writer at a time).
	wmu sync.Mutex
	// queued counts messages handed to the queue and not yet written. An
	// inline write happens only when it is zero (checked under wmu), so it
	// never overtakes a message queued before it.
	queued atomic.Int64
	// lastWrite is when the last inline write or batch started, in Unix
	// nanoseconds; kept only when cfg.BusyGap is set.
	lastWrite atomic.Int64
}

// New returns a Conn writing to ws, whose connection is cork (nil: no
// batching into one syscall). Nothing is written until Send or Run.
func New(ws *websocket.Conn, cork *CorkConn, cfg Config) *Conn {
	return &Conn{ws: ws, cork: cork, cfg: cfg, queue: make(chan Message, max(cfg.Queue, 1)), done: make(chan struct{})}
}

// Close marks the Conn closed with cause err: every Send fails from now on
// and Run returns. It reports whether this call closed it (the first does);
// the socket itself is the caller's to close.
func (c *Conn) Close(err error) bool {
	first := false
	c.once.Do(func() {
		c.err = err
		close(c.done)
		first = true
	})
	return first
}

// Done is closed once the Conn is closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Closed reports whether the Conn is closed.
func (c *Conn) Closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Err is the cause given to the first Close; nil while the Conn is open.
func (c *Conn) Err() error {
	if !c.Closed() {
		return nil
	}
	return c.err
}

// Send writes m. With inline set, when no other write is in progress or
// queued (and the socket is not busy, see Config), m is written right here,
// on the caller's goroutine: a hand-off to Run costs two goroutine
// switches. Otherwise m joins the queue, in order, and Run writes it in its
// next batch. Messages from one goroutine thus stay in order.
//
// An inline write is bounded by WriteWait, not by ctx (a write cut short
// would leave half a message on the socket). A queued message waits only
// while the queue is full: until ctx ends (ctx.Err()), the Conn closes
// (ErrClosed) or QueueWait passes (ErrQueueFull).
func (c *Conn) Send(ctx context.Context, m Message, inline bool) error {
	if c.Closed() {
		return ErrClosed
	}
	if inline && (c.cfg.InlineMax == 0 || m.Len() <= c.cfg.InlineMax) &&
		c.queued.Load() == 0 && !c.busy() && c.wmu.TryLock() {
		if c.queued.Load() == 0 {
			now := time.Now()
			c.ws.SetWriteDeadline(now.Add(c.cfg.WriteWait))
			err := m.writeTo(c.ws)
			if c.cfg.BusyGap > 0 {
				c.lastWrite.Store(now.UnixNano())
			}
			c.wmu.Unlock()
			if err != nil {
				err = fmt.Errorf("write: %w", err)
				c.cfg.Fail(err)
				return fmt.Errorf("%w: %w", ErrClosed, err)
			}
			if c.cfg.Wrote != nil {
				c.cfg.Wrote(m.Len())
			}
			return nil
		}
		c.wmu.Unlock()
	}
	c.queued.Add(1)
	select {
	case c.queue <- m:
		return nil
	default:
	}
	var expired <-chan time.Time
	if c.cfg.QueueWait > 0 {
		t := time.NewTimer(c.cfg.QueueWait)
		defer t.Stop()
		expired = t.C
	}
	select {
	case c.queue <- m:
		return nil
	case <-c.done:
		c.queued.Add(-1)
		return ErrClosed
	case <-ctx.Done():
		c.queued.Add(-1)
		return ctx.Err()
	case <-expired:
		c.queued.Add(-1)
		return ErrQueueFull
	}
}

// TrySend queues m for Run without waiting; when the queue is full (or the
// Conn closed) m is dropped and TrySend reports false. It is for messages
// a read loop sends on its own, which must not stall it.
func (c *Conn) TrySend(m Message) bool {
	if c.Closed() {
		return false
	}
	c.queued.Add(1)
	select {
	case c.queue <- m:
		return true
	default:
		c.queued.Add(-1)
		return false
	}
}

// busy reports whether the socket was written within BusyGap.
func (c *Conn) busy() bool {
	gap := c.cfg.BusyGap
	return gap > 0 && time.Now().UnixNano()-c.lastWrite.Load() < int64(gap)
}

// Run writes the queued messages and runs the keepalive until the Conn
// closes or a write fails (then Fail has the cause). Messages queued
// together go out together: Run corks the connection, writes until the
// queue is empty (or a batch is big), and uncorks, so a burst costs one
// syscall rather than one each.
func (c *Conn) Run() {
	var keepalive *time.Timer
	var tick <-chan time.Time // nil without a keepalive: never ready
	if c.cfg.Keepalive != nil {
		keepalive = time.NewTimer(c.cfg.KeepaliveFirst)
		defer keepalive.Stop()
		tick = keepalive.C
	}
	for {
		select {
		case m := <-c.queue:
			c.wmu.Lock()
			if c.cfg.BusyGap > 0 {
				c.lastWrite.Store(time.Now().UnixNano())
			}
			err := c.writeBatch(m)
			c.wmu.Unlock()
			if err != nil {
				c.cfg.Fail(fmt.Errorf("write: %w", err))
				return
			}
		case now := <-tick:
			next, err := c.cfg.Keepalive(now)
			if err != nil {
				c.cfg.Fail(err)
				return
			}
			keepalive.Reset(next)
		case <-c.done:
			return
		}
	}
}

// writeBatch writes m and whatever else is queued meanwhile, corked, and
// always uncorks: a pong or close frame written by another goroutine may be
// held in there. The caller holds wmu.
func (c *Conn) writeBatch(m Message) (err error) {
	deadline := time.Now().Add(c.cfg.WriteWait)
	if c.cork != nil {
		c.cork.Cork()
		defer func() {
			if uerr := c.cork.Uncork(deadline); err == nil {
				err = uerr
			}
		}()
	}
	for n := 1; ; n++ {
		c.ws.SetWriteDeadline(deadline)
		err := m.writeTo(c.ws)
		c.queued.Add(-1)
		if err != nil {
			return err
		}
		if c.cfg.Wrote != nil {
			c.cfg.Wrote(m.Len())
		}
		if n >= maxBatch || len(c.queue) == 0 {
			return nil
		}
		m = <-c.queue // only Run receives, so this does not block
	}
}

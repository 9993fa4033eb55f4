package wire

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// corkMax bounds what a corked connection holds before it writes anyway.
const corkMax = 64 << 10

// CorkConn is a net.Conn whose writes can be held back and sent together,
// and whose deadlines cost no timer while they are not needed.
//
// Corking: gorilla/websocket writes every WebSocket frame with its own Write
// call, one syscall each; a writer loop with several frames queued corks the
// connection, writes them all, and uncorks, which sends them in one.
// Uncorked, writes go straight through, so control frames written from other
// goroutines (pongs, close) are not delayed. Corked, they wait for the Uncork
// that ends the batch, which the writer loop does as soon as its queue is
// empty.
//
// Lazy deadlines: every deadline change on a Go connection re-arms a runtime
// timer, and a timer moved later still wakes the process at its old time.
// An idle bridge sets a write deadline for every ping and pong and pushes
// its read deadline on every frame, so it woke several times per keepalive
// round for nothing. CorkConn keeps the deadlines it is given and arms them
// only when they can matter: a write first tries the socket without
// blocking and arms the write deadline only if the socket is full; a read
// arms the read deadline once, and when it expires re-arms it at the latest
// deadline asked for, failing only when that one has passed too. Reads and
// writes still fail exactly when their deadline says.
type CorkConn struct {
	net.Conn

	mu     sync.Mutex // serialises writes and guards the write side
	corked bool
	buf    []byte
	wdl    time.Time // the write deadline asked for

	rmu   sync.Mutex
	rdl   time.Time // the read deadline asked for
	armed time.Time // the read deadline set on Conn

	beforeRead func() // see SetBeforeRead
}

// SetBeforeRead makes every Read call f first. Layers above (gorilla's
// buffer, TLS) read the connection only once they have handed on all they
// held, so f runs when the reader is about to wait for new bytes. Set it
// before the first Read; only the one reading goroutine calls it.
func (c *CorkConn) SetBeforeRead(f func()) { c.beforeRead = f }

// NewCorkConn wraps c.
func NewCorkConn(c net.Conn) *CorkConn { return &CorkConn{Conn: c} }

// SetDeadline sets both deadlines, lazily.
func (c *CorkConn) SetDeadline(t time.Time) error {
	c.SetWriteDeadline(t)
	return c.SetReadDeadline(t)
}

// SetWriteDeadline records t for the writes that follow; see CorkConn.
func (c *CorkConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.wdl = t
	c.mu.Unlock()
	return nil
}

// SetReadDeadline records t; the connection's own deadline is moved only
// when t is earlier than the armed one (or clears it). See CorkConn.
func (c *CorkConn) SetReadDeadline(t time.Time) error {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.rdl = t
	if t.IsZero() || c.armed.IsZero() || t.Before(c.armed) {
		c.armed = t
		return c.Conn.SetReadDeadline(t)
	}
	return nil
}

// Read reads from the connection. When the armed deadline expires but a
// later one was asked for meanwhile, it re-arms and reads on: a read that
// timed out returned no data, so nothing is lost.
func (c *CorkConn) Read(p []byte) (int, error) {
	if c.beforeRead != nil {
		c.beforeRead()
	}
	for {
		n, err := c.Conn.Read(p)
		if n > 0 || err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		c.rmu.Lock()
		want := c.rdl
		if want.IsZero() || !time.Now().Before(want) {
			c.rmu.Unlock()
			return n, err
		}
		c.armed = want
		serr := c.Conn.SetReadDeadline(want)
		c.rmu.Unlock()
		if serr != nil {
			return n, err
		}
	}
}

// Write sends p now, or, while corked, adds it to the held bytes (sending
// them first when they would exceed corkMax). The write deadline is the one
// gorilla set for this frame.
func (c *CorkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return c.writeNow(p)
	}
	if len(c.buf)+len(p) <= corkMax {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	if len(c.buf) == 0 {
		return c.writeNow(p)
	}
	_, err := c.writeNow(c.buf)
	c.resetBuf()
	if err != nil {
		return 0, err
	}
	return c.writeNow(p)
}

// writeNow writes p: without blocking if the socket takes it all, else with
// the write deadline armed for the rest. The caller holds c.mu.
func (c *CorkConn) writeNow(p []byte) (int, error) {
	n := tryWrite(c.Conn, p)
	if n == len(p) {
		return n, nil
	}
	c.Conn.SetWriteDeadline(c.wdl)
	m, err := c.Conn.Write(p[n:])
	return n + m, err
}

// Cork holds writes back until Uncork.
func (c *CorkConn) Cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// Uncork sends what is held, with deadline, and lets later writes through.
func (c *CorkConn) Uncork(deadline time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	if len(c.buf) == 0 {
		return nil
	}
	c.wdl = deadline
	_, err := c.writeNow(c.buf)
	c.resetBuf()
	return err
}

// resetBuf empties the held bytes, dropping a buffer that grew big.
func (c *CorkConn) resetBuf() {
	if cap(c.buf) > corkMax*2 {
		c.buf = nil
	} else {
		c.buf = c.buf[:0]
	}
}

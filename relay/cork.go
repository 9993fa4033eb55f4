package relay

import (
	"net"
	"sync"
	"time"
)

// corkMax bounds what a corked connection holds before it writes anyway.
const corkMax = 64 << 10

// CorkConn is a net.Conn whose writes can be held back and sent together.
// gorilla/websocket writes every WebSocket frame with its own Write call,
// one syscall each; a writer loop with several frames queued corks the
// connection, writes them all, and uncorks, which sends them in one.
//
// Uncorked, it is the plain connection: writes go straight through, so
// control frames written from other goroutines (pongs, close) are not
// delayed. Corked, they wait for the Uncork that ends the batch, which the
// writer loop does as soon as its queue is empty.
type CorkConn struct {
	net.Conn

	mu     sync.Mutex
	corked bool
	buf    []byte
}

// NewCorkConn wraps c.
func NewCorkConn(c net.Conn) *CorkConn { return &CorkConn{Conn: c} }

// Write sends p now, or, while corked, adds it to the held bytes (sending
// them first when they would exceed corkMax). The write deadline is the
// connection's, as gorilla set it for this frame.
func (c *CorkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return c.Conn.Write(p)
	}
	if len(c.buf)+len(p) <= corkMax {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	if len(c.buf) == 0 {
		return c.Conn.Write(p)
	}
	bufs := net.Buffers{c.buf, p}
	n, err := bufs.WriteTo(c.Conn)
	sent := int(n) - len(c.buf)
	c.buf = c.buf[:0]
	if err != nil {
		return max(sent, 0), err
	}
	return len(p), nil
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
	c.Conn.SetWriteDeadline(deadline)
	_, err := c.Conn.Write(c.buf)
	if cap(c.buf) > corkMax*2 {
		c.buf = nil
	} else {
		c.buf = c.buf[:0]
	}
	return err
}

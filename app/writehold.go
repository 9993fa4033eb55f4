package app

import (
	"sync"

	"github.com/tether-dev/tether/mcpchild"
)

// writeHolds batches what the relay's read loop writes to children.
//
// The read loop hands each frame's message to its child on the spot (see
// session), and a stdio child's stdin write would then be one syscall per
// message. Under load frames arrive in bursts (one socket read brings
// several), so the read loop holds each child's writes while it works
// through what it has already read, and releases them all when it is about
// to wait for the socket (relay.ClientOptions.BeforeWait): a burst of N
// requests for a child costs one write to its pipe. A lone request is
// written as soon as its frame is handled, as before.
type writeHolds struct {
	mu   sync.Mutex
	held []heldChild
}

type heldChild struct {
	c       *mcpchild.Child
	release func()
}

// hold holds c's writes until releaseAll, if they are not held already.
func (h *writeHolds) hold(c *mcpchild.Child) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, hc := range h.held {
		if hc.c == c {
			return
		}
	}
	if release := c.HoldWrites(); release != nil {
		h.held = append(h.held, heldChild{c, release})
	}
}

// releaseAll writes everything held, child by child.
func (h *writeHolds) releaseAll() {
	h.mu.Lock()
	if len(h.held) == 0 {
		h.mu.Unlock()
		return
	}
	held := h.held
	h.held = nil
	h.mu.Unlock()
	for _, hc := range held {
		hc.release()
	}
}

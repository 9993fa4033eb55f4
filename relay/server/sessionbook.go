package server

import (
	"context"
	"sync"
	"time"
)

// sessionBook is what this relay process remembers of 2025-era sessions
// that are not live on a bridge socket: the ones that ended (DELETE, idle
// timeout), so a signed id is not resurrected while it is still valid, and
// the ones whose socket went away, so their idle clock keeps running while
// the bridge reconnects.
//
// Entries are keyed by a hash of the id and dropped when the id itself
// expires. The book is bounded (maxBookEntries); when it is full of
// unexpired entries the ones that expire first are dropped, and such a
// dropped ended id could be resumed again — by its own client only, within
// its own expiry.
//
// The book lives in one process. After a relay restart, or on another
// replica, an ended or idle id is refused only by its expiry (the token's
// expiry or Server.SessionMaxAge, whichever is first). A deployment that
// needs DELETE to hold across replicas needs a shared store.
type sessionBook struct {
	mu      sync.Mutex
	entries map[[32]byte]bookEntry
}

type bookEntry struct {
	expires  time.Time // the id's own expiry: after it, the entry is moot
	lastUsed time.Time // for a parked session
	ended    bool
}

// maxBookEntries bounds the book: 64 Ki entries of about 80 bytes.
const maxBookEntries = 1 << 16

// end records that id ended; it cannot be resumed before it expires.
func (k *sessionBook) end(id string, expires time.Time) {
	k.put(sessionHash(id), bookEntry{expires: expires, ended: true})
}

// park records a live session whose socket went away.
func (k *sessionBook) park(id string, expires, lastUsed time.Time) {
	h := sessionHash(id)
	k.mu.Lock()
	defer k.mu.Unlock()
	if e, ok := k.entries[h]; ok && e.ended {
		return
	}
	k.putLocked(h, bookEntry{expires: expires, lastUsed: lastUsed})
}

// take decides whether id may be resumed now and forgets a parked entry
// (the resumed session keeps its own clock from here): false when it
// ended, or was parked and has been idle longer than idle.
func (k *sessionBook) take(id string, now time.Time, idle time.Duration) bool {
	h := sessionHash(id)
	k.mu.Lock()
	defer k.mu.Unlock()
	e, ok := k.entries[h]
	switch {
	case !ok:
		return true
	case e.ended:
		return false
	case now.Sub(e.lastUsed) > idle:
		e.ended = true
		k.entries[h] = e
		return false
	}
	delete(k.entries, h)
	return true
}

// ended reports whether id ended here (DELETE, idle, evicted); unlike
// take it changes nothing.
func (k *sessionBook) ended(id string) bool {
	h := sessionHash(id)
	k.mu.Lock()
	defer k.mu.Unlock()
	e, ok := k.entries[h]
	return ok && e.ended
}

func (k *sessionBook) put(h [32]byte, e bookEntry) {
	k.mu.Lock()
	k.putLocked(h, e)
	k.mu.Unlock()
}

func (k *sessionBook) putLocked(h [32]byte, e bookEntry) {
	if k.entries == nil {
		k.entries = make(map[[32]byte]bookEntry)
	}
	if _, ok := k.entries[h]; !ok && len(k.entries) >= maxBookEntries {
		k.pruneLocked(time.Now())
	}
	k.entries[h] = e
}

// pruneLocked drops expired entries and, if that is not enough, the
// eighth of the book that expires first.
func (k *sessionBook) pruneLocked(now time.Time) {
	for h, e := range k.entries {
		if !now.Before(e.expires) {
			delete(k.entries, h)
		}
	}
	if len(k.entries) < maxBookEntries {
		return
	}
	// Cheap approximation of "earliest first": the cut-off is the mean
	// expiry, applied until an eighth is gone.
	var sum int64
	for _, e := range k.entries {
		sum += e.expires.Unix() / int64(len(k.entries))
	}
	cut := time.Unix(sum, 0)
	goal := len(k.entries) - maxBookEntries/8
	for h, e := range k.entries {
		if len(k.entries) <= goal {
			return
		}
		if !e.expires.After(cut) {
			delete(k.entries, h)
		}
	}
	for h := range k.entries { // all expire alike: drop any
		if len(k.entries) <= goal {
			return
		}
		delete(k.entries, h)
	}
}

// sweep drops expired entries; the relay calls it now and then.
func (k *sessionBook) sweep(now time.Time) {
	k.mu.Lock()
	for h, e := range k.entries {
		if !now.Before(e.expires) {
			delete(k.entries, h)
		}
	}
	k.mu.Unlock()
}

// parkSessions moves the 2025-era sessions of a socket that ended into
// the book, so their idle clocks survive until the bridge is back.
func (s *Server) parkSessions(b *bridgeConn) {
	type parked struct {
		id            string
		exp, lastUsed time.Time
	}
	var list []parked
	b.mu.Lock()
	for _, sess := range b.sessions {
		if !sess.ephemeral && !sess.endOnce {
			list = append(list, parked{sess.id, sess.expires, sess.lastUsed})
		}
	}
	b.mu.Unlock()
	for _, p := range list {
		s.book.park(p.id, p.exp, p.lastUsed)
	}
}

// ---- waiting for a bridge that is reconnecting ----

// arrival is closed when a bridge registers for a dev someone waits on.
type arrival struct {
	ch      chan struct{}
	waiters int
}

// bridgeArrivedLocked wakes the requests waiting for dev's bridge. The
// caller holds s.mu.
func (s *Server) bridgeArrivedLocked(dev string) {
	if a := s.arrivals[dev]; a != nil {
		close(a.ch)
		delete(s.arrivals, dev)
	}
}

// liveBridge returns dev's bridge unless it is gone or going.
func (s *Server) liveBridge(dev string) *bridgeConn {
	b := s.bridge(dev)
	if b == nil {
		return nil
	}
	select {
	case <-b.done:
		return nil
	default:
		return b
	}
}

// awaitBridge returns dev's live bridge, waiting up to Server.BridgeWait
// for one to connect (method labels the wait for tests) (a bridge reconnecting after sleep, a network change
// or a relay restart is back within seconds). nil when none came.
func (s *Server) awaitBridge(ctx context.Context, dev, method string) *bridgeConn {
	if b := s.liveBridge(dev); b != nil {
		return b
	}
	wait := s.bridgeWait()
	if wait <= 0 {
		return nil
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		s.mu.Lock()
		b := s.bridges[dev]
		if b != nil {
			select {
			case <-b.done:
				b = nil
			default:
			}
		}
		if b != nil || s.closed {
			s.mu.Unlock()
			return b
		}
		a := s.arrivals[dev]
		if a == nil {
			a = &arrival{ch: make(chan struct{})}
			s.arrivals[dev] = a
		}
		a.waiters++
		s.mu.Unlock()
		if s.onWait != nil {
			s.onWait("bridge " + method)
		}

		var gaveUp bool
		select {
		case <-a.ch:
		case <-timer.C:
			gaveUp = true
		case <-ctx.Done():
			gaveUp = true
		}
		s.mu.Lock()
		a.waiters--
		if a.waiters == 0 && s.arrivals[dev] == a {
			delete(s.arrivals, dev) // nobody waits: do not keep the entry
		}
		s.mu.Unlock()
		if gaveUp {
			return s.liveBridge(dev)
		}
	}
}

package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/tether-dev/tether/internal/mcpwire"
	"github.com/tether-dev/tether/relay"
)

// Defaults of Limits. They sit far above what a busy real client does (an
// agent making a few calls a second, a handful of sessions, a few calls at
// once) and far below what one token could otherwise take from everyone
// else: measured before limits existed, one token opened 50,000 sessions
// (+202 MiB) and 16 bodies of 48 MiB held about 1 GiB.
const (
	DefaultClientRate   = 200     // requests per second per client token (burst twice that)
	DefaultMaxSessions  = 100     // live 2025-era sessions per client token
	DefaultMaxInFlight  = 128     // POSTs being served at once per client token
	DefaultMaxStreams   = 32      // open GET streams per client token
	DefaultMaxBodyBytes = 8 << 20 // one POST body
)

// Limits bound what one client token may take. In every field zero means
// the default and a negative value means no limit.
type Limits struct {
	// ClientRate is the steady requests per second per client token; the
	// burst is twice that. Over it: 429 with Retry-After.
	ClientRate float64
	// MaxSessions caps a client token's live 2025-era sessions. An
	// initialize (or a resume) beyond it evicts the token's least recently
	// used idle session (no call in flight, no GET stream), whose next
	// request gets 404 and re-initializes as after any expiry; with no idle
	// one to evict it gets 429.
	MaxSessions int
	// MaxInFlight caps POSTs being served at once per client token (their
	// bodies are what a token can make the relay hold in memory).
	MaxInFlight int
	// MaxStreams caps open GET streams per client token.
	MaxStreams int
	// MaxBodyBytes caps one POST body: a larger Content-Length gets 413
	// before anything is read; a chunked body is cut at the limit.
	MaxBodyBytes int64
}

func limitOf[T int | int64 | float64](v, def T) T {
	switch {
	case v < 0:
		return 0 // no limit
	case v == 0:
		return def
	}
	return v
}

// tokenUse is what one client token currently holds.
type tokenUse struct {
	limiter  *rate.Limiter // nil: no rate limit
	inflight int
	streams  int
	lastSeen time.Time
}

// tokenLimits keeps a tokenUse per client token id. Entries of tokens
// that hold nothing and were not seen for a while are dropped by sweep.
type tokenLimits struct {
	rate      float64
	inflight  int
	streams   int
	sessions  int
	bodyBytes int64

	mu        sync.Mutex
	use       map[string]*tokenUse
	lastSweep time.Time
}

func newTokenLimits(l Limits) *tokenLimits {
	body := limitOf(l.MaxBodyBytes, DefaultMaxBodyBytes)
	if body == 0 || body > maxBodyBytes {
		body = maxBodyBytes // a frame must still fit on the socket
	}
	return &tokenLimits{
		rate:      limitOf(l.ClientRate, DefaultClientRate),
		inflight:  limitOf(l.MaxInFlight, DefaultMaxInFlight),
		streams:   limitOf(l.MaxStreams, DefaultMaxStreams),
		sessions:  limitOf(l.MaxSessions, DefaultMaxSessions),
		bodyBytes: body,
		use:       make(map[string]*tokenUse),
	}
}

// forgetAfter is how long an entry that holds nothing is kept: longer
// than a full bucket takes to refill, so dropping it forgives nothing.
const forgetAfter = 2 * time.Minute

// entryLocked returns token's entry, making it if needed.
func (t *tokenLimits) entryLocked(token string, now time.Time) *tokenUse {
	if now.Sub(t.lastSweep) > forgetAfter {
		t.lastSweep = now
		for k, u := range t.use {
			if u.inflight == 0 && u.streams == 0 && now.Sub(u.lastSeen) > forgetAfter {
				delete(t.use, k)
			}
		}
	}
	u := t.use[token]
	if u == nil {
		u = &tokenUse{}
		if t.rate > 0 {
			u.limiter = rate.NewLimiter(rate.Limit(t.rate), int(math.Max(1, 2*t.rate)))
		}
		t.use[token] = u
	}
	u.lastSeen = now
	return u
}

// refusal is why a request was turned away: the status, the Retry-After
// in seconds and the message.
type refusal struct {
	status     int
	retryAfter int
	msg        string
	metric     string
}

// admit takes one request of token against its rate and, for a POST or a
// GET stream, a slot; release gives the slot back. A refused request
// takes nothing.
func (t *tokenLimits) admit(token, method string, now time.Time) (release func(), refused *refusal) {
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.entryLocked(token, now)
	if u.limiter != nil {
		res := u.limiter.ReserveN(now, 1)
		if d := res.DelayFrom(now); d > 0 {
			res.CancelAt(now)
			return nil, &refusal{http.StatusTooManyRequests, int(math.Ceil(d.Seconds())),
				fmt.Sprintf("tether-relay: over %g requests per second for this token; retry later", t.rate), "rate"}
		}
	}
	var slot *int
	var max int
	var what string
	switch method {
	case http.MethodPost:
		slot, max, what = &u.inflight, t.inflight, "calls in flight"
	case http.MethodGet:
		slot, max, what = &u.streams, t.streams, "open GET streams"
	default:
		return func() {}, nil
	}
	if max > 0 && *slot >= max {
		return nil, &refusal{http.StatusTooManyRequests, 1,
			fmt.Sprintf("tether-relay: this token already has %d %s; retry when one ends", max, what), what}
	}
	*slot++
	var once sync.Once
	return func() {
		once.Do(func() {
			t.mu.Lock()
			*slot--
			u.lastSeen = time.Now()
			t.mu.Unlock()
		})
	}, nil
}

// peekIDLimit is the largest refused body read to find its JSON-RPC id.
const peekIDLimit = 64 << 10

// refuse answers a request over a limit: 413/429 with Retry-After and a
// JSON-RPC error. The id is the request's when its body is small enough
// to read cheaply; a larger body is not read (Connection: close stops
// net/http from draining it) and the id is null.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, why *refusal) {
	var id json.RawMessage
	if r.Method == http.MethodPost && r.ContentLength >= 0 && r.ContentLength <= peekIDLimit {
		if body, err := io.ReadAll(io.LimitReader(r.Body, peekIDLimit)); err == nil {
			if pk, ok := peekMessage(body); ok {
				id = pk.ID
			}
		}
	} else {
		w.Header().Set("Connection", "close")
	}
	s.refuseID(w, id, why)
}

// refuseID is refuse for a request whose body was read already.
func (s *Server) refuseID(w http.ResponseWriter, id json.RawMessage, why *refusal) {
	s.metrics.refused("limit: " + why.metric)
	if why.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(why.retryAfter))
	}
	code := mcpwire.CodeUnavailable
	if why.status == http.StatusRequestEntityTooLarge {
		code = mcpwire.CodeTooLarge
	}
	writeRPCError(w, why.status, id, code, why.msg)
}

// makeRoomLocked enforces MaxSessions for token before one more of its
// sessions is added to b: it returns the least recently used idle session
// to retire, or ok=false when the token's sessions are all busy. Called
// with b.mu held.
func (b *bridgeConn) makeRoomLocked(token string) (evict *session, ok bool) {
	max := b.s.limits.sessions
	if max <= 0 || token == "" {
		return nil, true
	}
	n := 0
	for _, sess := range b.sessions {
		if sess.ephemeral || sess.token != token || sess.endOnce {
			continue
		}
		n++
		if len(sess.calls) > 0 || sess.streamOpen {
			continue
		}
		if evict == nil || sess.lastUsed.Before(evict.lastUsed) {
			evict = sess
		}
	}
	if n < max {
		return nil, true
	}
	if evict == nil {
		return nil, false
	}
	// Ended here, under the lock, so a concurrent initialize neither
	// counts it nor picks it again and a request cannot resume it; the
	// caller sends the bridge its close frame after unlocking.
	delete(b.sessions, evict.id)
	evict.endOnce = true
	close(evict.done)
	b.s.book.end(evict.id, evict.expires)
	return evict, true
}

// evicted tells the bridge a session evicted by makeRoomLocked is gone.
// Not under b.mu: it queues a frame.
func (b *bridgeConn) evicted(sess *session) {
	if sess == nil {
		return
	}
	b.s.metrics.refused("limit: session evicted")
	b.s.log.Info("idle session evicted: token at its session limit", "dev", b.dev, "server", sess.server)
	if err := b.send(context.Background(), relay.Frame{Kind: relay.KindClose, Server: sess.server, Session: sess.id}); err != nil {
		b.s.log.Debug("close frame not sent", "dev", b.dev, "err", err)
	}
}

// tooManySessions is the refusal when every session of the token is busy.
func (s *Server) tooManySessions() *refusal {
	return &refusal{http.StatusTooManyRequests, 5,
		fmt.Sprintf("tether-relay: this token already has %d sessions, all busy; end one (DELETE) or retry later", s.limits.sessions), "sessions"}
}

package server

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/tether-dev/tether/relay"
)

// What a dev's own web page shows about its bridge: the live connection
// and the last tool calls. Kept in memory, per relay process: it is a
// view for a person watching, not a record (the audit trail is that).

// recentCalls is how many calls are remembered per dev.
const recentCalls = 50

// CallRecord is one finished tool call, without its arguments or result.
type CallRecord struct {
	At       time.Time     `json:"at"`
	Server   string        `json:"server"`
	Tool     string        `json:"tool"`
	Duration time.Duration `json:"duration"`
	Outcome  string        `json:"outcome"` // ok, error, cancelled, unavailable
	// TokenID is the jti of the client token that made the call ("" for
	// a token without one).
	TokenID string `json:"tokenId"`
}

// BridgeView is a dev's bridge as its owner sees it.
type BridgeView struct {
	Connected bool
	Since     time.Time
	Protocol  string // "tether" or "tag"
	Version   string // the bridge's own version, from its hello
	Hostname  string // the bridge machine's name, from its hello ("" from older bridges)
	Remote    string // the address it connected from
	Servers   []relay.ServerInfo
}

// activity holds the per-dev call rings and the waiters for changes.
type activity struct {
	mu      sync.Mutex
	calls   map[string][]CallRecord  // dev → newest last, at most recentCalls
	changed map[string]chan struct{} // dev → closed at its next change
}

// notify wakes everyone watching dev. It never blocks.
func (a *activity) notify(dev string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ch, ok := a.changed[dev]; ok {
		close(ch)
		delete(a.changed, dev)
	}
}

func (a *activity) record(dev string, c CallRecord) {
	a.mu.Lock()
	if a.calls == nil {
		a.calls = map[string][]CallRecord{}
	}
	ring := append(a.calls[dev], c)
	if len(ring) > recentCalls {
		ring = append(ring[:0:0], ring[len(ring)-recentCalls:]...)
	}
	a.calls[dev] = ring
	a.mu.Unlock()
	a.notify(dev)
}

// Changes returns a channel that is closed at the next change of dev's
// bridge: it connects or disconnects, its catalog changes, or a call
// ends. Take a new one after each wake-up, before reading the state, so
// no change between the two is missed.
func (s *Server) Changes(dev string) <-chan struct{} {
	s.init()
	a := &s.activity
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.changed == nil {
		a.changed = map[string]chan struct{}{}
	}
	ch, ok := a.changed[dev]
	if !ok {
		ch = make(chan struct{})
		a.changed[dev] = ch
	}
	return ch
}

// RecentCalls returns dev's last tool calls, newest first.
func (s *Server) RecentCalls(dev string) []CallRecord {
	s.init()
	a := &s.activity
	a.mu.Lock()
	defer a.mu.Unlock()
	ring := a.calls[dev]
	out := make([]CallRecord, len(ring))
	for i, c := range ring {
		out[len(ring)-1-i] = c
	}
	return out
}

// Bridge returns dev's bridge as it is now.
func (s *Server) Bridge(dev string) BridgeView {
	s.init()
	b := s.bridge(dev)
	if b == nil {
		return BridgeView{}
	}
	return BridgeView{Connected: true, Since: b.since, Protocol: b.protocol, Version: b.version, Hostname: b.hostname, Remote: b.remote, Servers: b.catalog()}
}

// recordCall notes a finished tools/call of a Tether bridge. Only the
// tool's name is read from the request, for display; nothing decides on it.
func (s *Server) recordCall(b *bridgeConn, server string, claims Claims, body []byte, start time.Time, outcome string) {
	var req struct {
		Params struct {
			Name string `json:"name"`
		} `json:"params"`
	}
	_ = json.Unmarshal(body, &req)
	jti, _ := cutJTI(claims.ID)
	s.activity.record(b.dev, CallRecord{At: start, Server: server, Tool: req.Params.Name, Duration: time.Since(start), Outcome: outcome, TokenID: jti})
}

// ValidDevID reports whether dev can be a dev id (one URL path segment of
// letters, digits, '-', '_' and '.'): the id of a user and its bridge.
func ValidDevID(dev string) error { return checkDevID(dev) }

// HostAllowed reports whether a request's Host names this relay (see
// origin.go): the web page refuses others, as the MCP endpoints do,
// against DNS rebinding.
func (s *Server) HostAllowed(hostport string) bool { return s.hostAllowed(hostport) }

package app

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/tether-dev/tether/mcpchild"
	"github.com/tether-dev/tether/relay"
)

// publishEvery bounds how often State is rebuilt. A busy bridge changes
// state on every call (recent calls); subscribers only need the latest, and
// ten snapshots a second is more than a person can read.
const publishEvery = 100 * time.Millisecond

// The token's flags (expiring soon, expired) change with time alone, so
// the publisher also wakes at the next such moment — and only then: an idle
// engine has no periodic work of its own here.
func (e *Engine) markDirty() {
	select {
	case e.dirty <- struct{}{}:
	default: // a rebuild is already pending; it will read the latest state
	}
}

// publishLoop rebuilds State after changes, at most once per publishEvery,
// and hands it to every subscriber (latest wins).
func (e *Engine) publishLoop(ctx context.Context) {
	turn := time.NewTimer(time.Hour)
	turn.Stop()
	defer turn.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			// Publish the final state (children stopped, offline) before the
			// subscribers' channels close: Run marks dirty on its way out.
			e.publish()
			e.closeSubscribers()
			return
		case <-e.dirty:
		case <-turn.C:
		}
		if wait := publishEvery - time.Since(last); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				continue
			}
		}
		last = time.Now()
		st := e.publish()
		turn.Stop()
		if next := tokenTurn(st.Token, last); !next.IsZero() {
			turn.Reset(next.Sub(last))
		}
	}
}

// tokenTurn is the next moment a token flag changes by itself: when it
// starts to count as expiring soon, or when it expires; zero if never.
func tokenTurn(t TokenState, now time.Time) time.Time {
	if !t.Present || t.Expires.IsZero() || t.Expired {
		return time.Time{}
	}
	if soon := t.Expires.Add(-expiryWarning); soon.After(now) {
		return soon
	}
	return t.Expires
}

func (e *Engine) publish() State {
	st := e.buildState()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq++
	st.Seq = e.seq
	e.state = st
	for ch := range e.subs {
		offerLatest(ch, st)
	}
	return st
}

// offerLatest puts s in a capacity-1 channel, replacing an unread value.
// Only the publisher sends, so after the drain the send cannot block.
func offerLatest(ch chan State, s State) {
	select {
	case ch <- s:
		return
	default:
	}
	select {
	case <-ch:
	default:
	}
	select {
	case ch <- s:
	default:
	}
}

func (e *Engine) closeSubscribers() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for ch := range e.subs {
		delete(e.subs, ch)
		close(ch)
	}
}

// State builds a snapshot now, so a one-off reader (tetherd status, GET
// /v1/state) never sees the up-to-100 ms lag of the published stream. Its
// Seq is that of the latest publish.
func (e *Engine) State(context.Context) (State, error) {
	st := e.buildState()
	e.mu.Lock()
	st.Seq = e.seq
	e.mu.Unlock()
	return st, nil
}

// Subscribe delivers the current snapshot and then every published one.
func (e *Engine) Subscribe(ctx context.Context) (<-chan State, error) {
	cur, _ := e.State(ctx)
	ch := make(chan State, 1)
	ch <- cur
	e.mu.Lock()
	e.subs[ch] = struct{}{}
	e.mu.Unlock()
	go func() {
		<-ctx.Done()
		e.mu.Lock()
		defer e.mu.Unlock()
		if _, ok := e.subs[ch]; ok {
			delete(e.subs, ch)
			close(ch)
		}
	}()
	return ch, nil
}

// buildState assembles one snapshot from the engine's fields, the bridge's
// children and the relay connection.
func (e *Engine) buildState() State {
	now := time.Now()
	url, _, _ := e.relayTarget()
	conn := e.bridge.ConnState()
	linkErr := e.bridge.linkErr()

	e.mu.Lock()
	st := State{
		Version: e.opts.Version,
		At:      now,
		Engine: EngineInfo{
			PID: os.Getpid(), Home: e.opts.Paths.Dir, Started: e.started, Service: e.opts.Service,
			Goroutines: runtime.NumGoroutine(),
		},
		Relay: RelayState{
			URL: url, Wanted: e.wanted, Phase: conn.Phase, Reason: conn.Reason,
			LastError: conn.LastError, Since: conn.Since, NextRetry: conn.NextRetry, Attempt: conn.Attempt,
			Replaced:     errors.Is(linkErr, relay.ErrReplaced),
			Unauthorized: errors.Is(linkErr, relay.ErrUnauthorized),
			TookOver:     e.bridge.tookOver(),
		},
		Config: ConfigState{Path: e.opts.ConfigFile, Error: e.cfgErr, LoadedAt: e.cfgAt},
		Calls:  slices.Clone(e.calls),
	}
	if e.opts.Servers != nil {
		st.Config.Path = "" // quick mode: no mcp.json
	}
	tok := e.tok
	cfg := e.cfg
	e.mu.Unlock()

	st.Login = e.login.snapshot()
	st.Token = TokenState{Present: tok.token != "", Status: tok.status, Source: tok.source, Error: tok.err}
	if st.Token.Status == "" {
		st.Token.Status = TokenMissing // before the first lookup
	}
	if tok.token != "" {
		if r := tok.token.Reveal(); len(r) > 4 {
			st.Token.Last4 = r[len(r)-4:]
		}
		c := tok.claims
		st.Token.DevID, st.Token.Scope, st.Token.Expires = c.Dev, c.Scopes, c.Expiry
		st.Token.Audience = c.Audience
		if c.Dev != "" {
			st.Token.Subject = "dev:" + c.Dev
		}
		st.Token.Expired = c.Expired(now)
		st.Token.ExpiringSoon = !st.Token.Expired && c.ExpiresWithin(expiryWarning, now)
	}
	if st.Relay.Phase == "" {
		st.Relay.Phase = RelayOffline
	}
	if st.Relay.Phase == RelayOffline && st.Relay.Reason == "" {
		st.Relay.Reason = e.offlineReason(st)
	}

	_, children := e.bridge.Children()
	if cfg != nil {
		st.Config.Missing = cfg.Missing
		for _, en := range cfg.Entries {
			v := ServerView{Name: en.Name, Enabled: !en.Disabled, Kind: en.Kind, Phase: ServerDisabled}
			if v.Kind == "" {
				v.Kind = kindOf(en.Spec)
			}
			if c := children[en.Name]; c != nil && !en.Disabled {
				fillServerView(&v, c)
			}
			if e.opts.ServerLog != nil && e.opts.Paths.Logs != "" {
				v.LogFile = e.opts.Paths.ServerLog(en.Name)
			}
			st.Servers = append(st.Servers, v)
		}
	}
	return st
}

func fillServerView(v *ServerView, c *mcpchild.Child) {
	s := c.Status()
	v.Phase, v.Era, v.PID = ServerPhase(s.Phase), s.Era, s.Pid
	v.ToolCount, v.Restarts = s.ToolCount, s.Restarts
	v.LastError, v.Warning, v.StderrTail = s.LastError, s.Warning, s.StderrTail
	v.Since, v.NextRestart = s.Since, s.NextRestart
	v.Hidden = s.Hidden
	v.Processes, v.MaxProcesses = s.Processes, s.MaxProcesses
	for _, raw := range c.Tools() {
		var t struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(raw, &t) == nil && t.Name != "" {
			v.Tools = append(v.Tools, t.Name)
		}
	}
	slices.Sort(v.Tools)
}

// offlineReason says in plain words why the engine is not connecting.
func (e *Engine) offlineReason(st State) string {
	switch {
	case st.Relay.URL == "":
		return "no relay configured: set \"relay\" in settings.json or pass --relay URL"
	case !st.Token.Present:
		return "no bridge token: run `tetherd token set` (or paste one in the tray)"
	case !st.Relay.Wanted:
		return "disconnected"
	}
	return ""
}

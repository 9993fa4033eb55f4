package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/tether-dev/tether/relay"
)

// errNoSession means the request's Mcp-Session-Id names no session this
// request may use: answered with sessionNotFound.
var errNoSession = errors.New("session not found")

// errTooManySessions means a session could not be resumed because its
// token is at its session limit with every session busy: answered 429.
var errTooManySessions = errors.New("too many sessions for this token")

// sessionNotFound answers 404 with a body that is not a JSON-RPC message.
// The go-sdk client (v1.8.0 checkResponse) reports a 404 as ErrSessionMissing,
// which ends its session so the application can start a new one, only when
// the body does not decode as a JSON-RPC error response; with one, it fails
// just that call and keeps sending the dead id. The TS SDK looks only at
// the status.
func sessionNotFound(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, map[string]string{
		"error": "session not found",
		"hint":  "the session ended or expired; initialize a new one",
	})
}

// clientSession finds the 2025-era session named sid for a request by the
// client token c to server name: live on b, or resumed on b from the id
// itself. errNoSession (404) when the id is not one this relay signed, or
// is for another dev, server or token, or expired, ended or idled out;
// another error when the session could not be re-created at the bridge.
func (s *Server) clientSession(ctx context.Context, b *bridgeConn, c Claims, name, sid string) (*session, error) {
	now := time.Now()
	b.mu.Lock()
	sess := b.sessions[sid]
	if sess != nil {
		sess.lastUsed = now
	}
	b.mu.Unlock()
	if sess != nil {
		if sess.ephemeral || sess.server != name || !c.owns(sess.token) || !now.Before(sess.expires) {
			return nil, errNoSession
		}
		return sess, awaitReady(ctx, b, sess)
	}
	sc, err := s.signer.parse(sid)
	if err != nil || sc.NoResume || !sc.valid(b.dev, name, c, now) {
		return nil, errNoSession
	}
	return s.resumeSession(ctx, b, sid, sc)
}

// awaitReady waits until a resumed session's replay is done.
func awaitReady(ctx context.Context, b *bridgeConn, sess *session) error {
	select {
	case <-sess.ready:
		return sess.replayErr
	default:
	}
	select {
	case <-sess.ready:
		return sess.replayErr
	case <-ctx.Done():
		return ctx.Err()
	case <-b.done:
		return errBridgeGone
	}
}

// resumeSession re-creates on b a session that b has never seen (it was
// opened on an earlier socket, or by an earlier relay process): the first
// request makes the session object and replays the client's initialize and
// notifications/initialized to the bridge, which opens its virtual session
// for it as for any new one; requests that arrive meanwhile wait for that.
// A failed replay forgets the object, so the next request tries again.
func (s *Server) resumeSession(ctx context.Context, b *bridgeConn, sid string, sc *sessionClaims) (*session, error) {
	b.mu.Lock()
	sess := b.sessions[sid]
	mine := sess == nil
	var evict *session
	if mine {
		now := time.Now()
		if !s.book.take(sid, now, s.sessionIdleTimeout()) {
			b.mu.Unlock()
			return nil, errNoSession
		}
		var room bool
		if evict, room = b.makeRoomLocked(sc.Token); !room {
			b.mu.Unlock()
			// Back in the book, so a later try may resume it.
			s.book.park(sid, sc.expiry(), now)
			return nil, errTooManySessions
		}
		sess = newClientSession(sid, sc)
		sess.ready = make(chan struct{})
		b.sessions[sid] = sess
	}
	b.mu.Unlock()
	b.evicted(evict)
	if !mine {
		return sess, awaitReady(ctx, b, sess)
	}
	err := s.replay(b, sess, sc)
	sess.replayErr = err
	close(sess.ready)
	if err != nil {
		s.log.Info("session not resumed", "dev", b.dev, "server", sess.server, "err", err)
		// The bridge drops whatever it made of the replay.
		b.endSession(sess, true)
		return nil, err
	}
	s.metrics.sessionsResumed.Add(1)
	s.log.Debug("session resumed", "dev", b.dev, "server", sess.server)
	return sess, nil
}

// replay sends the stored initialize under the relay's own request id,
// waits for a successful answer (which no client sees), then sends
// notifications/initialized. It waits for a server that is starting, as a
// client's initialize would.
func (s *Server) replay(b *bridgeConn, sess *session, sc *sessionClaims) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.callTimeout())
	defer cancel()
	if !s.awaitServer(ctx, b, sess.server) {
		return fmt.Errorf("mcp server %q is not ready", sess.server)
	}
	id := json.RawMessage(strconv.Quote(resumeRequestID))
	c, err := b.addCall(sess, id)
	if err != nil {
		return err
	}
	frame := relay.Frame{Kind: relay.KindMCP, Server: sess.server, Session: sess.id, Msg: sc.replayInitialize()}
	if err := b.send(ctx, frame); err != nil {
		b.forgetCall(sess, c)
		return fmt.Errorf("replay initialize: %w", err)
	}
	for {
		select {
		case <-c.wake:
			_, resp, _ := b.take(c)
			if resp == nil {
				continue
			}
			if !isSuccess(resp) {
				return fmt.Errorf("the bridge refused the replayed initialize: %s", rpcErrorMessage(resp))
			}
			frame.Msg = initializedNotification
			if err := b.send(ctx, frame); err != nil {
				return fmt.Errorf("replay notifications/initialized: %w", err)
			}
			return nil
		case <-ctx.Done():
			b.forgetCall(sess, c)
			return fmt.Errorf("no answer to the replayed initialize within %v", s.callTimeout())
		case <-b.done:
			return errBridgeGone
		case <-sess.done:
			return errors.New("session closed during its replay")
		}
	}
}

// rpcErrorMessage is the error.message of a JSON-RPC error response.
func rpcErrorMessage(msg []byte) string {
	var r struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(msg, &r) != nil {
		return "unreadable answer"
	}
	return fmt.Sprintf("%d %s", r.Error.Code, r.Error.Message)
}

// serverState returns the catalog state of server name and a channel that
// is closed at the next catalog update.
func (b *bridgeConn) serverState(name string) (state string, known bool, changed <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, si := range b.servers {
		if si.Name == name {
			return si.State, true, b.catalogd
		}
	}
	return "", false, b.catalogd
}

// coming reports whether a server in this catalog state will be ready
// without anyone's help: it is starting, or waiting to restart after a
// crash. A crash loop, a stopped or a disabled server is not.
func coming(state string) bool { return state == "starting" || state == "backoff" }

// awaitServer waits, up to Server.StartWait and ctx, while the bridge's
// catalog says server name is on its way to ready. It reports whether the
// server is ready (true also for a state this relay does not know, which
// the bridge answers for itself).
func (s *Server) awaitServer(ctx context.Context, b *bridgeConn, name string) bool {
	state, known, changed := b.serverState(name)
	if !known || !coming(state) {
		return known
	}
	timer := time.NewTimer(s.startWait())
	defer timer.Stop()
	if s.onWait != nil {
		s.onWait("server")
	}
	for {
		select {
		case <-changed:
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		case <-b.done:
			return false
		}
		state, known, changed = b.serverState(name)
		if !known || !coming(state) {
			return known
		}
	}
}

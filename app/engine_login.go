package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// The engine's side of "Sign in with browser…": it runs the device login
// (login.go) so that the State carries the code for any UI to show, and
// stores the token itself when the person approves. The UI opens
// State.Login.VerificationURIComplete in the browser: the engine may be a
// service with no desktop.

// LoginPhase is where a sign-in with the browser stands.
type LoginPhase string

const (
	LoginNone     LoginPhase = ""         // no sign-in since the engine started
	LoginWaiting  LoginPhase = "waiting"  // the code is shown; waiting for approval in the browser
	LoginDone     LoginPhase = "done"     // approved; the token is stored and the bridge connects
	LoginDenied   LoginPhase = "denied"   // denied in the browser
	LoginExpired  LoginPhase = "expired"  // not approved in time
	LoginCanceled LoginPhase = "canceled" // stopped from this computer
	LoginFailed   LoginPhase = "failed"   // anything else; Error says what
)

// LoginState is the latest sign-in with the browser.
type LoginState struct {
	Phase LoginPhase `json:"phase,omitempty"`
	// Relay is the relay signed in to.
	Relay string `json:"relay,omitempty"`
	// UserCode is the code the person checks in the browser (XXXX-XXXX).
	UserCode string `json:"userCode,omitempty"`
	// VerificationURI is the page to enter the code on;
	// VerificationURIComplete has the code filled in.
	VerificationURI         string    `json:"verificationUri,omitempty"`
	VerificationURIComplete string    `json:"verificationUriComplete,omitempty"`
	Expires                 time.Time `json:"expires,omitzero"`
	Error                   string    `json:"error,omitempty"`
}

// loginRunner holds the engine's one sign-in at a time. Its goroutine is
// bound to Run: open and close bracket it, and close waits for it.
type loginRunner struct {
	mu     sync.Mutex
	ctx    context.Context // Run's; nil outside Run
	wg     sync.WaitGroup
	cancel context.CancelFunc // of the login in progress
	gen    uint64             // numbers logins, so a stale one cannot overwrite a newer one's state
	state  LoginState
}

func (l *loginRunner) open(ctx context.Context) {
	l.mu.Lock()
	l.ctx = ctx
	l.mu.Unlock()
}

// close stops a login in progress and waits for its goroutine.
func (l *loginRunner) close() {
	l.mu.Lock()
	l.ctx = nil
	if l.cancel != nil {
		l.cancel()
	}
	l.mu.Unlock()
	l.wg.Wait()
}

func (l *loginRunner) snapshot() LoginState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state
}

// Login starts a sign-in with the browser against the engine's relay and
// returns once the code is known (State.Login shows it too). Approval in
// the browser stores the bridge token and connects; a second call while
// one waits returns the same code.
func (e *Engine) Login(ctx context.Context) (LoginState, error) {
	<-e.ready
	url, tag, _ := e.relayTarget()
	switch {
	case url == "":
		return LoginState{}, errors.New("no relay configured: set the relay first (tetherd login --relay URL, or \"relay\" in settings.json)")
	case tag:
		return LoginState{}, errors.New("sign-in with the browser needs a Tether relay; this one speaks TAG")
	}
	if st := e.login.snapshot(); st.Phase == LoginWaiting && st.Relay == url && time.Now().Before(st.Expires) {
		return st, nil
	}
	host, _ := os.Hostname()
	dl, err := StartLogin(ctx, url, LoginOptions{DeviceName: host, Version: e.opts.Version})
	if err != nil {
		return LoginState{}, err
	}
	st := LoginState{Phase: LoginWaiting, Relay: url, UserCode: dl.UserCode, VerificationURI: dl.VerificationURI,
		VerificationURIComplete: dl.VerificationURIComplete, Expires: dl.Expires}

	l := &e.login
	l.mu.Lock()
	if l.ctx == nil {
		l.mu.Unlock()
		return LoginState{}, errors.New("the engine is stopping")
	}
	if l.cancel != nil {
		l.cancel() // a login for another relay, or an expired one
	}
	lctx, cancel := context.WithDeadline(l.ctx, dl.Expires.Add(time.Minute))
	l.gen++
	gen := l.gen
	l.cancel, l.state = cancel, st
	l.wg.Add(1)
	l.mu.Unlock()
	e.markDirty()
	e.log.Info("sign-in with the browser: waiting for approval", "relay", url, "code", dl.UserCode)

	go func() {
		defer l.wg.Done()
		defer cancel()
		e.finishLogin(lctx, gen, dl)
	}()
	return st, nil
}

// finishLogin waits for the approval, stores the token and records the
// outcome in the state.
func (e *Engine) finishLogin(ctx context.Context, gen uint64, dl *DeviceLogin) {
	tok, err := dl.Wait(ctx)
	if err == nil {
		err = e.SetToken(ctx, tok.Reveal())
	}
	phase := LoginDone
	switch {
	case err == nil:
		e.log.Info("sign-in with the browser: approved; token stored")
	case errors.Is(err, ErrLoginDenied):
		phase = LoginDenied
	case errors.Is(err, ErrLoginExpired), errors.Is(err, context.DeadlineExceeded):
		phase, err = LoginExpired, ErrLoginExpired
	case errors.Is(err, context.Canceled):
		phase = LoginCanceled
	default:
		phase = LoginFailed
	}
	if err != nil && phase != LoginCanceled {
		e.log.Warn("sign-in with the browser ended", "phase", phase, "err", err)
	}
	l := &e.login
	l.mu.Lock()
	if l.gen == gen {
		l.state.Phase = phase
		l.state.Error = ""
		if err != nil && phase != LoginCanceled {
			l.state.Error = err.Error()
		}
	}
	l.mu.Unlock()
	e.markDirty()
}

// CancelLogin stops a sign-in that waits for approval.
func (e *Engine) CancelLogin(ctx context.Context) error {
	l := &e.login
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state.Phase != LoginWaiting || l.cancel == nil {
		return fmt.Errorf("no sign-in is waiting")
	}
	l.cancel()
	return nil
}

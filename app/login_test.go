package app

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-dev/tether/keystore"
	"github.com/tether-dev/tether/relay/server"
	"github.com/tether-dev/tether/relay/store"
)

// withDevice gives the test relay the device flow on an SQLite store
// with user alice, polling every second.
func withDevice(t *testing.T, dev **server.Device) func(*server.Server) {
	return func(s *server.Server) {
		st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "relay.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		if err := st.AddUser(t.Context(), store.User{ID: "alice", Created: time.Now()}); err != nil {
			t.Fatal(err)
		}
		*dev = &server.Device{Store: st, Secret: s.Verifier.Secret, Interval: time.Second}
		s.Device = *dev
	}
}

// TestLoginEndToEnd: an engine without a token signs in with the device
// flow against a real relay; the person approves (through the relay's
// function) while the engine polls; the token lands in the keychain and
// the bridge connects with it.
func TestLoginEndToEnd(t *testing.T) {
	var dev *server.Device
	f := startEngine(t, oneServer, nil, withDevice(t, &dev))
	ctx := t.Context()
	old, err := f.kc.Get(keystore.AccountFor(f.relay.url))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.eng.ClearToken(ctx); err != nil {
		t.Fatal(err)
	}
	f.waitState(t, "no token", func(st State) bool { return !st.Token.Present })

	ls, err := f.eng.Login(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ls.Phase != LoginWaiting || ls.Relay != f.relay.url || len(ls.UserCode) != 9 ||
		ls.VerificationURIComplete != f.relay.url+"/device?user_code="+ls.UserCode || time.Until(ls.Expires) < 9*time.Minute {
		t.Fatalf("login state: %+v", ls)
	}
	// A second click while it waits shows the same code.
	if again, err := f.eng.Login(ctx); err != nil || again.UserCode != ls.UserCode {
		t.Fatalf("second Login: %+v %v", again, err)
	}
	f.waitState(t, "the code in the state", func(st State) bool { return st.Login.UserCode == ls.UserCode && st.Login.Phase == LoginWaiting })

	if err := dev.Approve(ctx, ls.UserCode, "alice", true); err != nil {
		t.Fatal(err)
	}
	st := f.waitState(t, "signed in and connected", func(st State) bool {
		return st.Login.Phase == LoginDone && st.Token.Present && st.Relay.Phase == "connected"
	})
	if st.Token.DevID != "alice" || st.Login.Error != "" {
		t.Fatalf("after sign-in: token %+v login %+v", st.Token, st.Login)
	}
	tok, err := f.kc.Get(keystore.AccountFor(f.relay.url))
	if err != nil || tok == old {
		t.Fatalf("keychain after sign-in: err %v, same as the old token: %v", err, tok == old)
	}
	if c, err := keystore.ParseClaims(tok); err != nil || c.Dev != "alice" {
		t.Fatalf("stored token claims %+v %v", c, err)
	}
	f.relay.waitRelay(t, f.dev, f.client, "the bridge online", func(v relayView) bool { return v.Connected })
}

func TestLoginDeniedAndCanceled(t *testing.T) {
	var dev *server.Device
	f := startEngine(t, oneServer, nil, withDevice(t, &dev))
	ctx := t.Context()
	ls, err := f.eng.Login(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.Approve(ctx, ls.UserCode, "alice", false); err != nil {
		t.Fatal(err)
	}
	st := f.waitState(t, "login denied", func(st State) bool { return st.Login.Phase == LoginDenied })
	if !strings.Contains(st.Login.Error, "denied") {
		t.Fatalf("denied login error: %q", st.Login.Error)
	}

	ls2, err := f.eng.Login(ctx)
	if err != nil || ls2.UserCode == ls.UserCode {
		t.Fatalf("a new login after a denial: %+v %v", ls2, err)
	}
	if err := f.eng.CancelLogin(ctx); err != nil {
		t.Fatal(err)
	}
	f.waitState(t, "login canceled", func(st State) bool { return st.Login.Phase == LoginCanceled })
	if err := f.eng.CancelLogin(ctx); err == nil {
		t.Fatal("CancelLogin with nothing waiting succeeded")
	}
}

// scriptedRelay answers the token endpoint from a script and records the
// waits the client asks for between polls.
type scriptedRelay struct {
	ts     *httptest.Server
	mu     sync.Mutex
	script []string // error codes, "" for success
	waits  []time.Duration
	token  string
}

func newScriptedRelay(t *testing.T, script ...string) *scriptedRelay {
	s := &scriptedRelay{script: script}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		b := "http://" + r.Host
		writeTestJSON(w, 200, map[string]any{"issuer": b, "device_authorization_endpoint": b + "/da", "token_endpoint": b + "/tok"})
	})
	mux.HandleFunc("POST /da", func(w http.ResponseWriter, r *http.Request) {
		b := "http://" + r.Host
		if r.PostFormValue("client_id") != "tetherd" || r.PostFormValue("device_name") != "box" {
			writeTestJSON(w, 400, map[string]any{"error": "invalid_request"})
			return
		}
		writeTestJSON(w, 200, map[string]any{"device_code": "dc", "user_code": "BCDF-GHJK", "verification_uri": b + "/device",
			"verification_uri_complete": b + "/device?user_code=BCDF-GHJK", "expires_in": 600, "interval": 2})
	})
	mux.HandleFunc("POST /tok", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		next := s.script[0]
		s.script = s.script[1:]
		s.mu.Unlock()
		if r.PostFormValue("grant_type") != grantTypeDeviceCode || r.PostFormValue("device_code") != "dc" {
			writeTestJSON(w, 400, map[string]any{"error": "invalid_request"})
			return
		}
		if next == "" {
			writeTestJSON(w, 200, map[string]any{"access_token": s.token, "token_type": "Bearer", "expires_in": 3600})
			return
		}
		writeTestJSON(w, 400, map[string]any{"error": next})
	})
	s.ts = httptest.NewServer(mux)
	t.Cleanup(s.ts.Close)
	return s
}

func writeTestJSON(w http.ResponseWriter, code int, v any) { controlWriteJSON(w, code, v) }

func (s *scriptedRelay) after(d time.Duration) <-chan time.Time {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- time.Now()
	return ch
}

func TestLoginPolling(t *testing.T) {
	r := newTestRelay(t)
	good := r.token(t, "alice", server.ScopeBridge, time.Hour)
	for _, tc := range []struct {
		name   string
		script []string
		want   error
		waits  []time.Duration
	}{
		{"pending, slow_down, then the token", []string{"authorization_pending", "slow_down", "authorization_pending", ""}, nil,
			[]time.Duration{2 * time.Second, 2 * time.Second, 7 * time.Second, 7 * time.Second}},
		{"denied", []string{"authorization_pending", "access_denied"}, ErrLoginDenied, []time.Duration{2 * time.Second, 2 * time.Second}},
		{"expired", []string{"expired_token"}, ErrLoginExpired, []time.Duration{2 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScriptedRelay(t, tc.script...)
			s.token = good
			dl, err := StartLogin(t.Context(), s.ts.URL, LoginOptions{DeviceName: "box", After: s.after})
			if err != nil {
				t.Fatal(err)
			}
			if dl.UserCode != "BCDF-GHJK" || dl.VerificationURIComplete != s.ts.URL+"/device?user_code=BCDF-GHJK" {
				t.Fatalf("login: %+v", dl)
			}
			tok, err := dl.Wait(t.Context())
			if !errors.Is(err, tc.want) || (tc.want == nil && tok.Reveal() != good) {
				t.Fatalf("Wait: %v, want %v", err, tc.want)
			}
			if len(s.waits) != len(tc.waits) {
				t.Fatalf("waits %v, want %v", s.waits, tc.waits)
			}
			for i := range s.waits {
				if s.waits[i] != tc.waits[i] {
					t.Fatalf("waits %v, want %v", s.waits, tc.waits)
				}
			}
		})
	}
	// A client token is refused even when the relay hands it out.
	s := newScriptedRelay(t, "")
	s.token = r.token(t, "alice", server.ScopeClient, time.Hour)
	dl, err := StartLogin(t.Context(), s.ts.URL, LoginOptions{DeviceName: "box", After: s.after})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dl.Wait(t.Context()); err == nil || !strings.Contains(err.Error(), "scope") {
		t.Fatalf("client token accepted: %v", err)
	}
}

func TestLoginRefusesInsecureRelays(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := StartLogin(ctx, "http://relay.example.com", LoginOptions{}); err == nil || !strings.Contains(err.Error(), "https") {
		t.Fatalf("http relay off loopback: %v", err)
	}
	if _, err := RedeemConnectCode(ctx, nil, "http://relay.example.com", "c"); err == nil || !strings.Contains(err.Error(), "https") {
		t.Fatalf("connect code over http off loopback: %v", err)
	}
	// Metadata that points the token endpoint at another host is refused.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		writeTestJSON(w, 200, map[string]any{"device_authorization_endpoint": "http://" + r.Host + "/da", "token_endpoint": "https://evil.example/tok"})
	})
	ts := httptest.NewServer(mux)
	defer ts.Close()
	if _, err := StartLogin(ctx, ts.URL, LoginOptions{}); err == nil || !strings.Contains(err.Error(), "evil.example") {
		t.Fatalf("foreign token endpoint: %v", err)
	}
}

// TestRedeemConnectCode redeems a code minted by a real relay once.
func TestRedeemConnectCode(t *testing.T) {
	var dev *server.Device
	r := newTestRelay(t, withDevice(t, &dev))
	cc, err := dev.NewConnectCode(t.Context(), "alice", r.url)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := RedeemConnectCode(t.Context(), nil, r.url, cc.Code)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := keystore.ParseClaims(tok); err != nil || c.Dev != "alice" {
		t.Fatalf("redeemed token claims %+v %v", c, err)
	}
	if _, err := RedeemConnectCode(t.Context(), nil, r.url, cc.Code); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("second redemption: %v", err)
	}
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tether-dev/tether/app"
	"github.com/tether-dev/tether/keystore"
	"github.com/tether-dev/tether/relay/server"
)

// doctorRelay is a real relay on loopback that records which requests
// carried a bearer token.
type doctorRelay struct {
	base   string
	secret []byte
	mu     sync.Mutex
	bearer []string // paths of requests with an Authorization header
}

func startDoctorRelay(t *testing.T) *doctorRelay {
	t.Helper()
	r := &doctorRelay{secret: []byte("0123456789abcdef0123456789abcdef")}
	srv := &server.Server{Verifier: &server.Verifier{Secret: r.secret}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("Authorization") != "" {
			r.mu.Lock()
			r.bearer = append(r.bearer, req.URL.Path)
			r.mu.Unlock()
		}
		srv.ServeHTTP(w, req)
	}), ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		hs.Close()
	})
	r.base = "http://" + ln.Addr().String()
	return r
}

func (r *doctorRelay) bearerPaths() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bearer...)
}

func (r *doctorRelay) token(t *testing.T, secret []byte, aud string) string {
	t.Helper()
	tok, _, err := server.IssueToken(secret, server.TokenSpec{Dev: "alice", Scope: server.ScopeBridge, TTL: 30 * 24 * time.Hour, Audience: aud}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// doctorHome makes a Tether folder with mcp.json and settings.json, and a
// token file; it isolates the service manager's folder too.
func doctorHome(t *testing.T, mcpJSON, relayURL, token string) (app.Paths, string) {
	t.Helper()
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	paths := app.PathsIn(filepath.Join(t.TempDir(), "tether"))
	if err := paths.Ensure(); err != nil {
		t.Fatal(err)
	}
	write := func(p, s string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(paths.MCPJSON, mcpJSON)
	write(paths.Settings, `{"relay": "`+relayURL+`"}`)
	tokFile := filepath.Join(t.TempDir(), "bridge.jwt")
	write(tokFile, token)
	return paths, tokFile
}

func runDoctorWith(t *testing.T, paths app.Paths, tokFile string, now func() time.Time) map[string]check {
	t.Helper()
	d := &doctor{paths: paths, tokenFile: tokFile, keychain: &keystore.Memory{}, now: now, timeout: 5 * time.Second}
	d.run(t.Context())
	got := map[string]check{}
	for _, c := range d.checks {
		got[c.Name] = c
		t.Logf("%-5s %-16s %s | %s", c.Status, c.Name, c.Detail, c.Fix)
	}
	return got
}

func wantCheck(t *testing.T, got map[string]check, name string, st checkStatus, detail string) {
	t.Helper()
	c, ok := got[name]
	if !ok {
		t.Errorf("no %q check", name)
		return
	}
	if c.Status != st || !strings.Contains(c.Detail, detail) {
		t.Errorf("%s: %s %q, want %s containing %q", name, c.Status, c.Detail, st, detail)
	}
	if (st == checkFail || st == checkWarn) && c.Fix == "" {
		t.Errorf("%s: %s without a fix-it line", name, st)
	}
}

const goodMCP = `{"mcpServers": {
	"abs": {"command": "/bin/sh", "args": ["-c", "true"]},
	"bare": {"command": "sh"},
	"off": {"command": "no-such-command-tether", "disabled": true}
}}`

func TestDoctorAllGood(t *testing.T) {
	r := startDoctorRelay(t)
	paths, tokFile := doctorHome(t, goodMCP, r.base, r.token(t, r.secret, ""))
	got := runDoctorWith(t, paths, tokFile, time.Now)
	for name, c := range got {
		if c.Status == checkFail {
			t.Errorf("%s failed: %s", name, c.Detail)
		}
	}
	wantCheck(t, got, "config folder", checkOK, paths.Dir)
	wantCheck(t, got, "mcp.json", checkOK, "2 servers enabled, 1 disabled")
	wantCheck(t, got, "server abs", checkOK, "/bin/sh")
	wantCheck(t, got, "server bare", checkOK, "/sh")
	wantCheck(t, got, "keychain", checkOK, "reachable; no token stored")
	wantCheck(t, got, "token", checkOK, "from token-file, dev alice")
	wantCheck(t, got, "relay TCP", checkOK, strings.TrimPrefix(r.base, "http://"))
	wantCheck(t, got, "relay /healthz", checkOK, "200")
	wantCheck(t, got, "clock", checkOK, "0s off")
	wantCheck(t, got, "relay WebSocket", checkOK, "reaches the relay (401 without a token")
	wantCheck(t, got, "relay token", checkOK, "accepted for dev alice; a bridge is connected: false")
	wantCheck(t, got, "service", checkInfo, "not installed")
	if p := r.bearerPaths(); len(p) != 1 || p[0] != "/v1/bridges/alice" {
		t.Errorf("token sent to %v, want only the status API", p)
	}
}

func TestDoctorFindsProblems(t *testing.T) {
	r := startDoctorRelay(t)
	// A token issued for another relay is not sent to this one at all.
	other := r.token(t, r.secret, "https://other.example.com")
	bad := `{"mcpServers": {
	"x": {"command": "sh",}
	"y": {}
}}`
	paths, tokFile := doctorHome(t, bad, r.base, other)
	if err := os.Chmod(paths.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The clock 10 minutes ahead of the relay's.
	got := runDoctorWith(t, paths, tokFile, func() time.Time { return time.Now().Add(10 * time.Minute) })
	wantCheck(t, got, "config folder", checkFail, "mode 0755")
	wantCheck(t, got, "mcp.json", checkFail, "line 3:")
	wantCheck(t, got, "token audience", checkFail, "issued for https://other.example.com")
	// At least 10 minutes less the Date header's 1 s resolution.
	wantCheck(t, got, "clock", checkFail, "off the relay's clock")
	if d := got["clock"].Detail; !strings.Contains(d, " 10m0s ") && !strings.Contains(d, " 9m59s ") {
		t.Errorf("clock: %q, want 10m0s or 9m59s", d)
	}
	if _, ok := got["relay token"]; ok {
		t.Error("the token was checked against a relay it was not issued for")
	}
	if p := r.bearerPaths(); len(p) != 0 {
		t.Errorf("token sent to %v", p)
	}
}

func TestDoctorMissingCommandAndRefusedToken(t *testing.T) {
	r := startDoctorRelay(t)
	forged := r.token(t, []byte("another-secret-another-secret-xx"), "")
	paths, tokFile := doctorHome(t, `{"mcpServers": {"gone": {"command": "no-such-command-tether"}}}`, r.base, forged)
	got := runDoctorWith(t, paths, tokFile, time.Now)
	wantCheck(t, got, "server gone", checkFail, `"no-such-command-tether" not found`)
	wantCheck(t, got, "relay token", checkFail, "401")
}

func TestDoctorRelayDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	r := &doctorRelay{secret: []byte("0123456789abcdef0123456789abcdef")}
	paths, tokFile := doctorHome(t, goodMCP, "http://"+addr, r.token(t, r.secret, ""))
	got := runDoctorWith(t, paths, tokFile, time.Now)
	wantCheck(t, got, "relay TCP", checkFail, "refused")
	if _, ok := got["relay /healthz"]; ok {
		t.Error("went on to HTTP after TCP failed")
	}
}

// The command: --json, and the exit code (a quietError with code 1).
func TestDoctorCommandJSONAndExitCode(t *testing.T) {
	r := startDoctorRelay(t)
	paths, tokFile := doctorHome(t, goodMCP, r.base, r.token(t, r.secret, ""))
	t.Setenv("TETHER_HOME", paths.Dir)
	t.Setenv("TETHER_RELAY", "")
	t.Setenv("TETHER_TOKEN", "")
	t.Setenv("TETHER_TOKEN_FILE", "")
	// No session bus: the real keychain is unreachable, which is only a
	// warning while a token file serves.
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+filepath.Join(t.TempDir(), "no-bus"))

	var out strings.Builder
	if err := run(t.Context(), []string{"doctor", "--json", "--token-file", tokFile}, nil, &out, &out); err != nil {
		t.Fatalf("doctor: %v\n%s", err, out.String())
	}
	var rep struct {
		OK     bool    `json:"ok"`
		Checks []check `json:"checks"`
	}
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	if !rep.OK || len(rep.Checks) < 8 {
		t.Fatalf("report: %+v", rep)
	}

	if err := os.WriteFile(paths.MCPJSON, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err := run(t.Context(), []string{"doctor", "--token-file", tokFile}, nil, &out, &out)
	var q *quietError
	if !errAs(err, &q) || q.code != 1 {
		t.Fatalf("broken mcp.json: err %v, want exit code 1", err)
	}
	if !strings.Contains(out.String(), "FAIL  mcp.json") || !strings.Contains(out.String(), "→ fix that place") {
		t.Fatalf("text report:\n%s", out.String())
	}
}

func errAs(err error, target any) bool { return errors.As(err, target) }

func TestClockSkew(t *testing.T) {
	date := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC) // the relay's Date: 12:00:00
	for _, tc := range []struct {
		sent, recv time.Duration // our clock, relative to date
		want       time.Duration
	}{
		{100 * time.Millisecond, 300 * time.Millisecond, 0},                                                // within the second
		{-200 * time.Millisecond, 900 * time.Millisecond, 0},                                               // overlapping
		{10*time.Minute + 1300*time.Millisecond, 10*time.Minute + 1400*time.Millisecond, 10 * time.Minute}, // ahead: at least 10m0.3s
		{-3 * time.Minute, -3*time.Minute + 100*time.Millisecond, -3 * time.Minute},                        // behind
	} {
		if got := clockSkew(date, date.Add(tc.sent), date.Add(tc.recv)); got != tc.want {
			t.Errorf("sent %v recv %v: skew %v, want %v", tc.sent, tc.recv, got, tc.want)
		}
	}
}

// TestDoctorUpgradeThroughProxy puts a real reverse proxy (net/http/httputil,
// which passes WebSocket upgrades) between doctor and a real relay, and
// then misconfigured ones that answer /v1/connect themselves the way broken
// proxies do, passing everything else through.
func TestDoctorUpgradeThroughProxy(t *testing.T) {
	r := startDoctorRelay(t)
	target, err := url.Parse(r.base)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		answer func(w http.ResponseWriter) // for /v1/connect; nil = pass it on
		st     checkStatus
		detail string
		fix    string
	}{
		{"passes upgrades", nil, checkOK, "reaches the relay (401 without a token, as expected)", ""},
		{"no route", func(w http.ResponseWriter) { http.NotFound(w, nil) }, checkFail, "404 Not Found: /v1/connect does not reach the relay", "route /v1/connect"},
		{"upgrade fails", func(w http.ResponseWriter) { w.WriteHeader(http.StatusBadGateway) }, checkFail, "502 Bad Gateway: the proxy could not pass", "proxy_set_header Upgrade"},
		{"wants another protocol", func(w http.ResponseWriter) { w.WriteHeader(http.StatusUpgradeRequired) }, checkFail, "426 Upgrade Required: a proxy does not pass the WebSocket upgrade", "proxy_set_header Upgrade"},
		{"its own login", func(w http.ResponseWriter) {
			w.Header().Set("WWW-Authenticate", `Basic realm="corp"`)
			w.WriteHeader(http.StatusUnauthorized)
		}, checkFail, "from something other than the relay", "without the proxy's own authentication"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rp := httputil.NewSingleHostReverseProxy(target)
			var sawUpgrade atomic.Bool
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			proxy := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				if req.URL.Path == "/v1/connect" {
					sawUpgrade.Store(strings.EqualFold(req.Header.Get("Upgrade"), "websocket") && req.Header.Get("Sec-WebSocket-Key") != "")
					if req.Header.Get("Authorization") != "" {
						t.Errorf("doctor sent a token to /v1/connect")
					}
					if c.answer != nil {
						c.answer(w)
						return
					}
				}
				rp.ServeHTTP(w, req)
			}), ReadHeaderTimeout: 5 * time.Second}
			go proxy.Serve(ln)
			t.Cleanup(func() { proxy.Close() })

			paths, tokFile := doctorHome(t, goodMCP, "http://"+ln.Addr().String(), r.token(t, r.secret, ""))
			got := runDoctorWith(t, paths, tokFile, time.Now)
			wantCheck(t, got, "relay WebSocket", c.st, c.detail)
			if fix := got["relay WebSocket"].Fix; !strings.Contains(fix, c.fix) {
				t.Errorf("fix %q, want it to contain %q", fix, c.fix)
			}
			if !sawUpgrade.Load() {
				t.Error("the request at /v1/connect was not a WebSocket upgrade request")
			}
			// The later checks still run: one broken path is not the end.
			wantCheck(t, got, "relay token", checkOK, "accepted for dev alice")
		})
	}
}

func TestUpgradeVerdictOthers(t *testing.T) {
	for _, c := range []struct {
		code   int
		h      http.Header
		detail string
	}{
		{http.StatusSwitchingProtocols, nil, "not a Tether relay"},
		{http.StatusPermanentRedirect, http.Header{"Location": {"https://relay.example.com/v1/connect"}}, "to https://relay.example.com/v1/connect: the engine does not follow redirects"},
		{http.StatusGatewayTimeout, nil, "could not pass"},
		{http.StatusBadRequest, nil, "unexpected 400"},
	} {
		st, detail, fix := upgradeVerdict(c.code, fmt.Sprintf("%d %s", c.code, http.StatusText(c.code)), c.h)
		if st != checkFail || !strings.Contains(detail, c.detail) || fix == "" {
			t.Errorf("%d: %s %q fix %q, want fail with %q and a fix", c.code, st, detail, fix, c.detail)
		}
	}
}

package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/app"
	"github.com/tether-dev/tether/assets"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// base is a healthy, connected engine with two servers.
func base() app.State {
	return app.State{
		Version: "1.2.3",
		Engine:  app.EngineInfo{PID: 4242, Home: "/home/a/.config/tether"},
		Relay:   app.RelayState{URL: "https://relay.example.com", Wanted: true, Phase: app.RelayConnected, Since: now.Add(-time.Hour)},
		Token: app.TokenState{Present: true, Source: app.TokenFromKeychain, Last4: "wxyz", DevID: "alice", Subject: "dev:alice",
			Scope: []string{"bridge"}, Expires: now.Add(10 * 24 * time.Hour)},
		Config: app.ConfigState{Path: "/home/a/.config/tether/mcp.json"},
		Servers: []app.ServerView{
			{Name: "github", Enabled: true, Kind: app.KindStdio, Phase: app.ServerReady, ToolCount: 2, Tools: []string{"create_issue", "search"}, LogFile: "/l/github.log"},
			{Name: "files", Enabled: true, Kind: app.KindStdio, Phase: app.ServerReady, ToolCount: 1, Tools: []string{"read"}, LogFile: "/l/files.log"},
		},
	}
}

// want is one expectation on the model: the item at a key path has this
// label (and, when set, this enabled state and action).
type want struct {
	path    string // keys joined by ">"
	label   string // exact, or a prefix when it ends in "*"
	enabled *bool
	id      string
}

var yes, no = new(bool), new(bool)

func init() { *yes = true }

func TestMenuModel(t *testing.T) {
	t.Parallel()
	tools := make([]string, 22)
	for i := range tools {
		tools[i] = fmt.Sprintf("tool_%02d", i)
	}
	tests := []struct {
		name     string
		edit     func(*app.State)
		attached bool
		icon     string
		tooltip  string
		want     []want
		absent   []string
	}{
		{
			name: "connected", icon: assets.Connected,
			tooltip: "Tether — connected · 2 servers · 3 tools",
			want: []want{
				{path: "status", label: "Connected to relay.example.com as alice", enabled: no},
				{path: "token", label: "Token for alice · expires in 10 days"},
				{path: "connect", label: "Disconnect", enabled: yes, id: actDisconnect},
				{path: "server:github", label: "github — 2 tools", enabled: yes},
				{path: "server:github>restart", label: "Restart", enabled: yes, id: "restart:github"},
				{path: "server:github>toggle", label: "Disable", id: "disable:github"},
				{path: "server:github>log", label: "Show log", enabled: yes, id: "show-log:github"},
				{path: "server:github>tool#0", label: "create_issue", enabled: no},
				{path: "server:files", label: "files — 1 tool"},
				{path: "calls>none", label: "No calls yet"},
				{path: "service", label: "Run in background as a service", enabled: yes, id: actServiceInstall},
				{path: "forget-token", label: "Forget stored token", enabled: yes},
				{path: "about", label: "About Tether 1.2.3"},
				{path: "quit", label: "Quit Tether", id: actQuit},
			},
			absent: []string{"attached", "relay-error", "config-error"},
		},
		{
			name: "connecting first attempt", icon: assets.Connecting,
			edit: func(s *app.State) { s.Relay.Phase = "connecting" },
			want: []want{
				{path: "status", label: "Connecting to relay.example.com…"},
				{path: "connect", label: "Disconnect", id: actDisconnect},
			},
		},
		{
			name: "backoff with retry in 8 s", icon: assets.Connecting,
			tooltip: "Tether — connecting · 2 servers · 3 tools",
			edit: func(s *app.State) {
				s.Relay.Phase, s.Relay.Attempt = "backoff", 3
				s.Relay.NextRetry = now.Add(7200 * time.Millisecond)
				s.Relay.LastError = "dial tcp 10.0.0.1:443: connect: connection refused"
			},
			want: []want{
				{path: "status", label: "Connecting… retry in 8 s"},
				{path: "relay-error", label: "Last error: dial tcp 10.0.0.1:443: connect: connection refused"},
				{path: "connect", label: "Disconnect"},
			},
		},
		{
			name: "disconnected on purpose", icon: assets.Offline,
			edit: func(s *app.State) { s.Relay.Phase, s.Relay.Wanted, s.Relay.Reason = "offline", false, "disconnected" },
			want: []want{
				{path: "status", label: "Disconnected"},
				{path: "connect", label: "Connect", enabled: yes, id: actConnect},
			},
		},
		{
			name: "offline, wanted, reason shown", icon: assets.Offline,
			edit: func(s *app.State) { s.Relay.Phase, s.Relay.Reason = "offline", "stopped" },
			want: []want{{path: "status", label: "Offline"}, {path: "connect", label: "Connect", enabled: yes}},
		},
		{
			name: "token rejected", icon: assets.Attention,
			tooltip: "Tether — needs attention · 2 servers · 3 tools",
			edit: func(s *app.State) {
				s.Relay.Phase, s.Relay.Unauthorized, s.Relay.Reason = "rejected", true, "the relay rejected the token"
			},
			want: []want{
				{path: "status", label: "Token rejected by the relay — paste a new one"},
				{path: "connect", label: "Connect", enabled: yes, id: actConnect},
			},
		},
		{
			name: "replaced by another bridge", icon: assets.Attention,
			edit: func(s *app.State) { s.Relay.Phase, s.Relay.Replaced = "rejected", true },
			want: []want{
				{path: "status", label: "Another Tether took over this bridge"},
				{path: "connect", label: "Connect (take the bridge back)", enabled: yes, id: actConnect},
			},
		},
		{
			name: "token expired", icon: assets.Attention,
			edit: func(s *app.State) {
				s.Relay.Phase, s.Relay.Unauthorized = "rejected", true
				s.Token.Expired, s.Token.Expires = true, now.Add(-time.Hour)
			},
			want: []want{
				{path: "status", label: "Token expired — paste a new one"},
				{path: "connect", label: "Connect", enabled: no},
				{path: "paste-token", label: "Paste token from clipboard", enabled: yes},
			},
			absent: []string{"token"},
		},
		{
			name: "token expired while offline", icon: assets.Attention,
			edit: func(s *app.State) {
				s.Relay.Phase = app.RelayOffline
				s.Token.Expired, s.Token.Expires = true, now.Add(-time.Hour)
			},
			want: []want{{path: "status", label: "Token expired — paste a new one"}},
		},
		{
			name: "token expiring soon", icon: assets.Connected,
			edit: func(s *app.State) { s.Token.ExpiringSoon, s.Token.Expires = true, now.Add(50*time.Hour) },
			want: []want{{path: "token", label: "Token for alice expires in 2 days — paste a new one soon"}},
		},
		{
			name: "token without expiry from env", icon: assets.Connected,
			edit: func(s *app.State) { s.Token.Expires, s.Token.Source = time.Time{}, "env" },
			want: []want{
				{path: "token", label: "Token for alice · never expires"},
				{path: "forget-token", label: "Forget stored token", enabled: no},
			},
		},
		{
			name: "no token", icon: assets.Offline,
			edit: func(s *app.State) {
				s.Relay.Phase = app.RelayOffline
				// The real lookup's text: long, and without "not found".
				s.Token = app.TokenState{Status: app.TokenMissing, Error: "no bridge token found. Looked, in order:\n  1. --token-file / $TETHER_TOKEN_FILE: not set"}
			},
			want: []want{
				{path: "status", label: "No token — sign in to connect"},
				{path: "connect", label: "Connect", enabled: no},
			},
			absent: []string{"token"},
		},
		{
			name: "sign-in waiting", icon: assets.Offline,
			edit: func(s *app.State) {
				s.Relay.Phase, s.Token = app.RelayOffline, app.TokenState{Status: app.TokenMissing}
				s.Login = app.LoginState{Phase: app.LoginWaiting, Relay: "https://relay.example.com", UserCode: "BCDF-GHJK",
					VerificationURI: "https://relay.example.com/device", VerificationURIComplete: "https://relay.example.com/device?user_code=BCDF-GHJK",
					Expires: now.Add(9 * time.Minute)}
			},
			want: []want{
				{path: "sign-in-code", label: "Enter code BCDF-GHJK on relay.example.com", enabled: no},
				{path: "sign-in-open", label: "Open the sign-in page", enabled: yes, id: actSignInOpen},
				{path: "sign-in-cancel", label: "Cancel sign-in", enabled: yes, id: actSignInAbort},
				{path: "sign-in", label: "Sign in with browser…", enabled: no},
			},
		},
		{
			name: "sign-in code expired", icon: assets.Connected,
			edit: func(s *app.State) {
				s.Login = app.LoginState{Phase: app.LoginWaiting, Relay: "https://relay.example.com", UserCode: "BCDF-GHJK", Expires: now}
			},
			want:   []want{{path: "sign-in", label: "Sign in with browser…", enabled: yes, id: actSignIn}},
			absent: []string{"sign-in-code", "sign-in-open", "sign-in-cancel"},
		},
		{
			name: "keychain unreachable", icon: assets.Offline,
			edit: func(s *app.State) {
				s.Relay.Phase = app.RelayOffline
				s.Token = app.TokenState{Status: app.TokenKeychainUnavailable, Error: "no bridge token found; the OS keychain is unavailable"}
			},
			want: []want{{path: "status", label: "No keychain here — use a token file"}},
		},
		{
			name: "token file unreadable", icon: assets.Offline,
			edit: func(s *app.State) {
				s.Relay.Phase = app.RelayOffline
				s.Token = app.TokenState{Status: app.TokenUnreadable, Error: "token file from --token-file: open /x: no such file or directory"}
			},
			want: []want{{path: "status", label: "Token could not be read — see details"}},
		},
		{
			name: "no relay", icon: assets.Offline,
			edit: func(s *app.State) { s.Relay = app.RelayState{Phase: app.RelayOffline, Wanted: true} },
			want: []want{
				{path: "status", label: "No relay set*"},
				{path: "connect", label: "Connect", enabled: no},
			},
		},
		{
			name: "invalid mcp.json", icon: assets.Attention,
			edit: func(s *app.State) {
				s.Config.Error = "mcp.json:3:5: invalid character '}' looking for beginning of object key string"
			},
			want: []want{
				{path: "config-error", label: "mcp.json has an error: mcp.json:3:5: invalid character '}' looking fo…", enabled: no},
				{path: "server:github", label: "github — 2 tools"},
			},
		},
		{
			name: "missing variables", icon: assets.Connected,
			edit: func(s *app.State) { s.Config.Missing = []string{"github: GITHUB_TOKEN"} },
			want: []want{{path: "config-missing", label: "Variables not set: github: GITHUB_TOKEN"}},
		},
		{
			name: "server starting", icon: assets.Connected,
			edit: func(s *app.State) { s.Servers[1] = app.ServerView{Name: "files", Enabled: true, Phase: "starting"} },
			want: []want{
				{path: "server:files", label: "files — starting…"},
				{path: "server:files>log", label: "Show log", enabled: yes, id: "show-log:files"},
			},
			absent: []string{"server:files>tool#0"},
		},
		{
			name: "server restarting after a crash", icon: assets.Connected,
			edit: func(s *app.State) {
				s.Servers[1] = app.ServerView{Name: "files", Enabled: true, Phase: "backoff", Restarts: 2,
					NextRestart: now.Add(2500 * time.Millisecond), LastError: "exit status 1"}
			},
			want: []want{
				{path: "server:files", label: "files — crashed 2× · restarting in 3 s"},
				{path: "server:files>error", label: "Last error: exit status 1"},
			},
		},
		{
			name: "server crash-looping", icon: assets.Attention,
			edit: func(s *app.State) {
				s.Servers[1] = app.ServerView{Name: "db", Enabled: true, Phase: "crashloop", Restarts: 3, LastError: "exit status 2", LogFile: "/l/db.log"}
			},
			want: []want{
				{path: "server:db", label: "db — crashed 3× · see log"},
				{path: "server:db>restart", label: "Restart", enabled: yes, id: "restart:db"},
				{path: "server:db>log", label: "Show log", enabled: yes},
			},
		},
		{
			name: "server disabled", icon: assets.Connected,
			tooltip: "Tether — connected · 1 server · 2 tools",
			edit:    func(s *app.State) { s.Servers[1] = app.ServerView{Name: "files", Enabled: false, Phase: "disabled"} },
			want: []want{
				{path: "server:files", label: "files — disabled"},
				{path: "server:files>restart", label: "Restart", enabled: no},
				{path: "server:files>toggle", label: "Enable", enabled: yes, id: "enable:files"},
			},
		},
		{
			name: "many tools", icon: assets.Connected,
			edit: func(s *app.State) {
				s.Servers[0].Tools, s.Servers[0].ToolCount, s.Servers[0].Hidden = tools, len(tools), 4
			},
			want: []want{
				{path: "server:github", label: "github — 22 tools"},
				{path: "server:github>hidden", label: "4 tools hidden by allow/deny in mcp.json"},
				{path: "server:github>tool#0", label: "tool_00"},
				{path: "server:github>tool#9", label: "tool_09"},
				{path: "server:github>more", label: "and 12 more"},
			},
			absent: []string{"server:github>tool#10"},
		},
		{
			name: "no servers", icon: assets.Connected,
			tooltip: "Tether — connected · 0 servers · 0 tools",
			edit:    func(s *app.State) { s.Servers = nil },
			want:    []want{{path: "no-servers", label: "No servers yet — Edit servers… to add one"}},
		},
		{
			name: "recent calls", icon: assets.Connected,
			edit: func(s *app.State) {
				for i := range 7 {
					s.Calls = append(s.Calls, app.CallRecord{At: now.Add(-time.Duration(i+1) * 30 * time.Second),
						Server: "github", Tool: "search", Duration: 42 * time.Millisecond, Outcome: "ok"})
				}
				s.Calls[1].Outcome, s.Calls[1].Duration, s.Calls[1].Error = "tool_error", 1500*time.Millisecond, "rate limited"
			},
			want: []want{
				{path: "calls>call#0", label: "github/search · 42 ms · ok · 30 s ago"},
				{path: "calls>call#1", label: "github/search · 1.5 s · tool error · 1 min ago"},
				{path: "calls>call#4", label: "github/search*"},
			},
			absent: []string{"calls>call#5", "calls>none"},
		},
		{
			name: "attached to the service", attached: true, icon: assets.Connected,
			edit: func(s *app.State) { s.Engine.Service = true },
			want: []want{
				{path: "attached", label: "Showing the background service (pid 4242)"},
				{path: "service", label: "Stop running in background (uninstall service)", enabled: yes, id: actServiceUninstall},
				{path: "quit", label: "Quit tray (Tether keeps running)"},
			},
		},
		{
			name: "attached to a foreground tetherd", attached: true, icon: assets.Connected,
			want: []want{
				{path: "attached", label: "Showing tetherd (pid 4242)"},
				{path: "service", label: "Run in background as a service", enabled: no},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := base()
			if tt.edit != nil {
				tt.edit(&st)
			}
			m := menuModel(st, now, tt.attached)
			if m.Icon != tt.icon {
				t.Errorf("icon = %q, want %q", m.Icon, tt.icon)
			}
			if tt.tooltip != "" && m.Tooltip != tt.tooltip {
				t.Errorf("tooltip = %q, want %q", m.Tooltip, tt.tooltip)
			}
			for _, w := range tt.want {
				it := m.find(strings.Split(w.path, ">")...)
				if it == nil {
					t.Errorf("%s: missing; menu:\n%s", w.path, dump(m.Items, 0))
					continue
				}
				if p, ok := strings.CutSuffix(w.label, "*"); ok && !strings.HasPrefix(it.Label, p) || !ok && it.Label != w.label {
					t.Errorf("%s: label %q, want %q", w.path, it.Label, w.label)
				}
				if w.enabled != nil && it.Enabled != *w.enabled {
					t.Errorf("%s: enabled %v, want %v", w.path, it.Enabled, *w.enabled)
				}
				if w.id != "" && it.ID != w.id {
					t.Errorf("%s: action %q, want %q", w.path, it.ID, w.id)
				}
			}
			for _, p := range tt.absent {
				if it := m.find(strings.Split(p, ">")...); it != nil {
					t.Errorf("%s: present (%q), want absent", p, it.Label)
				}
			}
			checkModel(t, m.Items)
		})
	}
}

// checkModel checks what every state must satisfy: sibling keys are unique
// (the renderer matches on them), information lines are disabled, actions
// have ids, and no line is longer than the menu allows.
func checkModel(t *testing.T, items []Item) {
	t.Helper()
	seen := map[string]bool{}
	for _, it := range items {
		if it.Key == "" || seen[it.Key] {
			t.Errorf("key %q empty or repeated", it.Key)
		}
		seen[it.Key] = true
		if it.Separator {
			continue
		}
		if it.ID == "" && len(it.Children) == 0 && it.Enabled {
			t.Errorf("%s: information line %q is enabled", it.Key, it.Label)
		}
		if n := len([]rune(it.Label)); n > maxLine && it.Key != "status" && !strings.HasPrefix(it.Key, "calls") {
			t.Errorf("%s: label has %d characters", it.Key, n)
		}
		checkModel(t, it.Children)
	}
}

func dump(items []Item, depth int) string {
	var b strings.Builder
	for _, it := range items {
		fmt.Fprintf(&b, "%s%s %q enabled=%v id=%q\n", strings.Repeat("  ", depth), it.Key, it.Label, it.Enabled, it.ID)
		b.WriteString(dump(it.Children, depth+1))
	}
	return b.String()
}

func TestHelpers(t *testing.T) {
	t.Parallel()
	cases := []struct{ got, want string }{
		{seconds(7200 * time.Millisecond), "8 s"},
		{seconds(time.Millisecond), "1 s"},
		{seconds(3 * time.Minute), "3 min"},
		{until(now.Add(30*time.Minute), now), "in 31 minutes"},
		{until(now.Add(5*time.Hour), now), "in 5 hours"},
		{until(now.Add(90*24*time.Hour), now), "on " + now.Add(90*24*time.Hour).Local().Format(time.DateOnly)},
		{relayHost("wss://r.example.com:8443/x"), "r.example.com:8443"},
		{relayHost("not a url"), "not a url"},
		{clip("a\n  b"), "a b"},
		{plural(1, "tool"), "1 tool"},
		{duration(2500 * time.Millisecond), "2.5 s"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

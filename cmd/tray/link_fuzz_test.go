package main

import (
	"net/url"
	"strings"
	"testing"

	"github.com/tether-dev/tether/app"
)

// FuzzParseLink feeds any string to the tether:// link parser, which reads
// what any web page can hand the tray. An accepted link names an http(s)
// relay with a host, http only to this machine; neither an error nor the
// question shown to the user carries the link's token.
func FuzzParseLink(f *testing.F) {
	for _, s := range []string{
		"tether://connect?relay=https%3A%2F%2Frelay.example.com",
		"tether://connect?relay=https://relay.example.com:8443/team&token=not.a.token",
		"tether:connect?relay=http://127.0.0.1:8080",
		"tether://connect?relay=http://evil.example",
		"tether://connect?relay=http://localhost.evil.example",
		"tether://connect?relay=https://user:pw@relay.example.com/?x=1#f",
		"TETHER://CONNECT/?relay=https://r.example&relay=http://evil.example",
		"tether://connect?token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJkZXY6YWxpY2UifQ.sig",
		"tether://evil?relay=https://relay.example.com",
		"tether://connect?relay=javascript:alert(1)",
		"tether://connect?relay=https://%E2%80%AEmoc.elpmaxe",
		"tether://connect", "tether:", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		// The token, unless the link repeats it in its relay (which the
		// user is shown, and the errors name).
		var tok string
		if u, err := url.Parse(raw); err == nil {
			q := u.Query()
			if tok = strings.TrimSpace(q.Get("token")); strings.Contains(q.Get("relay"), tok) {
				tok = ""
			}
		}
		l, err := parseLink(raw)
		if err != nil {
			if len(tok) >= 16 && strings.Contains(err.Error(), tok) {
				t.Fatalf("the error carries the token: %v", err)
			}
			return
		}
		if l.relay != "" {
			u, err := url.Parse(l.relay)
			if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
				t.Fatalf("accepted relay %q", l.relay)
			}
			if u.Scheme == "http" && !app.IsLoopbackHost(u.Hostname()) {
				t.Fatalf("accepted http:// to another machine: %q", l.relay)
			}
		}
		if len(tok) >= 16 && strings.Contains(l.question(), tok) {
			t.Fatalf("the question carries the token: %q", l.question())
		}
	})
}

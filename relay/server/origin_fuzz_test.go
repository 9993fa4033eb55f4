package server

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzHostOrigin feeds any Host and Origin to the browser guard's checks.
// An accepted Host names the relay (its public URL's host), this machine,
// or an IP literal; an accepted Origin is an allowed origin, the public
// URL, or the relay's own page on the Host it was asked on.
func FuzzHostOrigin(f *testing.F) {
	for _, s := range [][2]string{
		{"relay.example.com", "https://app.example.com"},
		{"RELAY.example.com.:443", "HTTPS://APP.EXAMPLE.COM"},
		{"127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"[::1]:8080", "http://[::1]:8080"},
		{"localhost", "null"},
		{"evil.localhost", "http://evil.localhost"},
		{"evil.example", "https://evil.example"},
		{"relay.example.com.evil.example", "https://app.example.com.evil.example"},
		{"relay.example.com@evil.example", "https://relay.example.com@evil.example"},
		{"[relay.example.com]", "https://app.example.com/path?q#f"},
		{"", " https://app.example.com "},
		{"127.0.0.1.nip.io", "file://"},
		{"xn--rlay-hra.example.com", "https://relay.example.com:8443"},
	} {
		f.Add(s[0], s[1])
	}
	s := &Server{PublicURLs: []string{"https://relay.example.com"}, AllowOrigins: []string{"https://app.example.com"}}
	f.Fuzz(func(t *testing.T, host, origin string) {
		if s.hostAllowed(host) {
			h := strings.ToLower(strings.TrimSuffix(hostOnly(host), "."))
			ip := net.ParseIP(h)
			if h != "relay.example.com" && ip == nil && h != "localhost" && !strings.HasSuffix(h, ".localhost") {
				t.Fatalf("Host %q (%q) accepted", host, h)
			}
		}
		r := httptest.NewRequest(http.MethodPost, "/mcp/alice/test", nil)
		r.Host = host
		if s.originAllowed(origin, r) {
			switch o := normOrigin(origin); o {
			case "https://app.example.com", "https://relay.example.com", strings.ToLower("http://" + host):
			default:
				t.Fatalf("Origin %q (%q) accepted on Host %q", origin, o, host)
			}
		}
	})
}

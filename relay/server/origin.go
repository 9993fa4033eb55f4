package server

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Browser guard for the MCP endpoints, as the MCP spec requires of
// Streamable HTTP servers against DNS rebinding: a web page on evil.example
// can make a browser send requests to the relay (its name resolving to the
// relay's address, or the relay on the user's own machine), and only Host
// and Origin say so.
//
//   - Host must be a name of this relay: one of PublicURLs' hosts, a
//     loopback name, or an IP literal. A rebinding attack needs a DNS name
//     the attacker controls, so IP literals are safe and a relay that
//     nobody configured keeps working on its address; a relay served under
//     a DNS name lists it with --public-url.
//   - A request with an Origin header (only browsers send one) is refused
//     unless that origin is on AllowOrigins or is the relay's own. Clients
//     that are not browsers send no Origin and are not affected.
//
// Allowed browser origins get CORS headers, so a web client (the MCP
// Inspector in a browser, a hosted agent's page) can read Mcp-Session-Id.

// isLoopbackHost reports whether host (no port) is a loopback name.
func isLoopbackHost(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && ip.IsLoopback()
}

// hostOnly strips the port from a Host header value.
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

// hostAllowed reports whether the Host header names this relay.
func (s *Server) hostAllowed(hostport string) bool {
	host := strings.ToLower(strings.TrimSuffix(hostOnly(hostport), "."))
	if host == "" {
		return false
	}
	if isLoopbackHost(host) || net.ParseIP(host) != nil {
		return true
	}
	for _, u := range s.PublicURLs {
		if pu, err := url.Parse(u); err == nil && strings.EqualFold(hostOnly(pu.Host), host) {
			return true
		}
	}
	return false
}

// normOrigin is scheme://host[:port] in lower case, the form browsers send.
func normOrigin(o string) string {
	u, err := url.Parse(strings.TrimSpace(o))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return strings.ToLower(u.Scheme + "://" + u.Host)
}

// originAllowed reports whether a browser origin may call the relay.
func (s *Server) originAllowed(origin string, r *http.Request) bool {
	o := normOrigin(origin)
	if o == "" {
		return false // "null" (sandboxed frames, file://) and garbage
	}
	for _, a := range s.AllowOrigins {
		if a == "*" || normOrigin(a) == o {
			return true
		}
	}
	for _, u := range s.PublicURLs {
		if normOrigin(u) == o {
			return true
		}
	}
	// The relay's own page, reached on the address it was asked on.
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return o == strings.ToLower(scheme+"://"+r.Host)
}

// guardBrowser wraps the MCP endpoints with the Host and Origin checks and
// answers CORS preflights for allowed origins.
func (s *Server) guardBrowser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hostAllowed(r.Host) {
			s.metrics.refused("host")
			// Refused before the body is read, as a 401 is: with
			// Connection: close net/http answers at once instead of
			// draining (or waiting up to the body timeout for) the body.
			w.Header().Set("Connection", "close")
			writeJSON(w, http.StatusMisdirectedRequest, map[string]string{
				"error": "host " + quoteHost(r.Host) + " is not a name of this relay; start tether-relay with --public-url https://" + hostOnly(r.Host) + " to serve it",
			})
			return
		}
		origin := r.Header.Get("Origin")
		if origin != "" {
			if !s.originAllowed(origin, r) {
				s.metrics.refused("origin")
				w.Header().Set("Connection", "close")
				writeJSON(w, http.StatusForbidden, map[string]string{
					"error": "origin " + quoteHost(origin) + " is not allowed; start tether-relay with --allow-origin " + normOriginOr(origin) + " to let that web app in",
				})
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Expose-Headers", "Mcp-Session-Id, Mcp-Protocol-Version, WWW-Authenticate, Retry-After")
			if r.Method == http.MethodOptions {
				h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept, Mcp-Session-Id, Mcp-Protocol-Version, Last-Event-ID, Mcp-Method, Mcp-Name")
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func quoteHost(s string) string {
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return `"` + strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' {
			return -1
		}
		return r
	}, s) + `"`
}

func normOriginOr(o string) string {
	if n := normOrigin(o); n != "" {
		return n
	}
	return "ORIGIN"
}

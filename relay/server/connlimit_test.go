package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

// echoBehind serves an echo on a loopback listener wrapped by
// LimitListener(total, perIP, exempt) and returns a dialer and a check
// that a connection is served.
func echoBehind(t *testing.T, total, perIP int, exempt func(netip.Addr) bool) (dial func() net.Conn, echoes func(net.Conn) bool) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := LimitListener(raw, total, perIP, exempt, nil)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }() // echo until the peer closes
		}
	}()
	dial = func() net.Conn {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	echoes = func(c net.Conn) bool {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("x")); err != nil {
			return false
		}
		var b [1]byte
		_, err := c.Read(b[:])
		return err == nil
	}
	return dial, echoes
}

// TestLimitListenerPerIP: connections over the per-address cap are
// closed at once; once one closes, a new one is served.
func TestLimitListenerPerIP(t *testing.T) {
	dial, echoes := echoBehind(t, 0, 2, nil)
	a, b := dial(), dial()
	if !echoes(a) || !echoes(b) {
		t.Fatal("connections under the cap not served")
	}
	if echoes(dial()) {
		t.Fatal("a third connection from one address was served")
	}
	a.Close()
	eventually(t, "a connection after one closed", func() bool { return echoes(dial()) })
}

// TestLimitListenerTotal: the overall cap holds whatever the addresses.
func TestLimitListenerTotal(t *testing.T) {
	dial, echoes := echoBehind(t, 2, 0, nil)
	a, b := dial(), dial()
	if !echoes(a) || !echoes(b) {
		t.Fatal("connections under the cap not served")
	}
	if echoes(dial()) {
		t.Fatal("a connection over the total cap was served")
	}
	b.Close()
	eventually(t, "a connection after one closed", func() bool { return echoes(dial()) })
}

// TestLimitListenerExemptsTrustedProxy: behind a reverse proxy every
// connection comes from the proxy's address; it is exempt from the
// per-address cap (else a default relay would serve 256 connections in
// all) but still counts against the total.
func TestLimitListenerExemptsTrustedProxy(t *testing.T) {
	loopback := func(a netip.Addr) bool { return a.IsLoopback() }
	dial, echoes := echoBehind(t, 3, 1, loopback)
	for i := range 3 {
		if !echoes(dial()) {
			t.Fatalf("connection %d from the trusted proxy not served (per-address cap 1)", i+1)
		}
	}
	if echoes(dial()) {
		t.Fatal("a connection over the total cap was served")
	}
}

// TestAuthErrorDoesNotReadBody: a refusal before the body (401 for a bad
// token, 403 for a foreign Origin, 421 for a foreign Host) is sent while
// the promised body has not arrived, and the connection is closed rather
// than drained — a stranger cannot hold a connection for the body timeout.
func TestAuthErrorDoesNotReadBody(t *testing.T) {
	r := newTestRelay(t, 5*time.Second)
	good := mustToken(t, "alice", ScopeClient)
	for _, tc := range []struct {
		name, host, auth, origin string
		want                     int
	}{
		{"forged token", "127.0.0.1", "forged", "", http.StatusUnauthorized},
		{"foreign origin", "127.0.0.1", good, "https://evil.example", http.StatusForbidden},
		{"foreign origin, no token", "127.0.0.1", "", "https://evil.example", http.StatusForbidden},
		{"foreign host", "evil.example", good, "", http.StatusMisdirectedRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", r.ts.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "POST /mcp/alice/everything HTTP/1.1\r\nHost: %s\r\n", tc.host)
			if tc.auth != "" {
				fmt.Fprintf(conn, "Authorization: Bearer %s\r\n", tc.auth)
			}
			if tc.origin != "" {
				fmt.Fprintf(conn, "Origin: %s\r\n", tc.origin)
			}
			fmt.Fprintf(conn, "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", 1000)
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer before the body: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want || !resp.Close {
				t.Fatalf("status %d close %v, want %d with Connection: close", resp.StatusCode, resp.Close, tc.want)
			}
		})
	}
}

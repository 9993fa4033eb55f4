package main

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The defaults cut a client that stops sending within 30 s, whatever it
// stalls on (the body deadline is the relay's, tested in relay/server).
func TestDefaultHTTPLimits(t *testing.T) {
	if defaultHTTPLimits.header > 30*time.Second || defaultHTTPLimits.idle > 30*time.Second {
		t.Fatalf("header %v idle %v: a stalled client must be cut within 30 s", defaultHTTPLimits.header, defaultHTTPLimits.idle)
	}
	if defaultHTTPLimits.maxHeader < 16<<10 || defaultHTTPLimits.maxHeader > 1<<20 {
		t.Fatalf("maxHeader %d", defaultHTTPLimits.maxHeader)
	}
}

// newHTTPServer's limits at work, shortened: a connection that stalls in
// its headers is closed, an idle keep-alive connection is closed, and
// headers over the limit get 431.
func TestHTTPServerLimits(t *testing.T) {
	lim := httpLimits{header: 300 * time.Millisecond, idle: 300 * time.Millisecond, maxHeader: 4 << 10}
	srv := newHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}), lim, slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	dial := func(t *testing.T) net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second)) // far beyond the limits: a hang fails, not blocks
		return c
	}
	// closedWithin reads until the server closes the connection and
	// reports how long that took.
	closedWithin := func(t *testing.T, r io.Reader) time.Duration {
		start := time.Now()
		if _, err := io.Copy(io.Discard, r); err != nil {
			t.Fatalf("connection not closed by the server: %v", err)
		}
		return time.Since(start)
	}

	t.Run("stalled headers", func(t *testing.T) {
		c := dial(t)
		fmt.Fprint(c, "POST /mcp/alice/x HTTP/1.1\r\nHost: 127.0.0.1\r\n") // and nothing more
		if d := closedWithin(t, c); d > 5*time.Second {
			t.Fatalf("closed after %v", d)
		}
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		c := dial(t)
		br := bufio.NewReader(c)
		fmt.Fprint(c, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Close {
			t.Fatal("the server closed a keep-alive connection after one request")
		}
		if d := closedWithin(t, br); d > 5*time.Second {
			t.Fatalf("idle connection closed after %v", d)
		}
	})
	t.Run("headers over the limit", func(t *testing.T) {
		c := dial(t)
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: %s\r\n\r\n", strings.Repeat("a", 8<<10))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("status %d, want 431", resp.StatusCode)
		}
	})
}

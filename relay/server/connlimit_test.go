package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestLimitListenerPerIP: connections over the per-address cap are
// closed at once; once one closes, a new one is served.
func TestLimitListenerPerIP(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := LimitListener(raw, 0, 2, nil)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }() // echo until the peer closes
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	echoes := func(c net.Conn) bool {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("x")); err != nil {
			return false
		}
		var b [1]byte
		_, err := c.Read(b[:])
		return err == nil
	}
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

// TestAuthErrorDoesNotReadBody: a 401 is sent while the promised body has
// not arrived, and the connection is closed rather than drained.
func TestAuthErrorDoesNotReadBody(t *testing.T) {
	r := newTestRelay(t, 5*time.Second)
	conn, err := net.Dial("tcp", r.ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /mcp/alice/everything HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer forged\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", 1000)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer before the body: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !resp.Close {
		t.Fatalf("status %d close %v, want 401 with Connection: close", resp.StatusCode, resp.Close)
	}
}

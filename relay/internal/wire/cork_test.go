package wire

import (
	"bytes"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// countingConn records every Write that reaches the network.
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, append([]byte(nil), p...))
	return len(p), nil
}

func (c *countingConn) SetWriteDeadline(time.Time) error { return nil }

func (c *countingConn) taken() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.writes
	c.writes = nil
	return w
}

func TestCorkConnBatchesWhileCorked(t *testing.T) {
	under := &countingConn{}
	cc := NewCorkConn(under)

	// Uncorked, every write goes straight through (control frames from
	// other goroutines must not wait).
	cc.Write([]byte("a"))
	if w := under.taken(); len(w) != 1 || string(w[0]) != "a" {
		t.Fatalf("uncorked write: %q", w)
	}

	cc.Cork()
	for _, s := range []string{"b", "cd", "e"} {
		cc.Write([]byte(s))
	}
	if w := under.taken(); len(w) != 0 {
		t.Fatalf("corked writes reached the network: %q", w)
	}
	if err := cc.Uncork(time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if w := under.taken(); len(w) != 1 || string(w[0]) != "bcde" {
		t.Fatalf("uncork wrote %q, want one write of bcde", w)
	}
	if err := cc.Uncork(time.Now()); err != nil {
		t.Fatal(err)
	}
	if w := under.taken(); len(w) != 0 {
		t.Fatalf("an empty uncork wrote %q", w)
	}
}

func TestCorkConnSendsWhenFull(t *testing.T) {
	under := &countingConn{}
	cc := NewCorkConn(under)
	cc.Cork()
	cc.Write([]byte("head"))
	big := bytes.Repeat([]byte("x"), corkMax)
	cc.Write(big)
	var got []byte
	for _, w := range under.taken() {
		got = append(got, w...)
	}
	if want := append([]byte("head"), big...); !bytes.Equal(got, want) {
		t.Fatalf("a write over the cork limit sent %d bytes, want %d in order", len(got), len(want))
	}
	cc.Write([]byte("tail"))
	cc.Uncork(time.Now())
	if w := under.taken(); len(w) != 1 || string(w[0]) != "tail" {
		t.Fatalf("after the overflow: %q", w)
	}
}

// The before-read hook runs ahead of every Read of the connection, which is
// when the layers above have handed on all they held.
func TestCorkConnBeforeRead(t *testing.T) {
	c, s := tcpPair(t)
	cc := NewCorkConn(c)
	var events []string
	cc.SetBeforeRead(func() { events = append(events, "wait") })
	s.Write([]byte("ab"))
	b := make([]byte, 1)
	for range 2 {
		if _, err := cc.Read(b); err != nil {
			t.Fatal(err)
		}
		events = append(events, string(b))
	}
	if got := strings.Join(events, ","); got != "wait,a,wait,b" {
		t.Fatalf("events %q, want the hook before each read", got)
	}
}

package wire

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// tcpPair returns both ends of a real loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-acc
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// A read deadline pushed later while a read is waiting still holds: the
// read fails at the latest deadline, not at the first one armed.
func TestCorkConnReadDeadlineMovedLater(t *testing.T) {
	c, _ := tcpPair(t)
	cc := NewCorkConn(c)
	start := time.Now()
	cc.SetReadDeadline(start.Add(50 * time.Millisecond))
	cc.SetReadDeadline(start.Add(300 * time.Millisecond)) // armed stays at 50 ms
	_, err := cc.Read(make([]byte, 1))
	took := time.Since(start)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v, want a deadline error", err)
	}
	if took < 300*time.Millisecond || took > 2*time.Second {
		t.Fatalf("read failed after %v, want at the 300 ms deadline", took)
	}
}

// Data that arrives after the first armed deadline passed but before the
// latest one is read, not lost.
func TestCorkConnReadAfterRearm(t *testing.T) {
	c, s := tcpPair(t)
	cc := NewCorkConn(c)
	cc.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	cc.SetReadDeadline(time.Now().Add(5 * time.Second))
	go func() {
		time.Sleep(150 * time.Millisecond) // after the first deadline: the point of the test
		s.Write([]byte("x"))
	}()
	b := make([]byte, 1)
	if n, err := cc.Read(b); n != 1 || err != nil || b[0] != 'x' {
		t.Fatalf("read %d %q %v", n, b[:n], err)
	}
}

// An earlier deadline takes effect at once.
func TestCorkConnReadDeadlineMovedEarlier(t *testing.T) {
	c, _ := tcpPair(t)
	cc := NewCorkConn(c)
	start := time.Now()
	cc.SetReadDeadline(start.Add(5 * time.Second))
	cc.SetReadDeadline(start.Add(100 * time.Millisecond))
	_, err := cc.Read(make([]byte, 1))
	if took := time.Since(start); !errors.Is(err, os.ErrDeadlineExceeded) || took > 2*time.Second {
		t.Fatalf("read: %v after %v, want the 100 ms deadline", err, took)
	}
}

// A peer that does not read: writes go through without blocking until the
// socket is full, then the write deadline ends the one that would block.
func TestCorkConnWriteDeadlineOnFullSocket(t *testing.T) {
	c, _ := tcpPair(t)
	cc := NewCorkConn(c)
	chunk := make([]byte, 1<<20)
	start := time.Now()
	cc.SetWriteDeadline(start.Add(300 * time.Millisecond))
	var err error
	for i := 0; i < 256 && err == nil; i++ {
		_, err = cc.Write(chunk)
	}
	took := time.Since(start)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write: %v, want a deadline error", err)
	}
	if took > 3*time.Second {
		t.Fatalf("write failed after %v, want near the 300 ms deadline", took)
	}
}

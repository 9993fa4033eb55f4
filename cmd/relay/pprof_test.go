package main

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
)

// TestPprofListener: with TETHER_PPROF set, the profiling endpoints answer
// on that address (and only there).
func TestPprofListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // free the port for startPprof
	t.Setenv("TETHER_PPROF", addr)
	startPprof(slog.New(slog.DiscardHandler))
	resp, err := http.Get("http://" + addr + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || len(body) == 0 {
		t.Fatalf("pprof answered %d %q", resp.StatusCode, body)
	}
}

package app

import (
	"path/filepath"
	"testing"
)

// BenchmarkControlState measures one GET /v1/state over the socket.
func BenchmarkControlState(b *testing.B) {
	dir := controlDir(b)
	srv, err := ServeControl(b.Context(), filepath.Join(dir, "tether.sock"), newFakeControl(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	cl, err := DialControl(b.Context(), srv.Path())
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	for b.Loop() {
		if _, err := cl.State(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}

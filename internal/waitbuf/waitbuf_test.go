package waitbuf

import (
	"strings"
	"testing"
)

func TestBufferWakesWaiters(t *testing.T) {
	var b Buffer
	text, changed := b.Snapshot()
	if text != "" {
		t.Fatalf("fresh buffer holds %q", text)
	}
	go b.Write([]byte("ready\n"))
	<-changed // a Write closes it: no polling needed
	if got := b.String(); got != "ready\n" || b.Len() != 6 {
		t.Fatalf("after write: %q (%d)", got, b.Len())
	}
}

func TestBoundedKeepsTheTail(t *testing.T) {
	b := Bounded(1000)
	for i := 0; i < 100; i++ {
		b.Write([]byte(strings.Repeat("x", 99) + "\n"))
	}
	b.Write([]byte("last line\n"))
	if b.Len() > 1200 || !strings.HasSuffix(b.String(), "last line\n") {
		t.Fatalf("bounded buffer: %d bytes, tail %q", b.Len(), b.String()[max(0, b.Len()-20):])
	}
}

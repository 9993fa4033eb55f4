package mcpchild

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

func TestRingKeepsLastLines(t *testing.T) {
	r := NewRing(3)
	for i := 1; i <= 5; i++ {
		fmt.Fprintf(r, "line %d\n", i)
	}
	want := []string{"line 3", "line 4", "line 5"}
	if got := r.Lines(); !slices.Equal(got, want) {
		t.Fatalf("Lines = %q, want %q", got, want)
	}
	if got := r.Tail(2); !slices.Equal(got, want[1:]) {
		t.Fatalf("Tail(2) = %q, want %q", got, want[1:])
	}
	if got := r.Tail(10); !slices.Equal(got, want) {
		t.Fatalf("Tail(10) = %q, want %q", got, want)
	}
	if got := r.Tail(0); len(got) != 0 {
		t.Fatalf("Tail(0) = %q, want none", got)
	}
	// Lines is a copy.
	got := r.Lines()
	got[0] = "changed"
	if r.Lines()[0] != "line 3" {
		t.Fatal("Lines returned the ring's own slice")
	}
}

func TestRingPartialLines(t *testing.T) {
	r := NewRing(10)
	r.Write([]byte("ab"))
	if got := r.Lines(); len(got) != 0 {
		t.Fatalf("partial line stored early: %q", got)
	}
	r.Write([]byte("c\r\nd"))
	r.Write([]byte("e\n\nf"))
	if got, want := r.Lines(), []string{"abc", "de", ""}; !slices.Equal(got, want) {
		t.Fatalf("Lines = %q, want %q", got, want)
	}
	r.Flush()
	r.Flush() // nothing pending: no empty line
	if got, want := r.Lines(), []string{"abc", "de", "", "f"}; !slices.Equal(got, want) {
		t.Fatalf("after Flush Lines = %q, want %q", got, want)
	}
}

func TestRingTruncatesLongLines(t *testing.T) {
	r := NewRing(4)
	// 3000 bytes in several writes, then a short line: the cut must not
	// swallow the next line.
	for range 3 {
		r.Write([]byte(strings.Repeat("x", 1000)))
	}
	r.Write([]byte("\nshort\n"))
	lines := r.Lines()
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2: %q", len(lines), lines)
	}
	if want := strings.Repeat("x", maxRingLine) + "…"; lines[0] != want {
		t.Fatalf("long line = %d bytes ending %q, want %d bytes ending with …", len(lines[0]), lines[0][len(lines[0])-5:], len(want))
	}
	if lines[1] != "short" {
		t.Fatalf("line after the long one = %q", lines[1])
	}

	// A cut in the middle of a multi-byte character leaves valid UTF-8.
	r.Write([]byte("a" + strings.Repeat("é", 1000) + "\n"))
	last := r.Tail(1)[0]
	if !utf8.ValidString(last) || !strings.HasSuffix(last, "…") || len(last) > maxRingLine+len("…") {
		t.Fatalf("cut line invalid: valid=%v len=%d", utf8.ValidString(last), len(last))
	}
	// An over-long line without a newline is cut too, and Flush ends it.
	r.Write([]byte(strings.Repeat("y", 5000)))
	r.Flush()
	if got := r.Tail(1)[0]; got != strings.Repeat("y", maxRingLine)+"…" {
		t.Fatalf("flushed long line = %d bytes", len(got))
	}
}

func TestRingConcurrentWriters(t *testing.T) {
	r := NewRing(50)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				fmt.Fprintf(r, "g%d-%d\n", g, i)
				_ = r.Tail(3)
			}
		})
	}
	wg.Wait()
	lines := r.Lines()
	if len(lines) != 50 {
		t.Fatalf("got %d lines, want 50", len(lines))
	}
	for _, l := range lines {
		var g, i int
		if n, err := fmt.Sscanf(l, "g%d-%d", &g, &i); n != 2 || err != nil {
			t.Fatalf("torn line %q", l)
		}
	}
}

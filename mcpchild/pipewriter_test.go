package mcpchild

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func newTestPipe(t *testing.T) (*os.File, *pipeWriter) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, newPipeWriter(w, nonblockingWrite(w))
}

// TestPipeWriterNeverWaitsForTheReader: with nobody reading, writes far
// beyond the pipe's buffer all return at once, and everything arrives in
// order when the reader finally reads.
func TestPipeWriterNeverWaitsForTheReader(t *testing.T) {
	r, pw := newTestPipe(t)
	const n = 2000
	line := strings.Repeat("x", 1000) // 2 MB in all, 30× a pipe's buffer
	wrote := make(chan error, 1)
	go func() {
		for i := range n {
			if err := pw.write([]byte(fmt.Sprintf("%d %s", i, line))); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("write waited for a reader that does not read")
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for i := range n {
		if !sc.Scan() {
			t.Fatalf("line %d: %v", i, sc.Err())
		}
		if want := fmt.Sprintf("%d %s", i, line); sc.Text() != want {
			t.Fatalf("line %d = %.20q…", i, sc.Text())
		}
	}
}

// TestPipeWriterConcurrentOrder: many writers at once; each writer's lines
// arrive whole and in its order, none lost.
func TestPipeWriterConcurrentOrder(t *testing.T) {
	r, pw := newTestPipe(t)
	const writers, each = 8, 3000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := pw.write([]byte(fmt.Sprintf(`{"w":%d,"i":%d,"pad":"%s"}`, w, i, strings.Repeat("p", i%300)))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	next := make([]int, writers)
	sc := bufio.NewScanner(r)
	for range writers * each {
		if !sc.Scan() {
			t.Fatalf("short read: %v", sc.Err())
		}
		var w, i int
		if _, err := fmt.Sscanf(sc.Text(), `{"w":%d,"i":%d,`, &w, &i); err != nil {
			t.Fatalf("torn line %.60q: %v", sc.Text(), err)
		}
		if i != next[w] || !bytes.HasSuffix(sc.Bytes(), []byte(strings.Repeat("p", i%300)+`"}`)) {
			t.Fatalf("writer %d: got line %d, want %d", w, i, next[w])
		}
		next[w]++
	}
	wg.Wait()
}

// TestPipeWriterReportsABrokenPipe: once the reader is gone, write fails.
func TestPipeWriterReportsABrokenPipe(t *testing.T) {
	r, pw := newTestPipe(t)
	r.Close()
	if err := pw.write([]byte("x")); err == nil {
		t.Fatal("write to a pipe with no reader succeeded")
	}
	if err := pw.write([]byte("y")); err == nil {
		t.Fatal("the pipe's failure was not kept")
	}
}

// TestLineReaderChunks: lines shorter and far longer than the reader's
// buffer, CRLF ends and a last line without a newline come back whole, with
// spare capacity for an in-place id rewrite; an oversized line is skipped
// whole and reported with its head.
func TestLineReaderChunks(t *testing.T) {
	long := strings.Repeat("a", 200<<10+7)
	huge := "HEAD" + strings.Repeat("b", 300<<10)
	in := "short\n" + long + "\r\n" + huge + "\n\nafter\nlast"
	lr := newLineReader(strings.NewReader(in), 250<<10)
	for _, want := range []string{"short", long} {
		got, err := lr.next()
		if err != nil || string(got) != want {
			t.Fatalf("got %d bytes (%v), want %d", len(got), err, len(want))
		}
		if cap(got)-len(got) < lineSlack-2 {
			t.Fatalf("no spare capacity: len %d cap %d", len(got), cap(got))
		}
	}
	_, err := lr.next()
	tl, ok := err.(*errLineTooLong)
	if !ok || tl.size != int64(len(huge)+1) || !strings.HasPrefix(string(tl.prefix), "HEAD") || len(tl.prefix) != oversizePrefix {
		t.Fatalf("oversized line: %v", err)
	}
	for _, want := range []string{"", "after", "last"} {
		got, err := lr.next()
		if err != nil || string(got) != want {
			t.Fatalf("got %q (%v), want %q", got, err, want)
		}
	}
	if _, err := lr.next(); err == nil {
		t.Fatal("no EOF at the end")
	}
}

// TestResponseIDRewrittenInPlace: a response's id is swapped without
// copying the message when the line's spare capacity allows.
func TestResponseIDRewrittenInPlace(t *testing.T) {
	line := ownLine([]byte(`{"jsonrpc":"2.0","id":12,"result":{"content":[]}}` + "\n"))
	m, err := parseMessage(line)
	if err != nil {
		t.Fatal(err)
	}
	out := m.withID([]byte(`"client-id-0123456789"`))
	if string(out) != `{"jsonrpc":"2.0","id":"client-id-0123456789","result":{"content":[]}}` {
		t.Fatalf("rewritten = %s", out)
	}
	if &out[0] != &line[0] {
		t.Fatal("the message was copied")
	}
	// id last: the same.
	m, _ = parseMessage(ownLine([]byte(`{"jsonrpc":"2.0","result":{},"id":3}`)))
	if out := m.withID([]byte(`"x"`)); string(out) != `{"jsonrpc":"2.0","result":{},"id":"x"}` {
		t.Fatalf("rewritten = %s", out)
	}
}

// TestPipeWriterHoldBatchesABurst: messages written while held stay queued
// (no write reaches the pipe), and release writes them all, in order, with
// one syscall; after release a write goes straight through again.
func TestPipeWriterHoldBatchesABurst(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	try := nonblockingWrite(w)
	var calls int
	var mu sync.Mutex
	pw := newPipeWriter(w, func(bufs [][]byte) (int, error) {
		mu.Lock()
		calls++
		mu.Unlock()
		return try(bufs)
	})
	count := func() int { mu.Lock(); defer mu.Unlock(); return calls }

	pw.hold()
	const n = 50
	for i := range n {
		if err := pw.write(fmt.Appendf(nil, `{"n":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	if c := count(); c != 0 {
		t.Fatalf("%d writes reached the pipe while held", c)
	}
	pw.release()
	if c := count(); c != 1 {
		t.Fatalf("release wrote the burst in %d syscalls, want 1", c)
	}
	if err := pw.write([]byte(`{"n":"after"}`)); err != nil {
		t.Fatal(err)
	}
	if c := count(); c != 2 {
		t.Fatalf("a write after release made %d syscalls in all, want 2", c)
	}
	sc := bufio.NewScanner(r)
	for i := range n {
		if !sc.Scan() || sc.Text() != fmt.Sprintf(`{"n":%d}`, i) {
			t.Fatalf("line %d = %q (%v)", i, sc.Text(), sc.Err())
		}
	}
	if !sc.Scan() || sc.Text() != `{"n":"after"}` {
		t.Fatalf("last line = %q", sc.Text())
	}
	pw.release() // a release with nothing held or queued is harmless
}

// TestPipeWriterHoldWithoutTryWrite: where the platform has no
// non-blocking write, release hands the queue to the drain goroutine.
func TestPipeWriterHoldWithoutTryWrite(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	pw := newPipeWriter(w, nil)
	pw.hold()
	for _, m := range []string{"a", "b", "c"} {
		if err := pw.write([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	pw.release()
	sc := bufio.NewScanner(r)
	var got []string
	for range 3 {
		if !sc.Scan() {
			t.Fatal(sc.Err())
		}
		got = append(got, sc.Text())
	}
	if strings.Join(got, ",") != "a,b,c" {
		t.Fatalf("got %v", got)
	}
}

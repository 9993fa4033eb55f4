//go:build linux || darwin

package mcpchild

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// noiseHandler counts what a flood of garbage puts into tetherd's log and
// closes done once every skipped line is accounted for, either warned about
// one by one or counted in a summary.
type noiseHandler struct {
	want int
	done chan struct{}

	mu        sync.Mutex
	records   int
	warned    int
	summaries []int
	closed    bool
}

func (h *noiseHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *noiseHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *noiseHandler) WithGroup(string) slog.Handler            { return h }
func (h *noiseHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records++
	switch {
	case strings.HasPrefix(r.Message, "skipped ") && strings.HasSuffix(r.Message, "on the server's stdout"):
		h.warned++
	case strings.HasPrefix(r.Message, "… "):
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "skipped" {
				h.summaries = append(h.summaries, int(a.Value.Int64()))
			}
			return true
		})
	}
	sum := h.warned
	for _, s := range h.summaries {
		sum += s
	}
	if sum >= h.want && !h.closed {
		h.closed = true
		close(h.done)
	}
	return nil
}

// lineCounter counts the lines written to the server's own log.
type lineCounter struct {
	mu    sync.Mutex
	lines int
}

func (w *lineCounter) Write(b []byte) (int, error) {
	w.mu.Lock()
	w.lines += bytes.Count(b, []byte{'\n'})
	w.mu.Unlock()
	return len(b), nil
}

// TestGarbageFloodIsSummarised: a real child floods its stdout with 1,000,000
// lines of garbage. tetherd's log gets a bounded number of records per
// window -- a few lines in full and a summary carrying the count -- and
// every skipped line is accounted for; the server's own log gets at most
// its per-window share of the raw lines.
func TestGarbageFloodIsSummarised(t *testing.T) {
	const total = 1000000
	h := &noiseHandler{want: total, done: make(chan struct{})}
	serverLog := &lineCounter{}
	opts := testOptions(t)
	opts.Logger = slog.New(h)
	opts.Log = serverLog
	spec := Spec{Name: "files", Command: "sh",
		Args: []string{"-c", "yes 'garbage, not json' | head -n 1000000; exec sleep 600"}}
	c := New(spec, opts)
	const window = 300 * time.Millisecond
	c.noise.window = window
	start := time.Now()
	c.Start(context.Background())
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Stop(ctx)
	}()
	select {
	case <-h.done:
	case <-time.After(60 * time.Second):
		h.mu.Lock()
		defer h.mu.Unlock()
		t.Fatalf("not every line accounted for: %d warned, summaries %v", h.warned, h.summaries)
	}
	elapsed := time.Since(start)
	windows := int(elapsed/window) + 2 // a partial window at either end

	h.mu.Lock()
	defer h.mu.Unlock()
	sum := h.warned
	for _, s := range h.summaries {
		sum += s
	}
	if sum != total {
		t.Errorf("warned %d + summarised %v = %d, want %d", h.warned, h.summaries, sum, total)
	}
	if len(h.summaries) == 0 {
		t.Error("no summary line")
	}
	if bound := windows * (noiseWarnMax + 1); h.records > bound {
		t.Errorf("tetherd's log got %d records in %v, want at most %d", h.records, elapsed, bound)
	}
	serverLog.mu.Lock()
	lines := serverLog.lines
	serverLog.mu.Unlock()
	if bound := windows*(noiseLocalMax+1) + 5; lines > bound { // + lifecycle lines ("started …")
		t.Errorf("the server's log got %d lines in %v, want at most %d", lines, elapsed, bound)
	}
	t.Logf("%d garbage lines in %v: %d records in tetherd's log (%d warned, summaries %v), %d lines in the server's log",
		total, elapsed.Round(time.Millisecond), h.records, h.warned, h.summaries, lines)
}

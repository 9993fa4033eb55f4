package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/tether-dev/tether/relay/server"
)

// opLimit is the longest any engine operation may take in the stress test
// before it counts as a hang.
const opLimit = 2 * time.Second

// watchdog times engine operations; when one runs past its limit it fails
// the test with a goroutine dump and stops the storm.
type watchdog struct {
	t     *testing.T
	limit time.Duration
	stop  context.CancelFunc

	mu      sync.Mutex
	next    int
	running map[int]watchedOp
	counts  map[string]int
	tripped atomic.Bool
}

type watchedOp struct {
	what  string
	start time.Time
}

func newWatchdog(t *testing.T, limit time.Duration, stop context.CancelFunc) *watchdog {
	return &watchdog{t: t, limit: limit, stop: stop, running: map[int]watchedOp{}, counts: map[string]int{}}
}

// do runs op and counts it under what.
func (w *watchdog) do(what string, op func()) {
	w.mu.Lock()
	id := w.next
	w.next++
	w.running[id] = watchedOp{what, time.Now()}
	w.mu.Unlock()
	op()
	w.mu.Lock()
	delete(w.running, id)
	w.counts[what]++
	w.mu.Unlock()
}

// run checks the operations in progress until ctx ends or one is late.
func (w *watchdog) run(ctx context.Context) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		w.mu.Lock()
		var late []string
		for _, op := range w.running {
			if d := time.Since(op.start); d > w.limit {
				late = append(late, fmt.Sprintf("%s (%v)", op.what, d.Round(time.Millisecond)))
			}
		}
		w.mu.Unlock()
		if len(late) > 0 {
			w.tripped.Store(true)
			w.t.Errorf("engine operations took more than %v: %s; goroutines:\n%s", w.limit, strings.Join(late, ", "), goroutineDump())
			w.stop()
			return
		}
	}
}

// stressDuration is how long the storm lasts: a few seconds in `go test`,
// longer with TETHER_STRESS_SECONDS.
func stressDuration(t *testing.T) time.Duration {
	if v := os.Getenv("TETHER_STRESS_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("TETHER_STRESS_SECONDS=%q: want a positive number of seconds", v)
		}
		return time.Duration(n) * time.Second
	}
	return 8 * time.Second
}

// TestEngineStress runs everything that touches the engine's locks at once —
// reloads that change tool filters and add and remove servers, catalog
// changes from the child (add_tool → tools/list_changed), relay reconnects,
// 2025-era sessions opening and closing, calls and cancelled calls, State
// and control-API reads — and fails with a goroutine dump if any engine
// operation takes more than opLimit. Answers are checked against their
// unique payloads, so a misrouted answer fails too.
func TestEngineStress(t *testing.T) {
	// The relay's per-token limits are off: one token opens hundreds of
	// sessions here on purpose; the limits are the relay's own tests' job.
	f := startEngine(t, oneServer, nil, func(s *server.Server) {
		s.Limits = server.Limits{ClientRate: -1, MaxSessions: -1, MaxInFlight: -1, MaxStreams: -1, MaxBodyBytes: -1}
	})
	f.waitState(t, "a ready and connected", func(st State) bool { return ready("a")(st) && st.Relay.Phase == "connected" })
	f.relay.waitRelay(t, f.dev, f.client, "a ready", func(v relayView) bool { s, _, _ := v.server("a"); return s == "ready" })
	url := f.relay.url + "/mcp/alice/a"

	// Every config keeps a with echo and sleep allowed; they differ in a's
	// filter and in whether b runs.
	configs := []string{
		`{"mcpServers": {"a": {"command": "SERVER", "deny": ["crash"]}}}`,
		`{"mcpServers": {"a": {"command": "SERVER", "deny": ["garbage"]}, "b": {"command": "SERVER"}}}`,
		`{"mcpServers": {"a": {"command": "SERVER"}, "b": {"command": "SERVER", "deny": ["echo"]}}}`,
		`{"mcpServers": {"a": {"command": "SERVER", "allow": ["echo", "sleep", "add_tool", "huge"]}}}`,
	}

	ctx, cancel := context.WithTimeout(context.Background(), stressDuration(t))
	defer cancel()
	wd := newWatchdog(t, opLimit, cancel)
	var wg sync.WaitGroup
	wg.Go(func() { wd.run(ctx) })
	var misrouted, callsOK, callsFailed atomic.Int64

	// loop runs step until the storm ends.
	loop := func(every time.Duration, step func(i int)) {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				step(i)
				select {
				case <-ctx.Done():
				case <-time.After(every):
				}
			}
		})
	}

	// Reloads: a save through the watcher, and Reload over the API.
	loop(150*time.Millisecond, func(i int) {
		// Not atomicSave: t.Fatal must not run off the test's goroutine.
		tmp := filepath.Join(f.paths.Dir, ".mcp.json.stress~")
		if err := os.WriteFile(tmp, []byte(strings.ReplaceAll(configs[i%len(configs)], "SERVER", f.server)), 0o600); err != nil {
			t.Error(err)
		} else if err := os.Rename(tmp, f.paths.MCPJSON); err != nil {
			t.Error(err)
		}
		wd.do("Reload", func() { _ = f.eng.Reload(ctx) })
	})
	// Relay reconnects.
	loop(700*time.Millisecond, func(int) { wd.do("Wake (relay kick)", f.eng.Wake) })
	// State, directly and over the control API.
	loop(20*time.Millisecond, func(int) { wd.do("State", func() { _, _ = f.eng.State(ctx) }) })
	loop(100*time.Millisecond, func(int) {
		wd.do("control State", func() {
			c, err := DialControl(ctx, f.paths.Socket)
			if err != nil {
				return
			}
			defer c.Close()
			_, _ = c.State(ctx)
		})
	})

	// session runs one caller: it keeps a 2025-era session (opening a new
	// one whenever a reconnect lost it) and runs call on it.
	session := func(name string, call func(cs *mcp.ClientSession, i int) error) {
		wg.Go(func() {
			var cs *mcp.ClientSession
			defer func() {
				if cs != nil {
					cs.Close()
				}
			}()
			for i := 0; ctx.Err() == nil; i++ {
				if cs == nil {
					wd.do("open session", func() {
						octx, ocancel := context.WithTimeout(ctx, 2*opLimit)
						defer ocancel()
						cs, _ = openSession2025(octx, url, f.client)
					})
					if cs == nil {
						select {
						case <-ctx.Done():
						case <-time.After(50 * time.Millisecond): // the relay link is coming back
						}
						continue
					}
				}
				var err error
				wd.do(name, func() { err = call(cs, i) })
				if err != nil {
					cs.Close()
					cs = nil
				}
			}
		})
	}
	callCtx := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 2*opLimit) }
	for c := range 3 {
		session("tools/call echo", func(cs *mcp.ClientSession, i int) error {
			cctx, ccancel := callCtx()
			defer ccancel()
			want := fmt.Sprintf("caller%d-%d", c, i)
			res, err := cs.CallTool(cctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": want}})
			if err != nil || res.IsError {
				callsFailed.Add(1)
				return fmt.Errorf("echo: %v", err)
			}
			if got := res.Content[0].(*mcp.TextContent).Text; got != want {
				misrouted.Add(1)
				return fmt.Errorf("echo %q answered %q", want, got)
			}
			callsOK.Add(1)
			return nil
		})
	}
	// Calls cancelled while the child works on them.
	session("tools/call sleep, cancelled", func(cs *mcp.ClientSession, i int) error {
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Millisecond)
		defer ccancel()
		_, err := cs.CallTool(cctx, &mcp.CallToolParams{Name: "sleep", Arguments: map[string]any{"ms": 10000}})
		if ctx.Err() == nil && cctx.Err() == nil {
			return fmt.Errorf("sleep ended before its cancel: %v", err)
		}
		return nil
	})
	// Catalog changes from the child, and a tools/list after each.
	session("add_tool + tools/list", func(cs *mcp.ClientSession, i int) error {
		cctx, ccancel := callCtx()
		defer ccancel()
		if _, err := cs.CallTool(cctx, &mcp.CallToolParams{Name: "add_tool", Arguments: map[string]any{"name": fmt.Sprintf("stress_%d_%d", time.Now().UnixNano(), i)}}); err != nil {
			return err
		}
		_, err := cs.ListTools(cctx, nil)
		return err
	})
	// Short sessions: open, list, close.
	session("short session", func(cs *mcp.ClientSession, i int) error {
		cctx, ccancel := callCtx()
		defer ccancel()
		_, _ = cs.ListTools(cctx, nil)
		return fmt.Errorf("close this session") // the wrapper closes it and opens the next
	})

	<-ctx.Done()
	if wd.tripped.Load() {
		return // the watchdog said why; the stuck goroutines stay stuck
	}
	ended := make(chan struct{})
	go func() { wg.Wait(); close(ended) }()
	select {
	case <-ended:
	case <-time.After(3 * opLimit):
		t.Fatalf("the storm's goroutines did not end; goroutines:\n%s", goroutineDump())
	}
	t.Logf("operations: %v; echo calls ok %d, failed %d (sessions lost to reconnects), misrouted %d",
		wd.counts, callsOK.Load(), callsFailed.Load(), misrouted.Load())
	if misrouted.Load() > 0 {
		t.Errorf("%d answers went to the wrong call", misrouted.Load())
	}
	for _, what := range []string{"Reload", "Wake (relay kick)", "State", "control State", "open session", "tools/call echo", "tools/call sleep, cancelled", "add_tool + tools/list", "short session"} {
		if wd.counts[what] == 0 {
			t.Errorf("no %q ran during the storm; it proved nothing about it", what)
		}
	}
	if callsOK.Load() == 0 {
		t.Error("no echo call succeeded during the storm")
	}

	// After the storm: the last config applies and a fresh session works.
	final := strings.ReplaceAll(configs[1], "SERVER", f.server)
	atomicSave(t, f.paths.MCPJSON, final)
	f.waitState(t, "the last config applied", func(st State) bool { return ready("a")(st) && ready("b")(st) && st.Relay.Phase == "connected" })
	f.relay.waitRelay(t, f.dev, f.client, "a and b ready", func(v relayView) bool {
		a, _, _ := v.server("a")
		b, _, _ := v.server("b")
		return v.Connected && a == "ready" && b == "ready"
	})
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	cs := mcpSession2025(t, cctx, url, f.client)
	res, err := cs.CallTool(cctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "after the storm"}})
	if err != nil || res.IsError {
		t.Fatalf("echo after the storm: %v %+v", err, res)
	}
}

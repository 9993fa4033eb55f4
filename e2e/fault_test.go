//go:build linux

package e2e

// The fault suite: what a user's day does to Tether — the relay killed and
// restarted, the laptop asleep, a noisy or crashing server beside a healthy
// one, mcp.json saved in storms, tetherd killed — each with real processes on
// loopback, each ending in a row of the table printed after the run:
//
//	scenario · attempted · ok · failed · misrouted · detection · recovery · growth
//
// `go test ./e2e -run Fault` is the short run CI makes; `make soak` runs the
// same scenarios longer (-soak) and adds the steady-load soak.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/tether-dev/tether/internal/testbin"
)

var soak = flag.Bool("soak", false, "run the fault suite's long variants (make soak)")

// pick returns short in the CI run and long under -soak.
func pick[T any](short, long T) T {
	if *soak {
		return long
	}
	return short
}

// faultRow is one line of the table.
type faultRow struct {
	Scenario                     string
	Attempted, OK, Failed, Misrt int64
	Detection, Recovery          time.Duration // zero: not applicable
	Goroutines, FDs, RSSKiB      int64         // growth of tetherd across the scenario
	Note                         string
}

func init() { afterRun = append(afterRun, printFaultTable) }

var faultTable struct {
	mu   sync.Mutex
	rows []faultRow
}

func report(r faultRow) {
	faultTable.mu.Lock()
	faultTable.rows = append(faultTable.rows, r)
	faultTable.mu.Unlock()
}

// printFaultTable writes the table to stdout (and, with
// $TETHER_FAULT_TABLE set, as Markdown to that file for the README).
func printFaultTable() {
	faultTable.mu.Lock()
	rows := slices.Clone(faultTable.rows)
	faultTable.mu.Unlock()
	if len(rows) == 0 {
		return
	}
	slices.SortFunc(rows, func(a, b faultRow) int { return strings.Compare(a.Scenario, b.Scenario) })
	dur := func(d time.Duration) string {
		if d == 0 {
			return "–"
		}
		return d.Round(time.Millisecond).String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| scenario | attempted | ok | failed | misrouted | detection | recovery | goroutines Δ | FDs Δ | RSS Δ | note |\n")
	fmt.Fprintf(&b, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %s | %s | %+d | %+d | %+d KiB | %s |\n",
			r.Scenario, r.Attempted, r.OK, r.Failed, r.Misrt, dur(r.Detection), dur(r.Recovery), r.Goroutines, r.FDs, r.RSSKiB, r.Note)
	}
	fmt.Printf("\nFault suite (%s run, %s):\n%s", pick("short", "soak"), time.Now().UTC().Format("2006-01-02"), b.String())
	if p := os.Getenv("TETHER_FAULT_TABLE"); p != "" {
		_ = os.WriteFile(p, []byte(b.String()), 0o644)
	}
}

// procStats reads a process's open files and resident memory from /proc,
// and its goroutines from `tetherd status --json` when it is tetherd.
type procStats struct{ goroutines, fds, rssKiB int64 }

func readProc(pid int) procStats {
	var s procStats
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		s.fds = int64(len(ents))
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				s.rssKiB, _ = strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			}
		}
	}
	return s
}

// engineStatus is the part of `tetherd status --json` the suite reads.
type engineStatus struct {
	Engine struct {
		PID        int   `json:"pid"`
		Goroutines int64 `json:"goroutines"`
	} `json:"engine"`
	Config struct {
		Error string `json:"error"`
	} `json:"config"`
	Servers []struct {
		Name     string `json:"name"`
		Phase    string `json:"phase"`
		PID      int    `json:"pid"`
		Restarts int    `json:"restarts"`
	} `json:"servers"`
}

// status runs `tetherd status --json` against d's engine, bounded: an engine
// that does not answer within the bound is a hang, and fails the test.
func (d *tetherd) status(t *testing.T, bound time.Duration) engineStatus {
	t.Helper()
	st, err := d.tryStatus(t, bound)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// tryStatus is status that returns other failures (an engine not listening
// yet, for one) instead of failing the test; a hang still fails it.
func (d *tetherd) tryStatus(t *testing.T, bound time.Duration) (engineStatus, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	cmd := exec.CommandContext(ctx, testbin.Build(t, "./cmd/svc"), "status", "--json")
	cmd.Env = append(os.Environ(), "TETHER_HOME="+d.home)
	out, err := cmd.Output()
	if ctx.Err() != nil {
		// SIGQUIT makes the Go runtime print every goroutine's stack on
		// stderr (the test's log of tetherd) and exit: the dump says where
		// it hangs.
		d.cmd.Process.Signal(syscall.SIGQUIT)
		d.cmd.Wait()
		t.Fatalf("tetherd status did not answer within %v: the engine hangs (goroutine dump in the tetherd log below)", bound)
	}
	var st engineStatus
	if err != nil {
		return st, fmt.Errorf("tetherd status --json: %v\n%s", err, out)
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return st, fmt.Errorf("tetherd status --json: %v\n%s", err, out)
	}
	return st, nil
}

func (d *tetherd) stats(t *testing.T) procStats {
	s := readProc(d.cmd.Process.Pid)
	s.goroutines = d.status(t, 5*time.Second).Engine.Goroutines
	return s
}

// settled waits (bounded) until tetherd's goroutines and open files are back
// within slack of before, and returns its stats then. Servers that a reload
// removed stop in the background (stdin closed, then SIGTERM after a grace
// period), so their pipes and goroutines go a little after the reload shows
// in status; what is still there after the bound is growth.
func (d *tetherd) settled(t *testing.T, before procStats, slack int64) procStats {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		now := d.stats(t)
		if (now.goroutines-before.goroutines <= slack && now.fds-before.fds <= slack) || time.Now().After(deadline) {
			return now
		}
		time.Sleep(100 * time.Millisecond) // polling /proc and the status API
	}
}

func growth(before, after procStats) (g, f, r int64) {
	return after.goroutines - before.goroutines, after.fds - before.fds, after.rssKiB - before.rssKiB
}

// sessionVersion is a 2025-era protocol version: those clients hold an
// Mcp-Session-Id, which is what must survive the faults.
const sessionVersion = "2025-11-25"

// load is N callers on S sessions calling echo with unique payloads. A
// caller never reconnects: a session that dies stays dead and its calls
// keep failing, so a lost session shows in the counts.
type load struct {
	attempted, ok, failed, misrouted atomic.Int64
	lastOK                           []atomic.Int64 // per session: unix nanos of the last ok call
	cancel                           context.CancelFunc
	wg                               sync.WaitGroup
	firstErr, lastErr                atomic.Value
}

func startLoad(t *testing.T, url, tok string, sessions, callersPer int) *load {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel, lastOK: make([]atomic.Int64, sessions)}
	for s := range sessions {
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
		// The SDK's default retries, as a real client runs: the GET stream
		// reconnects after an outage instead of ending the session.
		cs := connectRetrying(t, cctx, url, tok, sessionVersion, nil, 0)
		ccancel()
		for c := range callersPer {
			l.wg.Go(func() {
				for i := 0; ctx.Err() == nil; i++ {
					want := fmt.Sprintf("s%d-c%d-i%d", s, c, i)
					callCtx, callCancel := context.WithTimeout(ctx, 15*time.Second)
					got, err := callText(callCtx, cs, "echo", map[string]any{"text": want})
					callCancel()
					if ctx.Err() != nil {
						return
					}
					l.attempted.Add(1)
					switch {
					case err != nil:
						l.failed.Add(1)
						l.firstErr.CompareAndSwap(nil, err.Error())
						l.lastErr.Store(err.Error())
						// A failed call during an outage is expected; back off a
						// little so a dead relay is not spun against.
						select {
						case <-ctx.Done():
						case <-time.After(50 * time.Millisecond):
						}
					case got != want:
						l.misrouted.Add(1)
					default:
						l.ok.Add(1)
						l.lastOK[s].Store(time.Now().UnixNano())
					}
				}
			})
		}
	}
	t.Cleanup(l.stop)
	return l
}

func (l *load) stop() { l.cancel(); l.wg.Wait() }

// waitAllSessions waits until every session had an ok call after since, and
// returns when the first of them did (the first call after recovery).
func (l *load) waitAllSessions(t *testing.T, since time.Time, timeout time.Duration) (first time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		earliest, all := int64(0), true
		for i := range l.lastOK {
			v := l.lastOK[i].Load()
			if v < since.UnixNano() {
				all = false
				continue
			}
			if earliest == 0 || v < earliest {
				earliest = v
			}
		}
		if all {
			return time.Duration(earliest - since.UnixNano())
		}
		if time.Now().After(deadline) {
			var dead []int
			for i := range l.lastOK {
				if l.lastOK[i].Load() < since.UnixNano() {
					dead = append(dead, i)
				}
			}
			t.Fatalf("sessions %v had no ok call within %v (first error: %v; last error: %v)", dead, timeout, l.firstErr.Load(), l.lastErr.Load())
		}
		time.Sleep(5 * time.Millisecond) // polling counters, not synchronisation
	}
}

func (l *load) row(name string) faultRow {
	return faultRow{Scenario: name, Attempted: l.attempted.Load(), OK: l.ok.Load(), Failed: l.failed.Load(), Misrt: l.misrouted.Load()}
}

// median of durations.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestFaultRelayKill: 32 callers on 8 sessions; the relay is killed with
// SIGKILL and started again on the same port, round after round. No answer
// may reach the wrong caller, every session must keep working (same
// Mcp-Session-Id: the callers never reconnect), the first call must succeed
// within 1 s of the relay listening, and tetherd must not grow.
func TestFaultRelayKill(t *testing.T) {
	rounds := pick(20, 500)
	r := startRelay(t)
	d := testServer(t, r)
	client := r.token(t, dev, "client")
	r.waitServing(t, dev, client, "test", 30*time.Second)
	l := startLoad(t, r.mcpURL(dev, "test"), client, 8, 4)
	l.waitAllSessions(t, time.Now(), 20*time.Second)
	before := d.stats(t)

	// Under -soak the relay stays up a second between kills: 500 kills a
	// few hundred milliseconds apart leave a client's GET stream no moment
	// to reconnect (the go-sdk gives a session up after 5 failed tries),
	// which no relay in production does.
	upFor := pick(time.Duration(0), time.Second)
	var recov []time.Duration
	for range rounds {
		r.kill(t)
		r.start(t)
		listening := time.Now()
		recov = append(recov, l.waitAllSessions(t, listening, 15*time.Second))
		time.Sleep(upFor) // the relay serving between two crashes: the scenario's pace
	}
	after := d.stats(t)
	l.stop()
	row := l.row("relay kill -9 + restart")
	row.Recovery = median(recov)
	row.Goroutines, row.FDs, row.RSSKiB = growth(before, after)
	row.Note = fmt.Sprintf("%d rounds; recovery p50, max %v", rounds, slices.Max(recov).Round(time.Millisecond))
	report(row)
	if row.Misrt != 0 {
		t.Errorf("%d answers reached the wrong caller", row.Misrt)
	}
	if row.Recovery > time.Second {
		t.Errorf("first call %v after the relay listened (p50), want ≤ 1 s", row.Recovery)
	}
	if row.Goroutines > 10 || row.FDs > 10 {
		t.Errorf("tetherd grew by %d goroutines and %d FDs over %d rounds", row.Goroutines, row.FDs, rounds)
	}
}

// TestFaultSleep: tetherd frozen (SIGSTOP, a laptop asleep) then thawed:
// serving again within 2 s, client sessions intact.
func TestFaultSleep(t *testing.T) {
	pause := pick(15*time.Second, 90*time.Second)
	r := startRelay(t)
	d := testServer(t, r, "TETHER_PING_INTERVAL=1s", "TETHER_PONG_WAIT=3s")
	client := r.token(t, dev, "client")
	r.waitServing(t, dev, client, "test", 30*time.Second)
	l := startLoad(t, r.mcpURL(dev, "test"), client, 4, 2)
	l.waitAllSessions(t, time.Now(), 20*time.Second)
	before := d.stats(t)
	d.cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(pause) // the outage itself: its length is the scenario
	d.cmd.Process.Signal(syscall.SIGCONT)
	thawed := time.Now()
	rec := l.waitAllSessions(t, thawed, 15*time.Second)
	after := d.stats(t)
	l.stop()
	row := l.row(fmt.Sprintf("laptop sleep (SIGSTOP tetherd %v)", pause))
	row.Recovery = rec
	row.Goroutines, row.FDs, row.RSSKiB = growth(before, after)
	report(row)
	if row.Misrt != 0 {
		t.Errorf("%d answers reached the wrong caller", row.Misrt)
	}
	if rec > 2*time.Second {
		t.Errorf("serving %v after SIGCONT, want ≤ 2 s", rec)
	}
}

// writeAtomic saves mcp.json the way editors do: a temporary file renamed
// over the old one.
func writeAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func configBytes(t *testing.T, servers map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"mcpServers": servers})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pidsOf(st engineStatus) map[string]int {
	m := map[string]int{}
	for _, s := range st.Servers {
		m[s.Name] = s.PID
	}
	return m
}

// waitEngine polls `tetherd status` (each answer bounded: a hang fails)
// until ok holds.
func (d *tetherd) waitEngine(t *testing.T, what string, timeout time.Duration, ok func(engineStatus) bool) engineStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, err := d.tryStatus(t, 2*time.Second)
		if err == nil && ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("tetherd never showed %s within %v; last: %+v (%v)", what, timeout, st, err)
		}
		time.Sleep(20 * time.Millisecond) // polling a status API
	}
}

// loadedEngine is a relay and a tetherd serving the test server as "test"
// from an mcp.json it returns (with base, its servers, and the path of the
// minimal rawecho server for extra ones), with 8 callers on 4 sessions
// already calling.
func loadedEngine(t *testing.T) (r *relayProc, d *tetherd, cfg string, base map[string]any, raw string, l *load) {
	t.Helper()
	r = startRelay(t)
	srv := testbin.Build(t, "./internal/testservers/mcpserver")
	raw = testbin.Build(t, "./internal/testservers/rawecho")
	base = map[string]any{"test": map[string]any{"command": srv}}
	cfg = writeConfig(t, base)
	d = startTetherd(t, r.token(t, dev, "bridge"), nil, "run", "--config", cfg, "--relay", r.url(), "--dev-id", dev)
	client := r.token(t, dev, "client")
	r.waitServing(t, dev, client, "test", 30*time.Second)
	l = startLoad(t, r.mcpURL(dev, "test"), client, 4, 2)
	l.waitAllSessions(t, time.Now(), 20*time.Second)
	return r, d, cfg, base, raw, l
}

// TestFaultReloadStorm: with sessions open and calls in flight, mcp.json is
// saved 50 times in one second, then truncated, then made invalid JSON,
// then grown to 200 servers and back. tetherd never hangs (every status
// answers within 2 s), keeps the last good config through bad saves, and
// leaves unchanged servers (and their PIDs and sessions) alone.
func TestFaultReloadStorm(t *testing.T) {
	_, d, cfg, base, raw, l := loadedEngine(t)
	pid := pidsOf(d.status(t, 2*time.Second))["test"]
	before := d.stats(t)
	start := time.Now()

	// 50 saves in one second, each adding or changing a second server.
	for i := range 50 {
		servers := map[string]any{"test": base["test"], "extra": map[string]any{"command": raw, "args": []string{fmt.Sprint(i)}}}
		writeAtomic(t, cfg, configBytes(t, servers))
		d.status(t, 2*time.Second)
		time.Sleep(20 * time.Millisecond) // the storm's pace: 50 saves in about a second
	}
	d.waitEngine(t, "the last save applied", 30*time.Second, func(st engineStatus) bool {
		return st.Config.Error == "" && len(st.Servers) == 2
	})
	good := configBytes(t, map[string]any{"test": base["test"], "extra": map[string]any{"command": raw, "args": []string{"49"}}})
	// A truncated file, then invalid JSON: the last good config keeps running.
	writeAtomic(t, cfg, good[:len(good)/2])
	d.waitEngine(t, "the error of a truncated file", 10*time.Second, func(st engineStatus) bool { return st.Config.Error != "" })
	writeAtomic(t, cfg, []byte(`{"mcpServers": {"test": {"command": }}`))
	st := d.waitEngine(t, "the error of invalid JSON", 10*time.Second, func(st engineStatus) bool {
		return st.Config.Error != "" && strings.Contains(st.Config.Error, "1:")
	})
	if len(st.Servers) != 2 {
		t.Errorf("an invalid save changed the running servers: %+v", st.Servers)
	}
	// 200 servers, then back.
	big := map[string]any{"test": base["test"]}
	for i := range 200 {
		big[fmt.Sprintf("r%03d", i)] = map[string]any{"command": raw}
	}
	writeAtomic(t, cfg, configBytes(t, big))
	d.waitEngine(t, "200 servers ready", 120*time.Second, func(st engineStatus) bool {
		n := 0
		for _, s := range st.Servers {
			if s.Phase == "ready" {
				n++
			}
		}
		return n == 201
	})
	writeAtomic(t, cfg, configBytes(t, base))
	st = d.waitEngine(t, "back to one server", 60*time.Second, func(st engineStatus) bool { return len(st.Servers) == 1 })
	if got := pidsOf(st)["test"]; got != pid {
		t.Errorf("the unchanged server was restarted: pid %d → %d", pid, got)
	}
	rec := l.waitAllSessions(t, time.Now(), 10*time.Second)
	after := d.settled(t, before, 10)
	l.stop()
	row := l.row("reload storm (50 saves/s, truncated, invalid, 200 servers)")
	row.Recovery = rec
	row.Goroutines, row.FDs, row.RSSKiB = growth(before, after)
	row.Note = fmt.Sprintf("storm took %v; unchanged server kept pid %d", time.Since(start).Round(time.Millisecond), pid)
	report(row)
	if row.Failed != 0 || row.Misrt != 0 {
		t.Errorf("calls to the unchanged server failed (%d) or misrouted (%d) during the storm (first error: %v)", row.Failed, row.Misrt, l.firstErr.Load())
	}
	if row.Goroutines > 10 || row.FDs > 10 {
		t.Errorf("tetherd grew by %d goroutines and %d FDs", row.Goroutines, row.FDs)
	}
}

// TestFaultChildren: a healthy server beside servers that crash mid-call,
// crash-loop, hang, flood stdout with garbage and write a 50 MiB line.
// Every call to the healthy one succeeds; a pending call to a faulty one
// fails within 1 s with a clear error; the crash loop shows in status.
func TestFaultChildren(t *testing.T) {
	r := startRelay(t)
	srv := testbin.Build(t, "./internal/testservers/mcpserver")
	cfg := writeConfig(t, map[string]any{
		"healthy": map[string]any{"command": srv},
		"faulty":  map[string]any{"command": srv},
		"loop":    map[string]any{"command": "sh", "args": []string{"-c", "echo starting >&2; exit 3"}},
	})
	d := startTetherd(t, r.token(t, dev, "bridge"), nil, "run", "--config", cfg, "--relay", r.url(), "--dev-id", dev)
	client := r.token(t, dev, "client")
	r.waitServing(t, dev, client, "healthy", 30*time.Second)
	r.waitServing(t, dev, client, "faulty", 30*time.Second)
	l := startLoad(t, r.mcpURL(dev, "healthy"), client, 4, 2)
	l.waitAllSessions(t, time.Now(), 20*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	// The first progress notification says the call reached the child and
	// is pending there: the event the fault waits for, instead of a sleep.
	progressed := make(chan struct{}, 1)
	faulty := connect(t, ctx, r.mcpURL(dev, "faulty"), client, sessionVersion, &mcp.ClientOptions{
		ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) {
			select {
			case progressed <- struct{}{}:
			default:
			}
		},
	})
	var worst time.Duration

	// A call pending on the server when it crashes fails at once.
	crashMidCall := func(label string, fault func()) {
		t.Helper()
		errc := make(chan error, 1)
		go func() {
			_, err := faulty.CallTool(ctx, &mcp.CallToolParams{
				Name: "progress", Arguments: map[string]any{"steps": 2, "ms": 60000},
				Meta: mcp.Meta{"progressToken": "pending"},
			})
			errc <- err
		}()
		select {
		case <-progressed:
		case err := <-errc:
			t.Fatalf("%s: the call ended before the fault: %v", label, err)
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: the call never reached the server", label)
		}
		at := time.Now()
		fault()
		select {
		case err := <-errc:
			took := time.Since(at)
			worst = max(worst, took)
			if err == nil {
				t.Errorf("%s: the pending call succeeded", label)
			} else if took > time.Second {
				t.Errorf("%s: the pending call failed after %v, want ≤ 1 s (%v)", label, took, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s: the pending call did not fail within 10 s", label)
		}
		r.waitServing(t, dev, client, "faulty", 30*time.Second)
	}
	crashMidCall("crash mid-call", func() {
		st := d.status(t, 2*time.Second)
		proc, _ := os.FindProcess(pidsOf(st)["faulty"])
		proc.Kill()
	})
	// A hung server (stopped, as a deadlocked one would be): the healthy
	// server does not notice.
	hung := pidsOf(d.status(t, 2*time.Second))["faulty"]
	syscall.Kill(hung, syscall.SIGSTOP)
	hctx, hcancel := context.WithTimeout(ctx, 2*time.Second)
	if _, err := callText(hctx, faulty, "echo", map[string]any{"text": "hung?"}); err == nil {
		t.Errorf("a call to a stopped server succeeded")
	}
	hcancel()
	syscall.Kill(hung, syscall.SIGCONT)
	// Garbage on stdout, then a 50 MiB line: the healthy server is not
	// touched, and tetherd's log stays bounded.
	for range 3 {
		if _, err := callText(ctx, faulty, "garbage", map[string]any{"lines": 200000}); err != nil {
			t.Logf("garbage: %v", err)
		}
	}
	if _, err := callText(ctx, faulty, "huge", map[string]any{"bytes": 50 << 20}); err != nil {
		t.Logf("huge: %v", err)
	}
	st := d.waitEngine(t, "the crash loop", 30*time.Second, func(st engineStatus) bool {
		for _, s := range st.Servers {
			if s.Name == "loop" && s.Restarts >= 2 {
				return true
			}
		}
		return false
	})
	_ = st
	rec := l.waitAllSessions(t, time.Now(), 10*time.Second)
	l.stop()
	row := l.row("child faults beside a healthy server")
	row.Detection = worst
	row.Recovery = rec
	row.Note = "crash mid-call, crash loop, garbage flood, 50 MiB line"
	report(row)
	if row.Failed != 0 || row.Misrt != 0 {
		t.Errorf("calls to the healthy server failed (%d) or misrouted (%d) (first error: %v)", row.Failed, row.Misrt, l.firstErr.Load())
	}
	if n := strings.Count(d.log.String(), "\n"); n > 2000 {
		t.Errorf("tetherd logged %d lines during the faults: a noisy child floods the log", n)
	}
}

// survivors lists processes whose environment carries mark.
func survivors(mark string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		if strings.Contains(string(b), mark) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestFaultOrphans: servers started and stopped through npx and through a
// `sh -c` wrapper that forks, over and over, then tetherd killed with
// SIGKILL while they run. No process of theirs may survive (found by a
// marker in their environment, walking /proc) once tetherd is gone or has
// started again.
func TestFaultOrphans(t *testing.T) {
	cycles := pick(10, 100)
	r := startRelay(t)
	mark := fmt.Sprintf("TETHER_FAULT_MARK=%d", time.Now().UnixNano())
	markKV := strings.SplitN(mark, "=", 2)
	npmDir, err := filepath.Abs(filepath.Join("..", "tools", "npm"))
	if err != nil {
		t.Fatal(err)
	}
	srv := testbin.Build(t, "./internal/testservers/mcpserver")
	servers := map[string]any{
		// npx runs node, which runs the server: two levels.
		"npx": map[string]any{"command": "npx", "args": []string{"--no-install", "mcp-server-everything"}, "cwd": npmDir,
			"env": map[string]string{markKV[0]: markKV[1]}},
		// A wrapper that leaves a grandchild behind if only it is killed.
		"wrapped": map[string]any{"command": "sh", "args": []string{"-c", "sleep 600 & exec " + srv},
			"env": map[string]string{markKV[0]: markKV[1]}},
	}
	home := t.TempDir()
	cfg := filepath.Join(home, "mcp.json")
	writeAtomic(t, cfg, configBytes(t, map[string]any{}))
	bridge := r.token(t, dev, "bridge")
	env := []string{"TETHER_HOME=" + home}
	d := startTetherd(t, bridge, env, "run", "--config", cfg, "--relay", r.url(), "--dev-id", dev)
	ready := func(st engineStatus) bool {
		n := 0
		for _, s := range st.Servers {
			if s.Phase == "ready" && s.PID > 0 {
				n++
			}
		}
		return n == 2
	}
	noSurvivors := func(what string) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			left := survivors(mark)
			if len(left) == 0 {
				return time.Since(start)
			}
			if time.Since(start) > 10*time.Second {
				t.Fatalf("%s: %d processes survived: %v", what, len(left), left)
			}
			time.Sleep(20 * time.Millisecond) // polling /proc
		}
	}
	var worst time.Duration
	for i := range cycles {
		writeAtomic(t, cfg, configBytes(t, servers))
		d.waitEngine(t, "both servers ready", 60*time.Second, ready)
		writeAtomic(t, cfg, configBytes(t, map[string]any{}))
		d.waitEngine(t, "both servers removed", 30*time.Second, func(st engineStatus) bool { return len(st.Servers) == 0 })
		worst = max(worst, noSurvivors(fmt.Sprintf("cycle %d", i)))
	}
	// Killed while they run: the children go with tetherd, and whatever a
	// wrapper left behind is reaped when tetherd starts again.
	writeAtomic(t, cfg, configBytes(t, servers))
	d.waitEngine(t, "both servers ready", 60*time.Second, ready)
	d.cmd.Process.Kill()
	d.cmd.Wait()
	startTetherd(t, bridge, env, "run", "--config", cfg, "--relay", r.url(), "--dev-id", dev)
	// The new tetherd starts the servers again (with the same mark): the
	// survivors that count are those whose parent is not the new tetherd's
	// tree, so the config is emptied first.
	writeAtomic(t, cfg, configBytes(t, map[string]any{}))
	left := noSurvivors("after kill -9 and a new start")
	report(faultRow{
		Scenario: "orphans (npx and sh -c wrapper)", Attempted: int64(2 * cycles), OK: int64(2 * cycles),
		Detection: worst, Recovery: left,
		Note: fmt.Sprintf("%d start/stop cycles of each, then kill -9 of tetherd: 0 survivors", cycles),
	})
}

// TestSoak: 8 steady callers while the relay is restarted every 60 s and
// mcp.json saved every 45 s, for 10 minutes under -soak (40 s in the short
// run, with the restart and the save brought forward so each happens).
// tetherd's and the relay's RSS and goroutines must end within a small bound
// of where they started, and nothing may be misrouted.
func TestSoak(t *testing.T) {
	total := pick(40*time.Second, 10*time.Minute)
	restartEvery := pick(15*time.Second, 60*time.Second)
	saveEvery := pick(10*time.Second, 45*time.Second)
	r, d, cfg, base, raw, l := loadedEngine(t)
	// Warm up before the baseline: the first minutes of a process grow
	// its heap and pools once.
	l.waitAllSessions(t, time.Now().Add(2*time.Second), 30*time.Second)
	before := d.stats(t)
	relayBefore := readProc(r.cmd.Process.Pid)

	start := time.Now()
	nextRestart, nextSave := start.Add(restartEvery), start.Add(saveEvery)
	restarts, saves := 0, 0
	var recov []time.Duration
	for time.Since(start) < total {
		now := time.Now()
		switch {
		case !now.Before(nextRestart):
			r.kill(t)
			r.start(t)
			recov = append(recov, l.waitAllSessions(t, time.Now(), 15*time.Second))
			restarts++
			nextRestart = nextRestart.Add(restartEvery)
		case !now.Before(nextSave):
			servers := map[string]any{"test": base["test"], "extra": map[string]any{"command": raw, "args": []string{fmt.Sprint(saves)}}}
			writeAtomic(t, cfg, configBytes(t, servers))
			saves++
			nextSave = nextSave.Add(saveEvery)
		default:
			time.Sleep(min(time.Until(nextRestart), time.Until(nextSave), time.Second)) // the soak's schedule
		}
	}
	// Settle, then measure: every session serving again, the last save applied.
	l.waitAllSessions(t, time.Now(), 15*time.Second)
	after := d.settled(t, before, 20)
	relayAfter := readProc(r.cmd.Process.Pid) // a new relay process since the last restart
	l.stop()
	row := l.row(fmt.Sprintf("soak: %v, 8 callers, relay restart every %v, save every %v", total, restartEvery, saveEvery))
	if len(recov) > 0 {
		row.Recovery = median(recov)
	}
	row.Goroutines, row.FDs, row.RSSKiB = growth(before, after)
	row.Note = fmt.Sprintf("%d restarts, %d saves; relay RSS %d → %d KiB", restarts, saves, relayBefore.rssKiB, relayAfter.rssKiB)
	report(row)
	if row.Misrt != 0 {
		t.Errorf("%d answers reached the wrong caller", row.Misrt)
	}
	if row.Goroutines > 20 || row.FDs > 20 {
		t.Errorf("tetherd grew by %d goroutines and %d FDs", row.Goroutines, row.FDs)
	}
	if row.RSSKiB > 64<<10 {
		t.Errorf("tetherd RSS grew by %d KiB", row.RSSKiB)
	}
}

package config

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/tether-dev/tether/internal/atomicfile"
)

// waitFor is the longest a test waits for an event that should come; it
// only bounds a failure, a passing test never waits this long.
const waitFor = 10 * time.Second

type watchRig struct {
	t        *testing.T
	dir      string
	changes  chan struct{}
	ignored  chan string // base names of events seen and filtered out
	done     chan error
	debounce time.Duration
}

func startWatch(t *testing.T, debounce time.Duration) *watchRig {
	t.Helper()
	r := &watchRig{
		t:        t,
		dir:      t.TempDir(),
		changes:  make(chan struct{}, 100),
		ignored:  make(chan string, 100),
		done:     make(chan error, 1),
		debounce: debounce,
	}
	write(t, filepath.Join(r.dir, "mcp.json"), `{"mcpServers": {}}`)
	w, err := newWatcher(r.dir, watchOptions{Debounce: debounce}, func() { r.changes <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	w.observe = func(ev fsnotify.Event, relevant bool) {
		if !relevant {
			select {
			case r.ignored <- filepath.Base(ev.Name):
			default:
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { r.done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(waitFor):
			t.Error("Run did not return after cancel")
		}
	})
	return r
}

func (r *watchRig) path(name string) string { return filepath.Join(r.dir, name) }

func (r *watchRig) awaitChange(what string) {
	r.t.Helper()
	select {
	case <-r.changes:
	case <-time.After(waitFor):
		r.t.Fatalf("%s: no change reported", what)
	}
}

// quiet asserts that no change is reported. Absence cannot be awaited, so
// this waits a bounded quiet period: three debounce periods, by which time a
// queued event would long have fired its callback.
func (r *watchRig) quiet(what string) int {
	r.t.Helper()
	n := 0
	deadline := time.After(3 * r.debounce)
	for {
		select {
		case <-r.changes:
			n++
		case <-deadline:
			return n
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestWatchSaveStyles(t *testing.T) {
	styles := map[string]func(r *watchRig){
		"atomic rename": func(r *watchRig) {
			must(r.t, os.WriteFile(r.path(".mcp.json.tmp123"), []byte(`{"a":1}`), 0o600))
			must(r.t, os.Rename(r.path(".mcp.json.tmp123"), r.path("mcp.json")))
		},
		"in place": func(r *watchRig) {
			f, err := os.OpenFile(r.path("mcp.json"), os.O_WRONLY|os.O_TRUNC, 0)
			must(r.t, err)
			_, err = f.WriteString(`{"mcpServers": `)
			must(r.t, err)
			must(r.t, f.Sync())
			_, err = f.WriteString(`{}}`)
			must(r.t, err)
			must(r.t, f.Close())
		},
		"vim": func(r *watchRig) {
			must(r.t, os.Rename(r.path("mcp.json"), r.path("mcp.json~")))
			must(r.t, os.WriteFile(r.path("mcp.json"), []byte(`{"b":1}`), 0o600))
			must(r.t, os.Remove(r.path("mcp.json~")))
		},
		"jetbrains safe write": func(r *watchRig) {
			must(r.t, os.WriteFile(r.path("mcp.json___jb_tmp___"), []byte(`{"c":1}`), 0o600))
			must(r.t, os.Rename(r.path("mcp.json"), r.path("mcp.json___jb_old___")))
			must(r.t, os.Rename(r.path("mcp.json___jb_tmp___"), r.path("mcp.json")))
			must(r.t, os.Remove(r.path("mcp.json___jb_old___")))
		},
		"mv from elsewhere": func(r *watchRig) {
			other := filepath.Join(r.t.TempDir(), "new.json")
			must(r.t, os.WriteFile(other, []byte(`{"d":1}`), 0o600))
			must(r.t, os.Rename(other, r.path("mcp.json")))
		},
		"delete": func(r *watchRig) {
			must(r.t, os.Remove(r.path("mcp.json")))
		},
		"our own atomic write": func(r *watchRig) {
			must(r.t, atomicfile.WriteFile(r.path("mcp.json"), []byte(`{"e":1}`), 0o600))
		},
		"settings.json created": func(r *watchRig) {
			must(r.t, SaveSettings(r.path("settings.json"), Settings{Relay: "https://r.example"}))
		},
		".env created": func(r *watchRig) {
			must(r.t, os.WriteFile(r.path(".env"), []byte("A=1\n"), 0o600))
		},
	}
	for name, save := range styles {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// 200 ms: one save's events come within microseconds, so only
			// a stall of the whole process that long mid-save (a loaded CI
			// machine running packages in parallel) could split them.
			r := startWatch(t, 200*time.Millisecond)
			save(r)
			r.awaitChange(name)
			if n := r.quiet(name); n > 1 {
				t.Errorf("%d extra callbacks for one save", n)
			}
		})
	}
}

func TestWatchIgnoresOtherFiles(t *testing.T) {
	r := startWatch(t, 50*time.Millisecond)
	must(t, os.WriteFile(r.path("notes.txt"), []byte("x"), 0o600))
	must(t, os.WriteFile(r.path("mcp.json.bak"), []byte("x"), 0o600))
	must(t, os.MkdirAll(r.path("logs"), 0o700))
	// Await proof that the watcher saw these events and filtered them...
	seen := map[string]bool{}
	for len(seen) < 3 {
		select {
		case n := <-r.ignored:
			seen[n] = true
		case <-time.After(waitFor):
			t.Fatalf("watcher never saw the unrelated files (saw %v)", seen)
		}
	}
	// ...then check that no callback follows.
	if n := r.quiet("unrelated files"); n != 0 {
		t.Errorf("%d callbacks for unrelated files", n)
	}
	// A chmod alone (Spotlight, backups) is not a change either.
	must(t, os.Chmod(r.path("mcp.json"), 0o644))
	select {
	case <-r.ignored:
	case <-time.After(waitFor):
		t.Fatal("chmod event never seen")
	}
	if n := r.quiet("chmod"); n != 0 {
		t.Errorf("%d callbacks for a chmod", n)
	}
	// The watcher still works.
	must(t, os.WriteFile(r.path("mcp.json"), []byte("{}"), 0o600))
	r.awaitChange("write after unrelated files")
}

// fakeLoop runs a watcher's loop on made-up events inside a synctest
// bubble: time there is virtual, so the debounce is measured exactly and a
// busy machine cannot stretch a burst into two.
type fakeLoop struct {
	t       *testing.T
	dir     string
	events  chan fsnotify.Event
	errs    chan error
	changes atomic.Int32
	cancel  context.CancelFunc
	done    chan error
}

func startFakeLoop(t *testing.T, debounce time.Duration) *fakeLoop {
	dir := filepath.Clean("/tether")
	w := &watcher{dir: dir, names: map[string]bool{"mcp.json": true}, debounce: debounce,
		maxWait: max(10*debounce, time.Second), logger: slog.New(slog.DiscardHandler)}
	l := &fakeLoop{t: t, dir: dir, events: make(chan fsnotify.Event), errs: make(chan error), done: make(chan error, 1)}
	w.onChange = func() { l.changes.Add(1) }
	ctx, cancel := context.WithCancel(t.Context())
	l.cancel = cancel
	go func() { l.done <- w.loop(ctx, l.events, l.errs) }()
	return l
}

func (l *fakeLoop) write(name string) {
	l.events <- fsnotify.Event{Name: filepath.Join(l.dir, name), Op: fsnotify.Write}
}

// settle lets virtual time run until the loop is idle and returns the
// callbacks so far.
func (l *fakeLoop) settle() int {
	time.Sleep(time.Hour) // virtual: returns once every timer due has fired
	synctest.Wait()
	return int(l.changes.Load())
}

func (l *fakeLoop) stop() {
	l.cancel()
	if err := <-l.done; err != nil {
		l.t.Errorf("loop: %v", err)
	}
}

func TestWatchDebouncesBursts(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		l := startFakeLoop(t, 100*time.Millisecond)
		defer l.stop()
		// 9 writes 99 ms apart: never quiet for the debounce, and over
		// before maxWait (1 s) cuts the burst.
		for range 9 {
			l.write("mcp.json")
			time.Sleep(99 * time.Millisecond)
		}
		synctest.Wait()
		if n := l.changes.Load(); n != 0 {
			t.Fatalf("%d callbacks before the burst went quiet", n)
		}
		if n := l.settle(); n != 1 {
			t.Errorf("one burst gave %d callbacks, want 1", n)
		}
		// Other files and a chmod alone count for nothing.
		l.write("notes.txt")
		l.events <- fsnotify.Event{Name: filepath.Join(l.dir, "mcp.json"), Op: fsnotify.Chmod}
		if n := l.settle(); n != 1 {
			t.Errorf("unrelated events gave %d more callbacks", n-1)
		}
		// A second burst after a quiet period is a second callback.
		l.write("mcp.json")
		l.write("mcp.json")
		if n := l.settle(); n != 2 {
			t.Errorf("second burst: %d callbacks in all, want 2", n)
		}
	})
}

// A file written without pause still reloads: a burst is cut at maxWait.
func TestWatchMaxWait(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		l := startFakeLoop(t, 100*time.Millisecond)
		defer l.stop()
		start := time.Now()
		for l.changes.Load() == 0 {
			if time.Since(start) > 5*time.Second {
				t.Fatal("continuous writes never produced a callback")
			}
			l.write("mcp.json")
			time.Sleep(10 * time.Millisecond) // never quiet for 100 ms
			synctest.Wait()
		}
		// maxWait is max(10 × debounce, 1 s) = 1 s after the first event.
		if got := time.Since(start); got < time.Second || got > time.Second+10*time.Millisecond {
			t.Errorf("first callback after %v of continuous writes, want 1s", got)
		}
	})
}

// An overflow (events lost) reloads, to be safe.
func TestWatchOverflowReloads(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		l := startFakeLoop(t, 100*time.Millisecond)
		defer l.stop()
		l.errs <- fsnotify.ErrEventOverflow
		if n := l.settle(); n != 1 {
			t.Errorf("overflow gave %d callbacks, want 1", n)
		}
	})
}

func TestWatchFolderErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	if err := Watch(context.Background(), missing, nil, 0, func() {}); err == nil {
		t.Error("watching a missing folder: no error")
	}
	file := filepath.Join(t.TempDir(), "file")
	write(t, file, "x")
	if err := Watch(context.Background(), file, nil, 0, func() {}); err == nil {
		t.Error("watching a file: no error")
	}

	// The folder going away ends Run with an error.
	dir := filepath.Join(t.TempDir(), "tether")
	must(t, os.MkdirAll(dir, 0o700))
	w, err := newWatcher(dir, watchOptions{}, func() {})
	must(t, err)
	done := make(chan error, 1)
	go func() { done <- w.Run(context.Background()) }()
	must(t, os.RemoveAll(dir))
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "removed or renamed") {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Run kept going after its folder was removed")
	}
}

func TestWatchConfigCancel(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	changes := make(chan struct{}, 10)
	done := make(chan error, 1)
	go func() {
		done <- Watch(ctx, dir, []string{"mcp.json"}, 20*time.Millisecond, func() { changes <- struct{}{} })
	}()
	// Watch sets its watch up inside; write until it reports (the
	// first writes may come before the watch exists).
	stop := time.After(waitFor)
wait:
	for {
		must(t, os.WriteFile(filepath.Join(dir, "mcp.json"), []byte("{}"), 0o600))
		select {
		case <-changes:
			break wait
		case <-stop:
			t.Fatal("no change reported")
		case <-time.After(50 * time.Millisecond): // pacing of the retries
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Watch after cancel = %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Watch did not return after cancel")
	}
}

package config

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
			r := startWatch(t, 50*time.Millisecond)
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

func TestWatchDebouncesBursts(t *testing.T) {
	r := startWatch(t, 100*time.Millisecond)
	for i := range 20 {
		must(t, os.WriteFile(r.path("mcp.json"), []byte(strings.Repeat("x", i)), 0o600))
	}
	r.awaitChange("burst")
	if n := 1 + r.quiet("burst"); n > 2 {
		t.Errorf("20 writes gave %d callbacks, want 1-2", n)
	}
}

// A file written without pause still reloads: a burst is cut at maxWait.
func TestWatchMaxWait(t *testing.T) {
	r := startWatch(t, 100*time.Millisecond)
	stop := time.After(waitFor)
	for i := 0; ; i++ {
		must(t, os.WriteFile(r.path("mcp.json"), []byte(strings.Repeat("y", i%50)), 0o600))
		select {
		case <-r.changes:
			return
		case <-stop:
			t.Fatal("continuous writes never produced a callback")
		// Pacing, not synchronisation: writes 10 ms apart keep the
		// 100 ms debounce from ever going quiet.
		case <-time.After(10 * time.Millisecond):
		}
	}
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

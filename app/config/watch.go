package config

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// defaultDebounce is how long the config folder must be quiet after a
// change before the engine reloads. Editors save in bursts (write temp,
// rename, chmod, delete backup) that finish well within it.
const defaultDebounce = 100 * time.Millisecond

// watchOptions configures a Watcher. Zero values are sensible defaults.
type watchOptions struct {
	// Names are the base names to watch inside the folder. Default:
	// mcp.json, settings.json and .env.
	Names []string
	// Debounce is the quiet period before OnChange runs (defaultDebounce).
	Debounce time.Duration
	// Logger receives watch errors (nil: discard).
	Logger *slog.Logger
}

// watcher reports changes to a few files of one folder. It watches the
// folder, not the files: editors save by writing a temp file and renaming it
// over the original (VS Code, JetBrains' safe write, our own atomic writes),
// or by renaming the original away and writing a new one (vim), and a watch
// on the file itself would follow the old inode and go silent. Watching the
// folder sees every one of these as an event on the file's name.
type watcher struct {
	dir      string
	names    map[string]bool
	debounce time.Duration
	maxWait  time.Duration
	logger   *slog.Logger
	fsw      *fsnotify.Watcher
	onChange func()

	// observe, when set (tests), sees every raw event and whether it counted.
	observe func(ev fsnotify.Event, relevant bool)
}

// newWatcher starts watching dir at once (so nothing that happens after it
// returns is missed); call Run to receive the changes, or Close.
func newWatcher(dir string, opts watchOptions, onChange func()) (*watcher, error) {
	dir = filepath.Clean(dir)
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("watch config folder: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("watch config folder: %s is not a folder", dir)
	}
	names := opts.Names
	if len(names) == 0 {
		names = []string{"mcp.json", "settings.json", ".env"}
	}
	w := &watcher{
		dir:      dir,
		names:    map[string]bool{},
		debounce: opts.Debounce,
		logger:   opts.Logger,
		onChange: onChange,
	}
	for _, n := range names {
		w.names[nameKey(n)] = true
	}
	if w.debounce <= 0 {
		w.debounce = defaultDebounce
	}
	// A file written non-stop (a log mistakenly named mcp.json) must still
	// reload now and then, so a burst is cut after maxWait.
	w.maxWait = max(10*w.debounce, time.Second)
	if w.logger == nil {
		w.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if w.fsw, err = fsnotify.NewWatcher(); err != nil {
		return nil, fmt.Errorf("watch config folder: %w", err)
	}
	if err := w.fsw.Add(dir); err != nil {
		w.fsw.Close()
		return nil, fmt.Errorf("watch config folder: %w", err)
	}
	return w, nil
}

// Watch watches the files names (base names) in dir and calls
// onChange once a burst of changes has been quiet for debounce (0:
// defaultDebounce). It returns nil when ctx ends, and an error if dir does
// not exist or is removed or renamed while watched.
func Watch(ctx context.Context, dir string, names []string, debounce time.Duration, onChange func()) error {
	return WatchEach(ctx, dir, names, debounce, nil, onChange)
}

// WatchEach is Watch that also calls onEvent (when not nil) with the base
// name of the file at once for every relevant event, before the debounce:
// a reader that wants to see each save of a burst, not only the last one
// (the engine keeps the last valid mcp.json written during a burst that
// ends in an invalid one). onEvent runs on the watcher's goroutine and must
// be quick.
func WatchEach(ctx context.Context, dir string, names []string, debounce time.Duration, onEvent func(name string), onChange func()) error {
	w, err := newWatcher(dir, watchOptions{Names: names, Debounce: debounce}, onChange)
	if err != nil {
		return err
	}
	if onEvent != nil {
		w.observe = func(ev fsnotify.Event, relevant bool) {
			if relevant {
				onEvent(filepath.Base(ev.Name))
			}
		}
	}
	return w.Run(ctx)
}

// Close stops a watcher whose Run was never called.
func (w *watcher) Close() error { return w.fsw.Close() }

// Run delivers changes until ctx ends (nil) or the folder goes away (an
// error). onChange runs on Run's goroutine, one call at a time; events that
// arrive meanwhile are coalesced into the next call. Run closes the watcher.
func (w *watcher) Run(ctx context.Context) error {
	defer w.fsw.Close()
	return w.loop(ctx, w.fsw.Events, w.fsw.Errors)
}

// loop is Run on any source of events: the debounce runs on time.Timer and
// time.Now alone, so a test can drive it with made-up events in a
// testing/synctest bubble, where time is virtual and exact.
func (w *watcher) loop(ctx context.Context, events <-chan fsnotify.Event, errs <-chan error) error {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var pending bool
	var burstStart time.Time
	changed := func() {
		now := time.Now()
		if !pending {
			pending, burstStart = true, now
		}
		wait := w.debounce
		if left := w.maxWait - now.Sub(burstStart); left < wait {
			wait = max(left, 0)
		}
		timer.Reset(wait) // Go ≥1.23: Reset never delivers a stale tick
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return errors.New("config watcher closed")
			}
			if filepath.Clean(ev.Name) == w.dir && ev.Op.Has(fsnotify.Remove|fsnotify.Rename) {
				return fmt.Errorf("config folder %s was removed or renamed", w.dir)
			}
			relevant := w.relevant(ev)
			if w.observe != nil {
				w.observe(ev, relevant)
			}
			if relevant {
				changed()
			}
		case err, ok := <-errs:
			if !ok {
				return errors.New("config watcher closed")
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were lost; one of them may have been ours.
				w.logger.Warn("config watch overflowed; reloading to be safe")
				changed()
				continue
			}
			w.logger.Warn("config watch error", "err", err)
		case <-timer.C:
			pending = false
			w.onChange()
		}
	}
}

// relevant reports whether ev changes one of the watched files. Chmod alone
// is ignored: Spotlight, antivirus and backup tools touch attributes all day.
func (w *watcher) relevant(ev fsnotify.Event) bool {
	if ev.Op&^fsnotify.Chmod == 0 {
		return false
	}
	if filepath.Dir(filepath.Clean(ev.Name)) != w.dir {
		return false
	}
	return w.names[nameKey(filepath.Base(ev.Name))]
}

// nameKey folds case where the file system usually does (macOS, Windows),
// so "MCP.json" saved by some tool still counts.
func nameKey(name string) string {
	if runtime.GOOS == "darwin" || runtime.GOOS == "windows" {
		return strings.ToLower(name)
	}
	return name
}

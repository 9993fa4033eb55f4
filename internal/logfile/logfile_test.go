package logfile

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// TestRotation writes 1.1 MiB into a 1 MiB log and checks that the file
// really rotates: a fresh current file, one gzipped backup holding the first
// part, nothing lost, and every file 0600 in a 0700 folder.
func TestRotation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	w, err := Open(dir, "tetherd.log", Options{MaxSizeMB: 1, MaxBackups: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	// Compression runs on a background goroutine after the rotation; it
	// removes the plain backup when the .gz is complete, so that removal is
	// the event to wait for.
	watch, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	if err := watch.Add(dir); err != nil {
		t.Fatal(err)
	}

	line := []byte(strings.Repeat("x", 1023) + "\n") // 1 KiB
	const lines = 1126                               // 1.1 MiB in all
	for i := 0; i < lines; i++ {
		if _, err := w.Write(line); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}

	deadline := time.After(10 * time.Second)
	var backup string
	for backup == "" {
		select {
		case ev := <-watch.Events:
			if ev.Op&fsnotify.Remove != 0 && strings.HasPrefix(filepath.Base(ev.Name), "tetherd-") {
				backup = ev.Name + ".gz"
			}
		case err := <-watch.Errors:
			t.Fatal(err)
		case <-deadline:
			t.Fatalf("no compressed backup after rotation; folder holds %v", listDir(t, dir))
		}
	}

	names := listDir(t, dir)
	if len(names) != 2 {
		t.Fatalf("want the current log and one .gz backup, got %v", names)
	}
	cur, err := os.ReadFile(filepath.Join(dir, "tetherd.log"))
	if err != nil {
		t.Fatal(err)
	}
	gz := readGzip(t, backup)
	if got := len(cur) + len(gz); got != lines*len(line) {
		t.Fatalf("current %d + backup %d bytes = %d, want %d", len(cur), len(gz), got, lines*len(line))
	}
	if len(gz) > 1<<20 || len(gz) < 1<<20-len(line) {
		t.Fatalf("backup holds %d bytes, want just under 1 MiB", len(gz))
	}
	if runtime.GOOS != "windows" {
		assertMode(t, dir, 0o700|os.ModeDir)
		assertMode(t, filepath.Join(dir, "tetherd.log"), 0o600)
		assertMode(t, backup, 0o600)
	}
}

// TestOpenTightensModes: an existing log folder and file with loose modes
// (an older build, a hand-made folder) are restricted to the owner.
func TestOpenTightensModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // past the umask
		t.Fatal(err)
	}
	path := filepath.Join(dir, "tetherd.log")
	if err := os.WriteFile(path, []byte("old line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := Open(dir, "tetherd.log", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, "new line\n"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" { // Windows restricts files by ACL, not mode bits
		assertMode(t, dir, 0o700|os.ModeDir)
		assertMode(t, path, 0o600)
	}
	got, _ := os.ReadFile(path)
	if string(got) != "old line\nnew line\n" {
		t.Fatalf("log = %q, want the old line kept and the new one appended", got)
	}
}

func TestOpenRejectsPaths(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"", ".", "..", "../x.log", "a/b.log"} {
		if w, err := Open(dir, name, Options{}); err == nil {
			w.Close()
			t.Errorf("Open(%q) succeeded, want an error", name)
		}
	}
	if _, err := Open("", "x.log", Options{}); err == nil {
		t.Error("Open with no folder succeeded")
	}
}

// TestServerLog: one file per server, named safely, with the server's
// rotation settings.
func TestServerLog(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		"github":      "server-github.log",
		"my server/x": "server-my_server_x.log",
		"..":          "server-__.log",
		"":            "server-_.log",
	}
	for server, want := range cases {
		w, err := ServerLog(dir, server)
		if err != nil {
			t.Fatalf("ServerLog(%q): %v", server, err)
		}
		lf, ok := w.(*File)
		if !ok {
			t.Fatalf("ServerLog returned %T, want a rotating writer", w)
		}
		if lf.opts.MaxSizeMB != 2 || lf.opts.MaxBackups != 3 || lf.opts.NoCompress {
			t.Errorf("server log rotation = %+v, want 2 MiB x 3 compressed", lf.opts)
		}
		if _, err := io.WriteString(w, "stderr line\n"); err != nil {
			t.Fatal(err)
		}
		w.Close()
		if _, err := os.Stat(filepath.Join(dir, want)); err != nil {
			t.Errorf("ServerLog(%q): want file %s: %v", server, want, err)
		}
	}
	if n := len(listDir(t, dir)); n != len(cases) {
		t.Errorf("folder holds %d files, want %d", n, len(cases))
	}
}

// TestNewLoggerFanOut: one record reaches the JSON file and the terminal
// text, with attributes and groups on both; below the level, neither.
func TestNewLoggerFanOut(t *testing.T) {
	var file, term bytes.Buffer
	log := NewLogger(&file, &term, true, slog.LevelInfo)
	log.With("server", "github").WithGroup("call").Info("tool called", "tool", "search")
	log.Debug("too chatty")

	var rec map[string]any
	if err := json.Unmarshal(file.Bytes(), &rec); err != nil {
		t.Fatalf("file got %q, want one JSON line: %v", file.String(), err)
	}
	if rec["msg"] != "tool called" || rec["server"] != "github" || rec["level"] != "INFO" {
		t.Errorf("file record = %v", rec)
	}
	if call, _ := rec["call"].(map[string]any); call["tool"] != "search" {
		t.Errorf("file record lost the group: %v", rec)
	}
	txt := term.String()
	for _, want := range []string{"level=INFO", `msg="tool called"`, "server=github", "call.tool=search"} {
		if !strings.Contains(txt, want) {
			t.Errorf("terminal text %q lacks %q", txt, want)
		}
	}
	if strings.Contains(file.String()+txt, "too chatty") {
		t.Error("a debug record passed an info logger")
	}
}

// TestNewLoggerNoTerminal: under a service manager only the file is written.
func TestNewLoggerNoTerminal(t *testing.T) {
	var file, term bytes.Buffer
	NewLogger(&file, &term, false, slog.LevelDebug).Debug("hello")
	if term.Len() != 0 {
		t.Errorf("stderr got %q with toTerminal=false", term.String())
	}
	if !strings.Contains(file.String(), `"msg":"hello"`) {
		t.Errorf("file got %q", file.String())
	}
	var only bytes.Buffer
	NewLogger(nil, &only, true, slog.LevelInfo).Info("hi")
	if !strings.Contains(only.String(), "msg=hi") {
		t.Errorf("terminal-only logger wrote %q", only.String())
	}
	NewLogger(nil, nil, false, slog.LevelInfo).Info("discarded") // must not panic
}

func TestIsTerminal(t *testing.T) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if IsTerminal(null) {
		t.Error("the null device counted as a terminal")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if IsTerminal(w) {
		t.Error("a pipe counted as a terminal")
	}
	if IsTerminal(nil) {
		t.Error("nil counted as a terminal")
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func readGzip(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode() & (os.ModeDir | os.ModePerm); got != want {
		t.Errorf("%s: mode %v, want %v", path, got, want)
	}
}

// TestCloseEndsBackgroundWork: a file that rotated (so compression ran)
// owns no goroutine once closed -- the leak lumberjack had, one goroutine
// per server a reload removed.
func TestCloseEndsBackgroundWork(t *testing.T) {
	dir := t.TempDir()
	before := runtime.NumGoroutine()
	line := []byte(strings.Repeat("y", 1023) + "\n")
	for i := range 20 {
		w, err := Open(dir, "s"+string(rune('a'+i))+".log", Options{MaxSizeMB: 1, MaxBackups: 1})
		if err != nil {
			t.Fatal(err)
		}
		for range 1100 { // past 1 MiB: one rotation
			if _, err := w.Write(line); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		// A late line (a server still stopping) is appended, and opens
		// nothing that stays open.
		if _, err := w.Write([]byte("late\n")); err != nil {
			t.Fatalf("write after Close: %v", err)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "s"+string(rune('a'+i))+".log")); !bytes.HasSuffix(b, []byte(strings.Repeat("y", 1023)+"\nlate\n")) {
			t.Fatalf("late line not appended to the current file (%d bytes)", len(b))
		}
	}
	gz := 0
	for _, n := range listDir(t, dir) {
		if strings.HasSuffix(n, ".gz") {
			gz++
		}
	}
	if gz != 20 { // counted after Close returned: Close waits for compression
		t.Fatalf("want 20 compressed backups, folder holds %v", listDir(t, dir))
	}
	// Nothing of the files may stay. The count is polled (bounded) because
	// the runtime briefly counts its finalizer goroutine as a user one while
	// it runs a finalizer; a leak stays, one per file.
	deadline := time.Now().Add(5 * time.Second)
	n := runtime.NumGoroutine()
	for n > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	if n > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines after closing, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// TestPrunesOldBackups: only MaxBackups backups stay, the newest ones,
// including backups left by an older build in the same naming scheme.
func TestPrunesOldBackups(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "app-2020-01-02T03-04-05.000.log.gz")
	if err := os.WriteFile(old, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := Open(dir, "app.log", Options{MaxSizeMB: 1, MaxBackups: 2})
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("z"), 1<<20)
	for range 4 { // each write after the first rotates
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	names := listDir(t, dir)
	if len(names) != 3 || slices.Contains(names, filepath.Base(old)) {
		t.Fatalf("folder holds %v, want app.log and the two newest backups", names)
	}
}

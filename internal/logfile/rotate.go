package logfile

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// backupTimeFormat is the time in a backup's name, name-<time>.ext; the
// same as lumberjack's, which wrote Tether's logs before, so backups from
// older builds are counted and pruned too.
const backupTimeFormat = "2006-01-02T15-04-05.000"

// File is a size-rotated log file. Past its size limit the file is renamed
// to name-<UTC time>.ext and a fresh one started; a background goroutine
// then gzips the backup and removes the ones beyond MaxBackups or MaxAgeDays.
//
// Why not lumberjack (which this replaces): its compression goroutine, once
// started, runs until the process exits -- Close does not end it -- so every
// server removed by a reload leaked one. Here that goroutine exists only
// while there is work, and Close waits for it: a closed File owns nothing.
type File struct {
	path string
	opts Options

	mu      sync.Mutex
	f       *os.File // nil until the first write, and after Close
	size    int64
	closed  bool
	milling bool // the background goroutine runs
	again   bool // a rotation happened while it ran: one more pass
	mill    sync.WaitGroup
}

func newFile(path string, opts Options) *File { return &File{path: path, opts: opts} }

// Write appends p, rotating first if p would take the file past its limit.
// A single write larger than the limit goes into a file of its own rather
// than being refused.
//
// After Close a write still appends, opening and closing the file for that
// one write (and not rotating): a server's log is closed when the server is
// removed, while the child may still be stopping, and its last stderr lines
// and the "stopped" line belong in the log. Nothing stays open for them.
func (l *File) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return 0, fmt.Errorf("open log file: %w", err)
		}
		n, err := f.Write(p)
		return n, errors.Join(err, f.Close())
	}
	if l.f == nil {
		if err := l.open(); err != nil {
			return 0, err
		}
	}
	if l.size > 0 && l.size+int64(len(p)) > l.max() {
		if err := l.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	return n, err
}

// Close closes the file and waits for any compression or pruning under way;
// afterwards the File holds no descriptor and no goroutine.
func (l *File) Close() error {
	l.mu.Lock()
	l.closed = true
	var err error
	if l.f != nil {
		err = l.f.Close()
		l.f = nil
	}
	l.mu.Unlock()
	l.mill.Wait()
	return err
}

func (l *File) max() int64 { return int64(l.opts.MaxSizeMB) << 20 }

// open appends to the existing file (ensureFile made it 0600).
func (l *File) open() error {
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open log file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open log file: %w", err)
	}
	l.f, l.size = f, fi.Size()
	return nil
}

// rotate moves the current file aside and starts a fresh one; called with
// l.mu held.
func (l *File) rotate() error {
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("rotate log file: %w", err)
	}
	l.f = nil
	// Two rotations within one millisecond (a flood into a small file)
	// must not overwrite a backup: take the next free millisecond.
	t := time.Now()
	name := l.backupName(t)
	for exists(name) || exists(name+".gz") {
		t = t.Add(time.Millisecond)
		name = l.backupName(t)
	}
	if err := os.Rename(l.path, name); err != nil {
		return fmt.Errorf("rotate log file: %w", err)
	}
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("rotate log file: %w", err)
	}
	l.f, l.size = f, 0
	if l.milling {
		l.again = true
	} else {
		l.milling = true
		l.mill.Add(1)
		go l.millLoop()
	}
	return nil
}

// millLoop compresses and prunes backups until no rotation asks for more,
// then ends.
func (l *File) millLoop() {
	defer l.mill.Done()
	for {
		l.millOnce()
		l.mu.Lock()
		if !l.again {
			l.milling = false
			l.mu.Unlock()
			return
		}
		l.again = false
		l.mu.Unlock()
	}
}

func (l *File) prefixExt() (string, string) {
	base := filepath.Base(l.path)
	ext := filepath.Ext(base)
	return strings.TrimSuffix(base, ext) + "-", ext
}

func (l *File) backupName(t time.Time) string {
	prefix, ext := l.prefixExt()
	return filepath.Join(filepath.Dir(l.path), prefix+t.UTC().Format(backupTimeFormat)+ext)
}

type backup struct {
	name string // file name in the folder
	t    time.Time
	gz   bool
}

// backups lists this log's backups, newest first.
func (l *File) backups() []backup {
	entries, err := os.ReadDir(filepath.Dir(l.path))
	if err != nil {
		return nil
	}
	prefix, ext := l.prefixExt()
	var out []backup
	for _, e := range entries {
		name := e.Name()
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok || e.IsDir() {
			continue
		}
		b := backup{name: name}
		rest, b.gz = strings.CutSuffix(rest, ".gz")
		ts, ok := strings.CutSuffix(rest, ext)
		if !ok {
			continue
		}
		if b.t, err = time.Parse(backupTimeFormat, ts); err != nil {
			continue
		}
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b backup) int { return b.t.Compare(a.t) })
	return out
}

// millOnce removes backups beyond MaxBackups (a plain file and its .gz
// count once) or older than MaxAgeDays, and gzips the rest.
func (l *File) millOnce() {
	dir := filepath.Dir(l.path)
	var cutoff time.Time
	if l.opts.MaxAgeDays > 0 {
		cutoff = time.Now().Add(-time.Duration(l.opts.MaxAgeDays) * 24 * time.Hour)
	}
	seen := map[time.Time]bool{}
	for _, b := range l.backups() {
		seen[b.t] = true
		if len(seen) > l.opts.MaxBackups || (!cutoff.IsZero() && b.t.Before(cutoff)) {
			os.Remove(filepath.Join(dir, b.name))
			continue
		}
		if !b.gz && !l.opts.NoCompress {
			_ = compress(filepath.Join(dir, b.name))
		}
	}
}

// compress writes src.gz (0600) and removes src once the copy is complete;
// an existing src.gz from an interrupted run is overwritten.
func compress(src string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(src+".gz", os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(out)
	_, err = io.Copy(zw, in)
	err = errors.Join(err, zw.Close(), out.Close())
	if err != nil {
		os.Remove(src + ".gz")
		return err
	}
	return os.Remove(src)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

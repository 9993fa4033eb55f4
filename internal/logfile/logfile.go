// Package logfile writes Tether's log files: size-rotated, compressed
// backups, readable only by the user (files 0600 in a 0700 folder); see File.
// It also builds the slog.Logger that writes
// JSON to such a file and, when a person is watching a terminal, readable
// text to stderr as well.
package logfile

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Options sets rotation. Zero values take the defaults of Open.
type Options struct {
	MaxSizeMB  int  // rotate when the file would pass this many MiB
	MaxBackups int  // rotated files to keep
	MaxAgeDays int  // also drop backups older than this; 0 keeps them regardless of age
	NoCompress bool // keep backups as plain text instead of gzip
}

// The engine's own log and each MCP server's stderr log.
const (
	DefaultMaxSizeMB  = 10
	DefaultMaxBackups = 5
	ServerMaxSizeMB   = 2
	ServerMaxBackups  = 3
)

// Open returns a writer appending to dir/name. Past MaxSizeMB the file is
// renamed to name-<UTC time>.ext, gzipped in the background, and a fresh file
// started; only MaxBackups old files are kept. The folder is created (or
// tightened) to 0700 and the files are 0600 on unix: logs name servers,
// paths and errors, which are the user's business only. The file is created
// at once so that a folder we cannot write fails here, not at the first log
// line. Close the writer when done: that also ends its background work.
func Open(dir, name string, opts Options) (*File, error) {
	if name == "" || name != filepath.Base(name) || name == "." || name == ".." {
		return nil, fmt.Errorf("log file name %q: want a plain file name", name)
	}
	if err := ensureDir(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, name)
	if err := ensureFile(path); err != nil {
		return nil, err
	}
	if opts.MaxSizeMB <= 0 {
		opts.MaxSizeMB = DefaultMaxSizeMB
	}
	if opts.MaxBackups <= 0 {
		opts.MaxBackups = DefaultMaxBackups
	}
	return newFile(path, opts), nil
}

// ServerLog is the log of one MCP server's stderr (mcpchild.Options.Log):
// dir/server-<name>.log, rotated at 2 MiB with 3 compressed backups, since a
// chatty server should not crowd out the engine's own log. Server names come
// from mcp.json keys, so anything that is not safe in a file name is
// replaced.
func ServerLog(dir, server string) (io.WriteCloser, error) {
	f, err := Open(dir, ServerLogName(server), Options{
		MaxSizeMB:  ServerMaxSizeMB,
		MaxBackups: ServerMaxBackups,
	})
	if err != nil {
		return nil, err // not a nil *File in a non-nil interface
	}
	return f, nil
}

// ServerLogName is the file name of one server's log inside the logs folder.
func ServerLogName(server string) string { return "server-" + safeName(server) + ".log" }

// NewLogger writes every record at level or above as JSON lines to file
// (nil: no file) and, when toTerminal is true, also as text to stderr, so a
// person running tetherd in a terminal sees what the log file gets. Pass
// toTerminal = IsTerminal(os.Stderr) for a command run by hand, and false
// under a service manager, where stderr goes to a journal that would only
// duplicate the file.
func NewLogger(file io.Writer, stderr io.Writer, toTerminal bool, level slog.Level) *slog.Logger {
	ho := &slog.HandlerOptions{Level: level}
	var hs []slog.Handler
	if file != nil {
		hs = append(hs, slog.NewJSONHandler(file, ho))
	}
	if toTerminal && stderr != nil {
		hs = append(hs, slog.NewTextHandler(stderr, ho))
	}
	switch len(hs) {
	case 0:
		return slog.New(slog.DiscardHandler)
	case 1:
		return slog.New(hs[0])
	}
	return slog.New(slog.NewMultiHandler(hs...))
}

// IsTerminal reports whether f is a terminal (a character device), which is
// the test for "a person is watching stderr". It needs no terminal library:
// a pipe, a file or /dev/null under a service manager is not one, except
// /dev/null itself, which is a character device and is checked by name.
func IsTerminal(f *os.File) bool {
	if f == nil {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	if null, err := os.Stat(os.DevNull); err == nil && os.SameFile(fi, null) {
		return false
	}
	return true
}

// ensureDir creates dir as 0700, or tightens an existing one: it is Tether's
// own logs folder, nobody else's.
func ensureDir(dir string) error {
	if dir == "" {
		return errors.New("log folder is not set")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create log folder: %w", err)
	}
	if runtime.GOOS == "windows" { // access is ACLs there, inherited from the profile
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("check log folder: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("log folder %s is not a folder", dir)
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("restrict log folder to its owner: %w", err)
		}
	}
	return nil
}

// ensureFile creates path as 0600 or tightens an existing file (one written
// by an older build, say) so every later backup inherits 0600.
func ensureFile(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open log file: %w", err)
	}
	defer f.Close()
	if runtime.GOOS == "windows" {
		return nil
	}
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("check log file: %w", err)
	}
	if fi.Mode().Perm() != 0o600 {
		if err := f.Chmod(0o600); err != nil {
			return fmt.Errorf("restrict log file to its owner: %w", err)
		}
	}
	return nil
}

// safeName keeps letters, digits, '-', '_' and '.', and maps the rest to '_'.
func safeName(s string) string {
	if s == "" {
		return "_"
	}
	b := []byte(s)
	for i, c := range b {
		ok := c == '-' || c == '_' || c == '.' ||
			('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
		if !ok {
			b[i] = '_'
		}
	}
	out := string(b)
	if strings.Trim(out, ".") == "" { // ".", ".." would escape or hide
		out = strings.ReplaceAll(out, ".", "_")
	}
	return out
}

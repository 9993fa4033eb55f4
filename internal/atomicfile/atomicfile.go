// Package atomicfile replaces a file so that a reader sees either the old
// or the new content, never half of it, and so that the new content
// survives a crash or power loss once WriteFile returns.
package atomicfile

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// WriteFile replaces path with data: it writes a temporary file in the same
// folder (a rename is atomic only within one file system), syncs it,
// renames it over path and syncs the folder so the rename itself is
// durable. The file gets mode perm; perm 0 keeps the mode of the file it
// replaces (0o600 when there is none). The temporary name starts with "."
// and ends in ".tmp", so a watcher that filters on exact names never
// reacts to it.
func WriteFile(path string, data []byte, perm fs.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if perm == 0 {
		perm = 0o600
		if fi, err := os.Stat(path); err == nil {
			perm = fi.Mode().Perm()
		}
	}
	f, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return fmt.Errorf("create temp file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write temp file: %w", err)
	}
	if runtime.GOOS != "windows" { // Windows has no mode bits beyond read-only
		if err := f.Chmod(perm); err != nil {
			return fmt.Errorf("chmod temp file: %w", err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync temp file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close temp file: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("replace %s: %w", base, err)
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable. Windows cannot open a folder for
// syncing (and its rename is journaled by NTFS), so there it is a no-op.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open folder to sync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync folder: %w", err)
	}
	return nil
}

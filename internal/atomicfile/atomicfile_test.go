package atomicfile

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestWriteFileNew(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a.json")
	if err := WriteFile(path, []byte("one"), 0o640); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, "one", 0o640)
}

func TestWriteFileReplaceKeepsMode(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a.json")
	if err := os.WriteFile(path, []byte("old"), 0o604); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o604); err != nil { // past the umask
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("new"), 0); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, "new", 0o604)
}

func TestWriteFileNewDefaultMode(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a.json")
	if err := WriteFile(path, []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, "x", 0o600)
}

// A failed write leaves the old file and no temporary file behind.
func TestWriteFileFailureLeavesOld(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "a.json")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Renaming a file over a non-empty folder fails on every OS.
	blocker := filepath.Join(dir, "b")
	if err := os.MkdirAll(filepath.Join(blocker, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(blocker, []byte("new"), 0o600); err == nil {
		t.Fatal("WriteFile over a folder succeeded")
	}
	checkFile(t, path, "old", 0o600)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("folder holds %d entries, want a.json and b only: %v", len(entries), entries)
	}
}

func TestWriteFileMissingFolder(t *testing.T) {
	t.Parallel()
	if err := WriteFile(filepath.Join(t.TempDir(), "nope", "f"), []byte("x"), 0o600); err == nil {
		t.Error("no error for a missing folder")
	}
}

func checkFile(t *testing.T, path, want string, mode os.FileMode) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil || string(got) != want {
		t.Fatalf("read %s = %q, %v; want %q", path, got, err, want)
	}
	if runtime.GOOS == "windows" {
		return
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != mode {
		t.Errorf("mode = %v, want %v", fi.Mode().Perm(), mode)
	}
}

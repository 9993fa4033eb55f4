package app

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestOpenBrowserOutlivesItsContext: the tray opens the sign-in page from
// a menu action whose context ends as soon as the action returns; the
// opener (here a stand-in xdg-open first on PATH, which hands the URL to
// the test through a FIFO) must still get to hand the URL over.
func TestOpenBrowserOutlivesItsContext(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "opened")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\nprintf '%s\\n' \"$1\" >'" + fifo + "'\n"
	if err := os.WriteFile(filepath.Join(dir, "xdg-open"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))

	got := make(chan string, 1)
	go func() {
		f, err := os.Open(fifo) // until the opener (or the cleanup below) opens it
		if err != nil {
			got <- err.Error()
			return
		}
		defer f.Close()
		line, _ := bufio.NewReader(f).ReadString('\n')
		got <- strings.TrimSpace(line)
	}()
	defer func() {
		if f, err := os.OpenFile(fifo, os.O_RDWR, 0); err == nil { // frees the reader if nothing came
			f.Close()
		}
	}()

	const u = "http://127.0.0.1:9/device?user_code=BCDF-GHJK"
	ctx, cancel := context.WithCancel(t.Context())
	if err := OpenBrowser(ctx, u); err != nil {
		t.Fatal(err)
	}
	cancel() // as the menu action returns
	select {
	case line := <-got:
		if line != u {
			t.Fatalf("the opener got %q, want %q", line, u)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the opener never handed the URL over: it was killed with its context")
	}
}

//go:build linux

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoginItemLinux(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_DIRS", t.TempDir()) // no system-wide entry
	ctx := context.Background()
	if loginItemEnabled(ctx) {
		t.Fatal("enabled before")
	}
	if err := setLoginItem(ctx, true, `/opt/my "apps"/tether`); err != nil {
		t.Fatal(err)
	}
	p, _ := loginItemPath()
	data, err := os.ReadFile(p)
	if err != nil || !strings.Contains(string(data), `Exec="/opt/my \"apps\"/tether"`) || !loginItemEnabled(ctx) {
		t.Fatalf("autostart entry %q (%v)", data, err)
	}
	if err := setLoginItem(ctx, false, ""); err != nil || loginItemEnabled(ctx) {
		t.Fatalf("disable: %v", err)
	}
}

// With the package's system-wide entry (/etc/xdg/autostart/tether.desktop),
// "off" must hide it for this user (Hidden=true), and "on" undo that.
func TestLoginItemLinuxSystemEntry(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	sys := t.TempDir()
	t.Setenv("XDG_CONFIG_DIRS", "/nonexistent:"+sys)
	if err := os.MkdirAll(filepath.Join(sys, "autostart"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sys, "autostart", "tether.desktop"), []byte("[Desktop Entry]\nType=Application\nName=Tether\nExec=/usr/bin/tether\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if !loginItemEnabled(ctx) {
		t.Fatal("the system entry does not count as on")
	}
	if err := setLoginItem(ctx, false, ""); err != nil || loginItemEnabled(ctx) {
		t.Fatalf("off with a system entry: %v, enabled=%v", err, loginItemEnabled(ctx))
	}
	p, _ := loginItemPath()
	if data, err := os.ReadFile(p); err != nil || !hiddenEntry(data) {
		t.Fatalf("user entry %q (%v), want Hidden=true", data, err)
	}
	if err := setLoginItem(ctx, true, "/usr/bin/tether"); err != nil || !loginItemEnabled(ctx) {
		t.Fatalf("on again: %v", err)
	}
}

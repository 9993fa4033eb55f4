//go:build linux

package main

import (
	"context"
	"os"
	"strings"
	"testing"
)

func TestLoginItemLinux(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
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

package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tether-dev/tether/app"
)

// A foreground run refuses http:// to a relay off this machine before it
// starts anything, and says what to do.
func TestRunRefusesInsecureRelay(t *testing.T) {
	t.Setenv("TETHER_HOME", t.TempDir())
	t.Setenv("TETHER_RELAY", "")
	err := runCmd(context.Background(), []string{"--relay", "http://relay.example.com:8080"}, io.Discard, io.Discard)
	if !errors.Is(err, app.ErrInsecureRelay) {
		t.Fatalf("run: %v, want ErrInsecureRelay", err)
	}
	for _, want := range []string{"https://", "--insecure"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not say %q", err, want)
		}
	}
}

func TestCheckRelayTransportSources(t *testing.T) {
	dir := t.TempDir()
	paths := app.Paths{Dir: dir, Settings: filepath.Join(dir, "settings.json")}
	writeSettings := func(s string) {
		t.Helper()
		if err := os.WriteFile(paths.Settings, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, settings, flag string
		insecure, service    bool
		refused              bool
	}{
		{"flag http off loopback", `{}`, "http://10.0.0.5:8080", false, false, true},
		{"flag http off loopback, --insecure", `{}`, "http://10.0.0.5:8080", true, false, false},
		{"flag http loopback", `{}`, "http://127.0.0.1:8080", false, false, false},
		{"flag https", `{}`, "https://relay.example.com", false, false, false},
		{"settings http", `{"relay": "http://relay.example.com"}`, "", false, false, true},
		{"settings http with insecure key", `{"relay": "http://relay.example.com", "insecure": true}`, "", false, false, false},
		{"settings insecure covers a flag URL too (as in the engine)", `{"insecure": true}`, "http://relay.example.com", false, false, false},
		{"service: the engine shows it in its state", `{"relay": "http://relay.example.com"}`, "", false, true, false},
	} {
		writeSettings(tc.settings)
		err := checkRelayTransport(paths, tc.flag, tc.insecure, tc.service)
		if (err != nil) != tc.refused {
			t.Errorf("%s: err %v, want refused=%v", tc.name, err, tc.refused)
		}
	}
}

// `tetherd version` names the build: version, commit, date, toolchain.
func TestVersionCommand(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		var out strings.Builder
		if err := run(context.Background(), []string{arg}, nil, &out, io.Discard); err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		if s := out.String(); !strings.HasPrefix(s, "tetherd dev (commit ") || !strings.Contains(s, ", built ") || !strings.Contains(s, " go1.") {
			t.Fatalf("%s printed %q", arg, s)
		}
	}
}

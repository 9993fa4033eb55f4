package config

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestLoadSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "settings.json")
	s, err := LoadSettings(path)
	if err != nil || s != (Settings{}) {
		t.Fatalf("missing file: %+v %v", s, err)
	}
	write(t, path, `// my settings
{
  "relay": "https://relay.example.com", // the team relay
  "tag": true,
  "devId": "alice",
  "autoConnect": false,
  "insecure": true,
  "futureKey": {"x": 1},
}`)
	s, err = LoadSettings(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Relay != "https://relay.example.com" || !s.TAG || s.DevID != "alice" || s.AutoConnect == nil || *s.AutoConnect || !s.Insecure {
		t.Errorf("settings = %+v", s)
	}
}

func TestLoadSettingsErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "settings.json")
	cases := map[string]struct{ in, want string }{
		"syntax":   {"{\n  \"relay\": \"x\"\n  \"tag\": true\n}", "line 3:3: invalid character"},
		"type":     {"{\n  \"tag\": \"yes\"\n}", `line 2:`},
		"token":    {"{\n  \"relay\": \"https://r.example\",\n  \"token\": \"eyJhbGciOi.SECRET.x\"\n}", `line 3:3: holds a "token"`},
		"notobj":   {`"x"`, "line 1:1: settings must be an object"},
		"relayurl": {`{"relay": "relay.example.com"}`, `"relay": want an https://`},
		"dup":      {`{"relay": "https://a.example", "relay": "https://b.example"}`, `"relay" appears twice`},
	}
	for name, c := range cases {
		write(t, path, c.in)
		_, err := LoadSettings(path)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), path+": ") {
			t.Errorf("%s: err = %v, want %q", name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: error shows the token: %v", name, err)
		}
	}
	var ce *configError
	write(t, path, "{\"tag\": tru}")
	if _, err := LoadSettings(path); !errors.As(err, &ce) || ce.Line != 1 {
		t.Errorf("not a configError: %v", err)
	}
}

func TestSaveSettingsNewFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "settings.json")
	yes := true
	want := Settings{Relay: "https://relay.example.com", DevID: "bob", AutoConnect: &yes}
	if err := SaveSettings(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := LoadSettings(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Relay != want.Relay || got.DevID != "bob" || got.TAG || got.AutoConnect == nil || !*got.AutoConnect {
		t.Errorf("round trip = %+v", got)
	}
	if fi, _ := os.Stat(path); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v", fi.Mode().Perm())
	}
	if err := SaveSettings(path, Settings{Relay: "ftp://x"}); err == nil {
		t.Error("saved a bad relay URL")
	}
}

// Saving edits the user's file: comments, unknown keys and layout stay.
func TestSaveSettingsKeepsFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "settings.json")
	orig := `// Tether settings
{
  // where to connect
  "relay": "https://old.example.com", // comment after relay
  "futureKey": {"nested": [1, 2]},
  "tag": true,
}
`
	write(t, path, orig)
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	no := false
	if err := SaveSettings(path, Settings{Relay: "https://new.example.com", DevID: "carol", AutoConnect: &no}); err != nil {
		t.Fatal(err)
	}
	got := read(t, path)
	want := `// Tether settings
{
  // where to connect
  "relay": "https://new.example.com", // comment after relay
  "futureKey": {"nested": [1, 2]},
  "devId": "carol",
  "autoConnect": false,
}
`
	if got != want {
		t.Errorf("saved:\n%s\nwant:\n%s", got, want)
	}
	s, err := LoadSettings(path)
	if err != nil || s.TAG || s.DevID != "carol" {
		t.Errorf("reload: %+v %v", s, err)
	}
	if fi, _ := os.Stat(path); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	// Saving the same settings again does not touch the file.
	before, _ := os.Stat(path)
	if err := SaveSettings(path, s); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.Stat(path); !os.SameFile(before, after) {
		t.Error("an unchanged save replaced the file")
	}
	// A file with a token is refused, not rewritten.
	write(t, path, `{"token": "abc"}`)
	if err := SaveSettings(path, Settings{}); err == nil || !strings.Contains(err.Error(), "tetherd token set") {
		t.Errorf("token file: %v", err)
	}
	if read(t, path) != `{"token": "abc"}` {
		t.Error("file with a token was changed")
	}
}

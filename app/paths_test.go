package app

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestDefaultPaths(t *testing.T) {
	home := t.TempDir()
	t.Setenv("TETHER_HOME", home)
	p, err := DefaultPaths()
	if err != nil {
		t.Fatal(err)
	}
	want := Paths{
		Dir:      home,
		MCPJSON:  filepath.Join(home, "mcp.json"),
		Settings: filepath.Join(home, "settings.json"),
		EnvFile:  filepath.Join(home, ".env"),
		Logs:     filepath.Join(home, "logs"),
		Socket:   filepath.Join(home, "tether.sock"),
	}
	if p != want {
		t.Errorf("paths = %+v\nwant %+v", p, want)
	}

	t.Setenv("TETHER_HOME", "")
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	cfgDir, err := os.UserConfigDir()
	if err != nil {
		t.Fatal(err)
	}
	p, err = DefaultPaths()
	if err != nil || p.Dir != filepath.Join(cfgDir, "tether") {
		t.Errorf("default dir = %q, %v", p.Dir, err)
	}
}

func TestPathsEnsure(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "tether")
	p := PathsIn(dir)
	if err := p.Ensure(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{p.Dir, p.Logs} {
		fi, err := os.Stat(d)
		if err != nil || !fi.IsDir() {
			t.Fatalf("%s: %v", d, err)
		}
		if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o700 {
			t.Errorf("%s mode = %v, want 0700", d, fi.Mode().Perm())
		}
	}
	if runtime.GOOS == "windows" {
		return
	}
	// An existing folder that others can enter is tightened.
	if err := os.Chmod(p.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := p.Ensure(); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p.Dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("mode after Ensure = %v, want 0700", fi.Mode().Perm())
	}
	// A file where the folder should be is an error.
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := PathsIn(f).Ensure(); err == nil {
		t.Error("Ensure on a file: no error")
	}
}

func TestServerLog(t *testing.T) {
	p := PathsIn("/x/tether")
	// The same name logfile.ServerLog writes to, so "Show log" opens the
	// file that really receives the server's stderr.
	cases := map[string]string{
		"github":    "server-github.log",
		"my.server": "server-my.server.log",
		"../../etc": "server-.._.._etc.log",
		"a/b\\c d":  "server-a_b_c_d.log",
		"":          "server-_.log",
		"ünïcode":   "server-__n__code.log",
	}
	for name, want := range cases {
		got := p.ServerLog(name)
		if got != filepath.Join(p.Logs, want) {
			t.Errorf("ServerLog(%q) = %q, want %q", name, got, want)
		}
		if filepath.Dir(got) != p.Logs || strings.Contains(filepath.Base(got), "/") {
			t.Errorf("ServerLog(%q) escapes the log folder: %q", name, got)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/testbin"
)

// These tests run the real tetherd binary against a throw-away HOME and
// XDG_CONFIG_HOME. No systemd user manager can run on this machine (systemd
// refuses to start one unless the system booted with systemd), so:
//   - TestServiceInstallNoUserManager uses the REAL systemctl with no user
//     bus (XDG_RUNTIME_DIR and DBUS_SESSION_BUS_ADDRESS unset, which also
//     keeps a developer's real user manager out of reach), and checks the
//     unit with the REAL systemd-analyze;
//   - TestServiceFakeSystemctl puts a FAKE systemctl first on PATH that
//     records its arguments and plays back a state, to check the calls we
//     make when a user manager is there, and how status reads them.

const fakeToken = "eyJhbGciOi.secret-token-for-the-leak-check.sig"

type svcEnv struct {
	bin       string // the tetherd binary
	home      string
	xdgConfig string
	tetherDir string
	env       []string
}

// newSvcEnv makes the throw-away environment. XDG_CONFIG_HOME is not
// $HOME/.config on purpose: systemd reads user units from
// $XDG_CONFIG_HOME/systemd/user, and kardianos/service would have written
// to $HOME/.config regardless.
func newSvcEnv(t *testing.T, bin string, extraPath string) *svcEnv {
	t.Helper()
	root := t.TempDir()
	e := &svcEnv{
		bin:       bin,
		home:      filepath.Join(root, "home"),
		xdgConfig: filepath.Join(root, "xdg config"),
		tetherDir: filepath.Join(root, `tether home %h $HOME`), // specifiers and $ must survive quoting
	}
	for _, d := range []string{e.home, e.xdgConfig} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "HOME", k == "XDG_CONFIG_HOME", k == "XDG_RUNTIME_DIR", k == "DBUS_SESSION_BUS_ADDRESS",
			strings.HasPrefix(k, "TETHER_"):
			continue
		case k == "PATH" && extraPath != "":
			kv = "PATH=" + extraPath + string(os.PathListSeparator) + strings.TrimPrefix(kv, "PATH=")
		}
		e.env = append(e.env, kv)
	}
	e.env = append(e.env,
		"HOME="+e.home,
		"XDG_CONFIG_HOME="+e.xdgConfig,
		"TETHER_HOME="+e.tetherDir,
		"TETHER_TOKEN="+fakeToken, // set at install time: it must not reach the unit
	)
	return e
}

func (e *svcEnv) unitPath() string {
	return filepath.Join(e.xdgConfig, "systemd", "user", "tetherd.service")
}

// tetherd runs the binary and returns stdout, stderr and the exit code.
func (e *svcEnv) tetherd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, args...)
	cmd.Env = e.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("tetherd %v: %v", args, err)
	}
	if strings.Contains(stdout.String()+stderr.String(), "unknown command") {
		t.Fatalf("tetherd %v: main.go does not route this verb to serviceCmd:\n%s", args, stderr.String())
	}
	return stdout.String(), stderr.String(), code
}

// TestServiceInstallNoUserManager: install writes a unit systemd accepts,
// says how to finish when systemctl --user is unreachable, keeps the token
// out, and uninstall removes it.
func TestServiceInstallNoUserManager(t *testing.T) {
	bin := testbin.Build(t, "./cmd/svc")
	e := newSvcEnv(t, bin, "")

	stdout, stderr, code := e.tetherd(t, "install")
	if code != 0 {
		t.Fatalf("install exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	for _, want := range []string{
		"Wrote the systemd user unit " + e.unitPath(),
		"systemctl --user daemon-reload && systemctl --user enable --now tetherd",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("install output lacks %q:\n%s", want, stdout)
		}
	}
	if u, err := user.Current(); err == nil {
		_, lingering := os.Stat(filepath.Join("/var/lib/systemd/linger", u.Username))
		want := "loginctl enable-linger " + u.Username + "\n"
		if lingering != nil && !strings.Contains(stdout, want) {
			t.Errorf("install output lacks the linger command %q:\n%s", want, stdout)
		}
	}
	if _, err := os.Stat(filepath.Join(e.home, ".config", "systemd", "user", "tetherd.service")); err == nil {
		t.Error("unit written under $HOME/.config although XDG_CONFIG_HOME points elsewhere")
	}

	unit := readUnit(t, e.unitPath())
	for _, want := range []string{
		"ExecStart=" + systemdQuote(bin, false) + ` "run" "--service"` + "\n",
		`Environment="TETHER_HOME=` + strings.ReplaceAll(e.tetherDir, "%", "%%") + `"` + "\n",
		"Restart=always\n",
		"RestartSec=2\n",
		"WantedBy=default.target\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q:\n%s", want, unit)
		}
	}
	if strings.Contains(unit, fakeToken) || strings.Contains(unit, "TETHER_TOKEN=") {
		t.Errorf("the token (or its variable) reached the unit file:\n%s", unit)
	}
	verifyUnit(t, e)

	// start needs a user manager: the error must name the command.
	_, stderr, code = e.tetherd(t, "start")
	if code == 0 || !strings.Contains(stderr, "systemctl --user start tetherd.service") {
		t.Errorf("start without a user manager: exit %d, stderr %q; want a failure naming the systemctl command", code, stderr)
	}

	// Installing again updates in place (a new binary, a moved TETHER_HOME).
	stdout, _, code = e.tetherd(t, "install")
	if code != 0 || !strings.Contains(stdout, "Updated the systemd user unit") {
		t.Errorf("second install: exit %d, output %q", code, stdout)
	}

	stdout, stderr, code = e.tetherd(t, "uninstall")
	if code != 0 {
		t.Fatalf("uninstall exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if _, err := os.Stat(e.unitPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unit file still there after uninstall: %v", err)
	}
	stdout, _, code = e.tetherd(t, "uninstall")
	if code != 0 || !strings.Contains(stdout, "not installed") {
		t.Errorf("uninstall when not installed: exit %d, output %q", code, stdout)
	}
	_, stderr, code = e.tetherd(t, "stop")
	if code == 0 || !strings.Contains(stderr, "not installed") {
		t.Errorf("stop when not installed: exit %d, stderr %q", code, stderr)
	}
}

// TestServiceInstallOddPath: a binary path with a space, '%' and '$' must
// reach ExecStart intact. systemd-analyze verify checks that the ExecStart
// program exists and is executable, so a quoting slip fails it. A path with
// a quote, which systemd refuses however escaped, is refused by install.
func TestServiceInstallOddPath(t *testing.T) {
	built := testbin.Build(t, "./cmd/svc")
	dir := filepath.Join(t.TempDir(), `bin dir %n $PATH`)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "tetherd")
	copyFile(t, built, bin)
	e := newSvcEnv(t, bin, "")
	if _, stderr, code := e.tetherd(t, "install"); code != 0 {
		t.Fatalf("install exit %d: %s", code, stderr)
	}
	wantExec := `ExecStart="` + strings.ReplaceAll(bin, "%", "%%") + `" "run" "--service"` + "\n"
	if unit := readUnit(t, e.unitPath()); !strings.Contains(unit, wantExec) {
		t.Errorf("unit lacks %q:\n%s", wantExec, unit)
	}
	verifyUnit(t, e)

	quoted := filepath.Join(t.TempDir(), `it's here`)
	if err := os.MkdirAll(quoted, 0o755); err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(quoted, "tetherd")
	copyFile(t, built, bin)
	e = newSvcEnv(t, bin, "")
	_, stderr, code := e.tetherd(t, "install")
	if code == 0 || !strings.Contains(stderr, "systemd cannot run a program whose path has quotes") {
		t.Errorf("install from %s: exit %d, stderr %q; want a refusal", bin, code, stderr)
	}
	if _, err := os.Stat(e.unitPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a unit was written for a path systemd refuses: %v", err)
	}
}

// TestServiceFakeSystemctl drives install, status, stop and uninstall
// against a FAKE systemctl (no user manager can run here, see above).
func TestServiceFakeSystemctl(t *testing.T) {
	bin := testbin.Build(t, "./cmd/svc")
	fakeDir := t.TempDir()
	calls := filepath.Join(fakeDir, "calls")
	state := filepath.Join(fakeDir, "state")
	script := "#!/bin/sh\n" +
		"echo \"$*\" >> '" + calls + "'\n" +
		"case \"$*\" in\n" +
		"  *is-active*) s=$(cat '" + state + "'); [ -n \"$s\" ] && echo \"$s\"; [ \"$s\" = active ] && exit 0;" +
		" [ -z \"$s\" ] && echo 'Failed to connect to bus: No medium found' >&2; exit 3 ;;\n" +
		"  *disable*) [ -e '" + fakeDir + "/fail-disable' ] && { echo 'Failed to connect to bus' >&2; exit 1; } ;;\n" +
		"esac\nexit 0\n"
	if err := os.WriteFile(filepath.Join(fakeDir, "systemctl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	e := newSvcEnv(t, bin, fakeDir)

	stdout, stderr, code := e.tetherd(t, "install")
	if code != 0 {
		t.Fatalf("install exit %d: %s %s", code, stdout, stderr)
	}
	wantCalls(t, calls, "--user daemon-reload", "--user enable tetherd.service", "--user restart tetherd.service")
	if !strings.Contains(stdout, "Enabled and started tetherd.service") {
		t.Errorf("install output: %q", stdout)
	}

	// serviceStatus runs in this test process, with the same environment.
	for _, kv := range e.env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	for fake, want := range map[string]string{
		"active": serviceRunning, "activating": serviceRunning, "inactive": serviceStopped, "failed": serviceFailed,
	} {
		if err := os.WriteFile(state, []byte(fake), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := serviceStatus(); got != want || err != nil {
			t.Errorf("systemctl says %q: serviceStatus = %q, %v; want %q", fake, got, err, want)
		}
	}
	os.WriteFile(state, nil, 0o644) // no bus: state unknown, and an error saying why
	if got, err := serviceStatus(); got != serviceUnknown || err == nil || !strings.Contains(err.Error(), "No medium found") {
		t.Errorf("no user bus: serviceStatus = %q, %v", got, err)
	}

	os.Truncate(calls, 0)
	if _, stderr, code := e.tetherd(t, "stop"); code != 0 {
		t.Fatalf("stop exit %d: %s", code, stderr)
	}
	wantCalls(t, calls, "--user stop tetherd.service")

	// Uninstall when disable fails (the bus went away): the file and the
	// enable link still go.
	link := filepath.Join(e.xdgConfig, "systemd", "user", "default.target.wants", "tetherd.service")
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(e.unitPath(), link); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fakeDir, "fail-disable"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Truncate(calls, 0)
	if stdout, stderr, code := e.tetherd(t, "uninstall"); code != 0 {
		t.Fatalf("uninstall exit %d: %s %s", code, stdout, stderr)
	}
	wantCalls(t, calls, "--user disable --now tetherd.service", "--user daemon-reload")
	for _, p := range []string{e.unitPath(), link} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after uninstall", p)
		}
	}
	if got, err := serviceStatus(); got != serviceNotInstalled || err != nil {
		t.Errorf("after uninstall: serviceStatus = %q, %v", got, err)
	}
}

// TestServiceInstallTokenFile: --token-file puts the file's path, never
// its content, in the unit, and a file others can read is refused at
// install rather than in the service's restart loop.
func TestServiceInstallTokenFile(t *testing.T) {
	bin := testbin.Build(t, "./cmd/svc")
	e := newSvcEnv(t, bin, "")
	tok := filepath.Join(t.TempDir(), "bridge token")
	if err := os.WriteFile(tok, []byte(fakeToken+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tok, 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := e.tetherd(t, "install", "--token-file", tok)
	if code == 0 || !strings.Contains(stderr, "chmod 600") {
		t.Errorf("install with a 0644 token file: exit %d, stderr %q; want a refusal", code, stderr)
	}
	if strings.Contains(stderr, fakeToken) {
		t.Errorf("the token leaked into the error: %q", stderr)
	}
	if _, err := os.Stat(e.unitPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a unit was written despite the refused token file")
	}

	if err := os.Chmod(tok, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := e.tetherd(t, "install", "--token-file", tok); code != 0 {
		t.Fatalf("install --token-file: exit %d: %s", code, stderr)
	}
	unit := readUnit(t, e.unitPath())
	if want := `Environment="TETHER_TOKEN_FILE=` + tok + `"` + "\n"; !strings.Contains(unit, want) {
		t.Errorf("unit lacks %q:\n%s", want, unit)
	}
	if strings.Contains(unit, fakeToken) {
		t.Errorf("the token reached the unit file:\n%s", unit)
	}
	verifyUnit(t, e)
}

// TestServiceUnitQuoting pins the escaping rules systemd-analyze cannot
// check (it does not parse Environment= values).
func TestServiceUnitQuoting(t *testing.T) {
	cases := []struct {
		in   string
		exec bool
		want string
	}{
		{`/opt/tetherd`, false, `"/opt/tetherd"`},
		{`/a b/"x"\y`, false, `"/a b/\"x\"\\y"`},
		{`/bin/100%$HOME`, false, `"/bin/100%%$HOME"`},                     // program path: no $ expansion
		{`--arg=100%$HOME`, true, `"--arg=100%%$$HOME"`},                   // ExecStart argument
		{`TETHER_HOME=/h/100%$HOME`, false, `"TETHER_HOME=/h/100%%$HOME"`}, // Environment=
	}
	for _, c := range cases {
		if got := systemdQuote(c.in, c.exec); got != c.want {
			t.Errorf("systemdQuote(%q, %v) = %s, want %s", c.in, c.exec, got, c.want)
		}
	}
}

// verifyUnit runs the real `systemd-analyze --user verify`. It needs no
// running user manager, only XDG_RUNTIME_DIR to exist (it computes the
// manager's runtime paths from it; without it: "Failed to lookup
// RuntimeDirectory path"). It exits 0 even for unknown keys or bad values,
// printing warnings instead, so any output is a failure too.
func verifyUnit(t *testing.T, e *svcEnv) {
	t.Helper()
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("systemd-analyze is needed to check the unit file: %v", err)
		}
		t.Skipf("systemd-analyze not installed (apt install systemd); unit not verified: %v", err)
	}
	runtimeDir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sa, "--user", "verify", e.unitPath())
	cmd.Env = append(append([]string{}, e.env...), "XDG_RUNTIME_DIR="+runtimeDir)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze --user verify: %v\n%s\nunit:\n%s", err, out, readUnit(t, e.unitPath()))
	}
}

func readUnit(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("unit file: %v", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm() != 0o644 {
		t.Errorf("unit file mode %v, want 0644", fi.Mode().Perm())
	}
	return string(b)
}

func wantCalls(t *testing.T, path string, want ...string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(string(b)), "\n")
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("systemctl calls:\n  got  %q\n  want %q", got, want)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

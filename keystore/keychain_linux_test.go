//go:build linux

package keystore

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/tether-dev/tether/internal/testbin"
	"github.com/zalando/go-keyring"
)

// These tests use the real Secret Service (gnome-keyring) over a private DBus
// session bus. go-keyring connects to the session bus once per process, so
// every scenario runs in a child process: this test binary again, with
// -test.run naming one test and KEYSTORE_TEST_MODE telling it what to expect.

const modeEnv = "KEYSTORE_TEST_MODE" // set in the children this file starts

// secretsOwned reports whether org.freedesktop.secrets has an owner on the
// session bus, without starting one by DBus activation (a started one would
// be locked).
func secretsOwned() error {
	addr := os.Getenv("DBUS_SESSION_BUS_ADDRESS")
	if addr == "" {
		return errors.New("DBUS_SESSION_BUS_ADDRESS is not set")
	}
	conn, err := dbus.Connect(addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	var has bool
	if err := conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, "org.freedesktop.secrets").Store(&has); err != nil {
		return err
	}
	if !has {
		return errors.New("org.freedesktop.secrets has no owner on the session bus")
	}
	return nil
}

// runChild runs this test binary's test name as a child, optionally wrapped
// (e.g. in dbus-run-session), and fails unless the child's test passed.
func runChild(t *testing.T, name, mode string, env []string, wrap ...string) string {
	t.Helper()
	args := append(wrap, os.Args[0], "-test.run=^"+name+"$", "-test.v", "-test.count=1", "-test.timeout=2m")
	cmd := exec.CommandContext(t.Context(), args[0], args[1:]...)
	// Own process group, so a timeout kills the bus, the keyring and the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = append(withoutEnv(os.Environ(), "DBUS_SESSION_BUS_ADDRESS"), append(env, modeEnv+"="+mode,
		// A -race binary sleeps 1 s at exit by default; the children need not.
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))...)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+name) {
		t.Fatalf("child %s (%s): %v\n%s", name, mode, err, out)
	}
	return string(out)
}

func withoutEnv(env []string, key string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// freshXDG gives the keyring daemon its own empty data and runtime folders.
func freshXDG(t *testing.T) []string {
	dir := t.TempDir()
	data, run := filepath.Join(dir, "data"), filepath.Join(dir, "run")
	for _, d := range []string{data, run} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return []string{"XDG_DATA_HOME=" + data, "XDG_RUNTIME_DIR=" + run}
}

// keyringSession is the shell that gives the child an unlocked gnome-keyring
// (docs/desktop-testing.md §2): a non-empty password on stdin, --foreground
// so it owns the name before we go on (gdbus wait), killed by PID at the end.
const keyringSession = testbin.KeyringStart + `"$@"; rc=$?
kill $kpid 2>/dev/null; wait $kpid 2>/dev/null
exit $rc`

// TestSecretService stores, reads and deletes tokens in a real gnome-keyring.
// With a session bus whose Secret Service is up (CI may provide one), it uses
// that; otherwise it runs itself again inside a private dbus-run-session.
func TestSecretService(t *testing.T) {
	if err := secretsOwned(); err != nil {
		if os.Getenv(modeEnv) != "" {
			t.Fatalf("inside the private session, the Secret Service is not reachable: %v", err)
		}
		testbin.NeedTools(t, "dbus-run-session", "gnome-keyring-daemon", "gdbus", "secret-tool")
		out := runChild(t, "TestSecretService", "keyring", freshXDG(t),
			"dbus-run-session", "--", "sh", "-c", keyringSession, "sh")
		t.Logf("ran in a private session bus:\n%s", out)
		return
	}
	testbin.NeedTools(t, "secret-tool")

	// A service name of our own, so a developer's real keyring is left alone.
	k := Keychain{Service: fmt.Sprintf("tether-test-%d-%d", os.Getpid(), time.Now().UnixNano())}
	const relayA, relayB, relayC = "https://relay-a.example.com", "https://relay-b.example.com", "https://relay-c.example.com"
	t.Cleanup(func() {
		for _, a := range []string{relayA, relayB, relayC} {
			_ = k.Delete(a)
		}
	})
	lookup := func(account string) (string, error) { // an independent client: libsecret
		out, err := exec.Command("secret-tool", "lookup", "service", k.Service, "username", account).Output()
		return string(out), err
	}

	if _, err := k.Get(relayA); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get before Set: %v", err)
	}
	tokA, tokB := Token("eyJ.token-for-relay-a.sigA"), Token("eyJ.token-for-relay-b.sigB")
	if err := k.Set(relayA, tokA); err != nil {
		t.Fatal(err)
	}
	if err := k.Set(relayB, tokB); err != nil {
		t.Fatal(err)
	}
	for acct, want := range map[string]Token{relayA: tokA, relayB: tokB} {
		if got, err := k.Get(acct); err != nil || got != want {
			t.Fatalf("Get(%s) = %v, %v", acct, got, err)
		}
		if got, err := lookup(acct); err != nil || got != want.Reveal() {
			t.Fatalf("secret-tool lookup %s = %q, %v", acct, got, err)
		}
	}

	// Set again replaces (go-keyring asks CreateItem to replace).
	tokA2 := Token("eyJ.rotated-token-for-relay-a.sig")
	if err := k.Set(relayA, tokA2); err != nil {
		t.Fatal(err)
	}
	if got, _ := k.Get(relayA); got != tokA2 {
		t.Fatalf("after rotation Get = %v", got)
	}

	// A 6,000-byte token is split into entries of at most entryMax bytes.
	long := longToken(6000, "long")
	if err := k.Set(relayC, long); err != nil {
		t.Fatal(err)
	}
	if got, err := k.Get(relayC); err != nil || got != long {
		t.Fatalf("long token: %d bytes, %v", len(got), err)
	}
	head, _ := lookup(relayC)
	part1, err := keyring.Get(k.Service, relayC+"#1")
	if !strings.HasPrefix(head, chunkPrefix+"3:") || err != nil || len(part1) > entryMax || len(part1) < entryMax-3 {
		t.Fatalf("stored layout: head %q, part 1 %d bytes, %v", head, len(part1), err)
	}

	// Delete removes one relay's entries and leaves the other's.
	if err := k.Delete(relayA); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Get(relayA); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
	if err := k.Delete(relayA); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Delete: %v", err)
	}
	if got, err := k.Get(relayB); err != nil || got != tokB {
		t.Fatalf("relay B after deleting A: %v, %v", got, err)
	}
	if err := k.Delete(relayC); err != nil {
		t.Fatal(err)
	}
	for _, acct := range []string{relayC, relayC + "#1", relayC + "#3"} {
		if _, err := keyring.Get(k.Service, acct); !errors.Is(err, keyring.ErrNotFound) {
			t.Fatalf("%s left after Delete: %v", acct, err)
		}
	}
}

// TestKeychainUnavailable: each way the Secret Service can be out of reach
// gives ErrUnavailable with its reason and the headless advice, and the
// Resolver lists it. Each case is a child with its own session bus setting.
func TestKeychainUnavailable(t *testing.T) {
	if mode := os.Getenv(modeEnv); mode != "" {
		if mode == "keyring" {
			return // started for TestSecretService's pattern; nothing to do here
		}
		checkUnavailable(t, mode)
		return
	}
	t.Run("no bus", func(t *testing.T) {
		// An address whose socket does not exist: godbus fails to dial.
		addr := "unix:path=" + filepath.Join(t.TempDir(), "no-bus")
		runChild(t, "TestKeychainUnavailable", "the DBus session bus is gone", []string{"DBUS_SESSION_BUS_ADDRESS=" + addr})
	})
	t.Run("no secret service", func(t *testing.T) {
		testbin.NeedTools(t, "dbus-daemon")
		addr := startBareBus(t)
		runChild(t, "TestKeychainUnavailable", "no Secret Service (org.freedesktop.secrets) runs on the session bus",
			[]string{"DBUS_SESSION_BUS_ADDRESS=" + addr})
	})
	t.Run("locked", func(t *testing.T) {
		// dbus-run-session with gnome-keyring installed but not started: the
		// first call DBus-activates a daemon that has no password, so the
		// login collection stays locked.
		testbin.NeedTools(t, "dbus-run-session", "gnome-keyring-daemon")
		runChild(t, "TestKeychainUnavailable", "the keyring is locked", freshXDG(t), "dbus-run-session", "--")
	})
}

func checkUnavailable(t *testing.T, reason string) {
	k := Keychain{Service: "tether-test-unavailable"}
	_, getErr := k.Get("https://relay.example.com")
	for op, err := range map[string]error{
		"read":   getErr,
		"write":  k.Set("https://relay.example.com", "eyJ.secret-must-not-show.sig"),
		"delete": k.Delete("https://relay.example.com"),
	} {
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("%s: err = %v, want ErrUnavailable", op, err)
		}
		msg := err.Error()
		for _, w := range []string{"keychain " + op + ": " + reason, "no OS keychain is reachable",
			"--token-file FILE", "TETHER_TOKEN_FILE=FILE", "TETHER_TOKEN=", "LoadCredential=tether-token:FILE", "chmod 600"} {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: message lacks %q:\n%s", op, w, msg)
			}
		}
		if strings.Contains(msg, "secret-must-not-show") {
			t.Errorf("%s: message holds the token: %s", op, msg)
		}
	}
	_, _, err := Resolver{Getenv: func(string) string { return "" }, Keychain: k, Account: "https://relay.example.com"}.Resolve()
	if !errors.Is(err, ErrNoToken) || !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "4. OS keychain: keychain read: "+reason) {
		t.Fatalf("Resolve: %v", err)
	}
	t.Logf("as users see it:\n%v", err)
}

// startBareBus runs a session bus that has no service directories, so no
// Secret Service exists on it and none can be activated.
func startBareBus(t *testing.T) string {
	dir := t.TempDir()
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, []byte(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir=`+dir+`</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("dbus-daemon", "--config-file="+conf, "--nofork", "--nopidfile", "--print-address=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	buf := make([]byte, 512)
	n, err := out.Read(buf) // the address line; dbus-daemon prints it once listening
	if err != nil {
		t.Fatalf("dbus-daemon address: %v", err)
	}
	return strings.TrimSpace(string(buf[:n]))
}

//go:build unix

package testbin

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// PrivateKeyring starts a private DBus session with an unlocked
// gnome-keyring on it (the real Secret Service) for the rest of the test, and
// returns the session's bus address and the XDG variables that go with it. A
// developer's own keyring is never touched. It needs the tools of
// AptDesktop (and fails under CI without them, see NeedTools).
func PrivateKeyring(t *testing.T) (bus string, xdg []string) {
	t.Helper()
	NeedTools(t, "dbus-run-session", "gnome-keyring-daemon", "gdbus")
	dir := t.TempDir()
	data, run := filepath.Join(dir, "data"), filepath.Join(dir, "run")
	for _, d := range []string{data, run} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	xdg = []string{"XDG_DATA_HOME=" + data, "XDG_RUNTIME_DIR=" + run}
	// The session lives as long as the shell reads its stdin.
	script := KeyringStart + `echo "BUS=$DBUS_SESSION_BUS_ADDRESS"
cat >/dev/null
kill $kpid 2>/dev/null; wait $kpid 2>/dev/null`
	cmd := exec.Command("dbus-run-session", "--", "sh", "-c", script)
	cmd.Env = append(os.Environ(), xdg...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if addr, ok := strings.CutPrefix(sc.Text(), "BUS="); ok {
			return addr, xdg
		}
	}
	t.Fatalf("the private keyring session did not start: %v", sc.Err())
	return "", nil
}

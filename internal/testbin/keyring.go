package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// AptDesktop installs what the real Secret Service and tray tests need on
// Debian (docs/desktop-testing.md).
const AptDesktop = "apt-get update && apt-get install -y --no-install-recommends dbus-daemon libglib2.0-bin gnome-keyring libsecret-tools"

// KeyringStart is the shell that starts an unlocked gnome-keyring on the
// session bus it runs in (docs/desktop-testing.md §2): a non-empty password on
// stdin, --foreground so it owns the name before we go on (gdbus wait). It
// leaves the daemon's PID in $kpid; the caller kills it when done. It needs
// XDG_RUNTIME_DIR (and a private XDG_DATA_HOME) set.
const KeyringStart = `printf '%s' tether-test-password | gnome-keyring-daemon --foreground --unlock --components=secrets >"$XDG_RUNTIME_DIR/keyring.log" 2>&1 &
kpid=$!
if ! gdbus wait --session --timeout 10 org.freedesktop.secrets; then
  echo "gnome-keyring-daemon did not own org.freedesktop.secrets:" >&2; cat "$XDG_RUNTIME_DIR/keyring.log" >&2
  kill $kpid 2>/dev/null; exit 97
fi
`

// NeedTools fails under CI (which must install them) and skips elsewhere.
func NeedTools(t testing.TB, names ...string) {
	t.Helper()
	var missing []string
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("this test needs %s; install them with: %s", strings.Join(missing, ", "), AptDesktop)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

//go:build (dragonfly && cgo) || (freebsd && cgo) || linux || netbsd || openbsd

package keystore

import (
	"errors"
	"net"
	"strings"

	"github.com/godbus/dbus/v5"
)

// platformUnreachable classifies the Secret Service failures of go-keyring
// (table in docs/desktop-testing.md §2): no bus, no provider, a locked keyring.
func platformUnreachable(err error) (string, bool) {
	var oe *net.OpError
	if errors.As(err, &oe) {
		return "the DBus session bus is gone", true
	}
	var de dbus.Error // a value type in godbus, not a pointer
	if errors.As(err, &de) {
		switch de.Name {
		case "org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner":
			return "no Secret Service (org.freedesktop.secrets) runs on the session bus", true
		}
		return "the Secret Service refused (" + de.Name + ")", true
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "failed to unlock"):
		// go-keyring's plain error for a keyring that is locked (started by
		// DBus activation, or created with an empty password).
		return "the keyring is locked", true
	case strings.HasPrefix(msg, "dbus:"):
		return "no DBus session bus", true
	}
	return "", false
}

package keystore

import (
	"errors"
	"fmt"
	"os/exec"

	"github.com/zalando/go-keyring"
)

// DefaultService is the keychain service name Tether's entries are filed under.
const DefaultService = "tether"

// Keychain is a Store in the OS keychain through go-keyring: the Keychain on
// macOS, Credential Manager on Windows, the Secret Service on Linux and BSD.
// Tokens longer than one entry allows are split across "<account>#1", … and
// joined again on Get (see chunk.go). Errors are ErrNotFound, ErrTooBig, and
// ErrUnavailable (wrapped with the cause) when no keychain can be used.
//
// On Linux, go-keyring talks to the session bus of DBUS_SESSION_BUS_ADDRESS,
// connecting once per process: set the variable before the first call.
type Keychain struct {
	Service string // "" means DefaultService
}

func (k Keychain) entries() chunked {
	s := k.Service
	if s == "" {
		s = DefaultService
	}
	return chunked{raw: rawKeychain{service: s}, max: entryMax}
}

func (k Keychain) Get(account string) (Token, error) { return k.entries().Get(account) }
func (k Keychain) Set(account string, t Token) error { return k.entries().Set(account, t) }
func (k Keychain) Delete(account string) error       { return k.entries().Delete(account) }

// rawKeychain is one go-keyring entry per account, with our errors.
type rawKeychain struct{ service string }

func (r rawKeychain) Get(account string) (Token, error) {
	v, err := keyring.Get(r.service, account)
	return Token(v), mapKeyringErr("read", err)
}

func (r rawKeychain) Set(account string, t Token) error {
	return mapKeyringErr("write", keyring.Set(r.service, account, t.Reveal()))
}

func (r rawKeychain) Delete(account string) error {
	return mapKeyringErr("delete", keyring.Delete(r.service, account))
}

// mapKeyringErr turns go-keyring's errors into ours. The causes never hold
// the secret: go-keyring's errors come from DBus, wincred or `security`.
func mapKeyringErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, keyring.ErrNotFound):
		return ErrNotFound
	case errors.Is(err, keyring.ErrSetDataTooBig):
		return fmt.Errorf("keychain %s: %w", op, ErrTooBig)
	}
	if reason, ok := unreachable(err); ok {
		return fmt.Errorf("keychain %s: %s (%w): %w", op, reason, err, ErrUnavailable)
	}
	return fmt.Errorf("keychain %s: %w", op, err)
}

// unreachable says whether err means no keychain can be used at all, and why
// in words a user understands. The platform files add their own cases.
func unreachable(err error) (string, bool) {
	if errors.Is(err, keyring.ErrUnsupportedPlatform) {
		return "this OS has no keychain go-keyring supports", true
	}
	var ee *exec.Error
	if errors.As(err, &ee) {
		// Linux without a session bus: godbus tries `dbus-launch`; macOS: `security`.
		return fmt.Sprintf("no session to reach it (%s is not installed)", ee.Name), true
	}
	return platformUnreachable(err)
}

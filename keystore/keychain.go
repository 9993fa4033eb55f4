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

func (k Keychain) Get(account string) (Token, error) {
	t, err := k.entries().Get(account)
	return t, withOp("read", err)
}

func (k Keychain) Set(account string, t Token) error {
	return withOp("write", k.entries().Set(account, t))
}

func (k Keychain) Delete(account string) error {
	return withOp("delete", k.entries().Delete(account))
}

// withOp names the user's operation, not the entry call that failed (a Set
// starts by reading the old entry to clean up its parts).
func withOp(op string, err error) error {
	if err == nil || err == ErrNotFound {
		return err
	}
	return fmt.Errorf("keychain %s: %w", op, err)
}

// rawKeychain is one go-keyring entry per account, with our errors.
type rawKeychain struct{ service string }

func (r rawKeychain) Get(account string) (Token, error) {
	v, err := keyring.Get(r.service, account)
	return Token(v), mapKeyringErr(err)
}

func (r rawKeychain) Set(account string, t Token) error {
	return mapKeyringErr(keyring.Set(r.service, account, t.Reveal()))
}

func (r rawKeychain) Delete(account string) error {
	return mapKeyringErr(keyring.Delete(r.service, account))
}

// mapKeyringErr turns go-keyring's errors into ours. The causes never hold
// the secret: go-keyring's errors come from DBus, wincred or `security`.
func mapKeyringErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, keyring.ErrNotFound):
		return ErrNotFound
	case errors.Is(err, keyring.ErrSetDataTooBig):
		return ErrTooBig
	}
	if reason, ok := unreachable(err); ok {
		return fmt.Errorf("%s (%w): %w", reason, err, ErrUnavailable)
	}
	return err
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

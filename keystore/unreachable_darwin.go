//go:build darwin

package keystore

import (
	"errors"
	"os/exec"
)

// platformUnreachable: go-keyring maps "item not found" itself; any other
// failure of /usr/bin/security (locked keychain, no GUI session over ssh,
// access denied) means the keychain cannot be used from here.
func platformUnreachable(err error) (string, bool) {
	var xe *exec.ExitError
	if errors.As(err, &xe) {
		return "the login keychain refused (locked, or no user session)", true
	}
	return "", false
}

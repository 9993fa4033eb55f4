//go:build unix

package main

import (
	"fmt"
	"os"
)

// checkSecretMode refuses a secret file that group or others can read or
// write: anyone who reads it can sign tokens for every dev.
func checkSecretMode(path string) error {
	return checkPrivateMode(path, "secret file", "others could sign tokens with it")
}

// checkPrivateMode refuses a file (what) that group or others can read or
// write, saying why that matters and how to fix it.
func checkPrivateMode(path, what, why string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s %s has mode %04o: %s; fix: chmod 600 %s", what, path, perm, why, path)
	}
	return nil
}

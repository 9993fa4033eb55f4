//go:build unix

package main

import (
	"fmt"
	"os"
)

// checkSecretMode refuses a secret file that group or others can read or
// write: anyone who reads it can sign tokens for every dev.
func checkSecretMode(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("read secret: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("secret file %s has mode %04o: others could sign tokens with it; fix: chmod 600 %s", path, perm, path)
	}
	return nil
}

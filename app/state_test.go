package app

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/tether-dev/tether/keystore"
)

// downKeychain is a keychain that cannot be reached, as on a headless box.
type downKeychain struct{}

var errDown = fmt.Errorf("no Secret Service: %w", keystore.ErrUnavailable)

func (downKeychain) Get(string) (keystore.Token, error) { return "", errDown }
func (downKeychain) Set(string, keystore.Token) error   { return errDown }
func (downKeychain) Delete(string) error                { return errDown }

// TestTokenStatus classifies the real resolver's errors, not strings made
// up for the test.
func TestTokenStatus(t *testing.T) {
	t.Parallel()
	noEnv := func(string) string { return "" }
	tests := []struct {
		name string
		r    keystore.Resolver
		want TokenStatus
	}{
		{"present", keystore.Resolver{Getenv: func(k string) string {
			if k == keystore.EnvToken {
				return "tok"
			}
			return ""
		}}, TokenPresent},
		{"nothing anywhere", keystore.Resolver{Getenv: noEnv, Keychain: &keystore.Memory{}, Account: "a"}, TokenMissing},
		{"keychain down", keystore.Resolver{Getenv: noEnv, Keychain: downKeychain{}, Account: "a"}, TokenKeychainUnavailable},
		{"token file gone", keystore.Resolver{Getenv: noEnv, TokenFile: filepath.Join(t.TempDir(), "none")}, TokenUnreadable},
	}
	for _, tt := range tests {
		_, _, err := tt.r.Resolve()
		if got := tokenStatus(err); got != tt.want {
			t.Errorf("%s: tokenStatus(%v) = %q, want %q", tt.name, err, got, tt.want)
		}
	}
}

//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDBFileMode: a --db-file others can read is refused, as the secret
// file is: it may hold the database password.
func TestDBFileMode(t *testing.T) {
	secret := writeTestSecret(t)
	locFile := filepath.Join(t.TempDir(), "db-location")
	if err := os.WriteFile(locFile, []byte("sqlite:"+filepath.Join(t.TempDir(), "r.db")), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb strings.Builder
	err := run(t.Context(), []string{"token", "list", "--secret-file", secret, "--db-file", locFile}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "chmod 600") || !strings.Contains(err.Error(), "--db-file") {
		t.Fatalf("--db-file of mode 0644: %v", err)
	}
}

package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tether-dev/tether/relay/store"
)

func writeTestSecret(t *testing.T) string {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte(testSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return secret
}

// issue runs `token` with args and returns the token's jti.
func issue(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb strings.Builder
	if err := run(t.Context(), append([]string{"token", "--dev", "alice", "--scope", "bridge"}, args...), &out, &errb); err != nil {
		t.Fatalf("token: %v (%s)", err, errb.String())
	}
	return strings.TrimPrefix(mustClaims(t, strings.TrimSpace(out.String())).ID, "j:")
}

func hasToken(t *testing.T, loc, jti string) bool {
	t.Helper()
	st, err := store.Open(t.Context(), loc)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = st.Token(t.Context(), jti)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// TestDBLocationSources: the database location may come from --db, from
// a --db-file or from $TETHER_RELAY_DB; --db and --db-file together are
// refused.
func TestDBLocationSources(t *testing.T) {
	secret := writeTestSecret(t)
	dir := t.TempDir()

	fromFile := "sqlite:" + filepath.Join(dir, "file.db")
	locFile := filepath.Join(dir, "db-location")
	if err := os.WriteFile(locFile, []byte(fromFile+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if jti := issue(t, "--secret-file", secret, "--db-file", locFile); !hasToken(t, fromFile, jti) {
		t.Fatal("--db-file: the token is not in the database the file names")
	}

	fromEnv := "sqlite:" + filepath.Join(dir, "env.db")
	t.Setenv(dbEnv, fromEnv)
	if jti := issue(t, "--secret-file", secret); !hasToken(t, fromEnv, jti) {
		t.Fatalf("$%s: the token is not in its database", dbEnv)
	}
	// A flag wins over the environment.
	if jti := issue(t, "--secret-file", secret, "--db-file", locFile); !hasToken(t, fromFile, jti) || hasToken(t, fromEnv, jti) {
		t.Fatal("--db-file did not win over the environment")
	}
	if _, err := os.Stat(secret + ".db"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the default database was made: %v", err)
	}

	var out, errb strings.Builder
	err := run(t.Context(), []string{"token", "list", "--secret-file", secret, "--db", fromFile, "--db-file", locFile}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "alternatives") {
		t.Fatalf("--db with --db-file: %v", err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := run(t.Context(), []string{"token", "list", "--secret-file", secret, "--db-file", empty}, &out, &errb); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("empty --db-file: %v", err)
	}
}

// TestDBPasswordWarning: a --db with a password in it is used, with a
// warning naming the alternatives; one without a password is not warned
// about.
func TestDBPasswordWarning(t *testing.T) {
	for loc, warn := range map[string]bool{
		"postgres://relay:hunter2@db.example/relay?sslmode=require": true,
		"postgresql://relay@db.example/relay?password=hunter2":      true,
		"postgres://relay@db.example/relay?sslmode=require":         false,
		"sqlite:/var/lib/tether-relay/relay.db":                     false,
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		d := registerDBFlags(fs)
		if err := fs.Parse([]string{"--db", loc}); err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		got, err := d.location(slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil || got != loc {
			t.Fatalf("%s: %q %v", loc, got, err)
		}
		warned := strings.Contains(logs.String(), "--db-file") && strings.Contains(logs.String(), dbEnv)
		if warned != warn || strings.Contains(logs.String(), "hunter2") {
			t.Fatalf("%s: warned %v, want %v: %s", loc, warned, warn, logs.String())
		}
	}
}

// TestBackup: backup copies an SQLite database to a new file that opens
// with its rows; it refuses an existing file, and a PostgreSQL location
// (pg_dump's job).
func TestBackup(t *testing.T) {
	secret := writeTestSecret(t)
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "relay.db")
	jti := issue(t, "--secret-file", secret, "--db", db)

	out := filepath.Join(dir, "backup.db")
	if err := run(t.Context(), []string{"backup", "--db", db, out}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && os.PathSeparator == '/' {
		t.Fatalf("backup mode %04o", perm)
	}
	if !hasToken(t, "sqlite:"+out, jti) {
		t.Fatal("the backup lacks the token")
	}
	err = run(t.Context(), []string{"backup", "--db", db, out}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("backup over an existing file: %v", err)
	}
	err = run(t.Context(), []string{"backup", "--db", "postgres://relay@db.example/relay", filepath.Join(dir, "pg.db")}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "pg_dump") {
		t.Fatalf("backup of postgres: %v", err)
	}
	err = run(t.Context(), []string{"backup", "--db", "sqlite:" + filepath.Join(dir, "none.db"), filepath.Join(dir, "none-backup.db")}, io.Discard, io.Discard)
	if err == nil {
		t.Fatal("backup of a database that does not exist succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "none.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("backup made an empty database: %v", err)
	}
}

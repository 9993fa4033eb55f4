// Package store is the relay's durable state: users, issued tokens and
// their revocations, device codes, OAuth clients and the audit trail.
//
// Two backends sit behind one API: SQLite embedded in the relay's process
// (modernc.org/sqlite, pure Go, so the relay stays a cgo-free static
// binary) for one relay, and PostgreSQL (jackc/pgx through database/sql)
// when several relays share state. Both are reached through database/sql
// with the same SQL; the few differences (placeholders, auto-increment
// ids, the migration lock) are handled in this file and in the per-dialect
// migrations.
//
// The store never holds a token, only its id (jti) and what it was issued
// for.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	_ "modernc.org/sqlite"             // registers "sqlite"
)

// Errors the API wraps; test with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
)

// Dialect names a backend.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Store is an open database. It is safe for concurrent use, also by
// several processes at once (the `token` command writes while `serve`
// runs): SQLite runs in WAL mode with a busy timeout, and PostgreSQL is a
// server.
type Store struct {
	db      *sql.DB
	dialect Dialect
}

// DefaultLocation is the --db value when none is given: an SQLite file
// beside the secret file.
func DefaultLocation(secretFile string) string { return "sqlite:" + secretFile + ".db" }

// busyTimeout is how long an SQLite writer waits for another process's
// write to finish before failing.
const busyTimeout = 10 * time.Second

// Open opens the database named by loc and applies any migration it
// lacks. loc is "sqlite:PATH" or a PostgreSQL URL
// ("postgres://user@host/db?sslmode=…", "postgresql://…").
func Open(ctx context.Context, loc string) (*Store, error) {
	s, err := open(loc)
	if err != nil {
		return nil, err
	}
	err = s.migrate(ctx)
	// Two relays opening a new SQLite file at once: switching it to WAL
	// takes an exclusive lock that SQLite does not wait for (the busy
	// handler is not called for it), so the loser sees SQLITE_BUSY at
	// once. Retry within the busy timeout; the winner is done quickly.
	deadline := time.Now().Add(busyTimeout)
	for s.dialect == SQLite && isBusy(err) && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
		if ctx.Err() != nil {
			break
		}
		err = s.migrate(ctx)
	}
	if err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

// isBusy reports whether err is SQLite's "database is locked" (SQLITE_BUSY).
func isBusy(err error) bool {
	return err != nil && strings.Contains(err.Error(), "SQLITE_BUSY")
}

func open(loc string) (*Store, error) {
	switch {
	case strings.HasPrefix(loc, "sqlite:"):
		path := strings.TrimPrefix(loc, "sqlite:")
		if path == "" || strings.ContainsAny(path, "?#") {
			return nil, fmt.Errorf("open store: sqlite path %q must be a plain file name", path)
		}
		// Created 0600 before the driver creates it with the umask's mode:
		// the file lists every token id and user.
		f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		f.Close()
		// Pragmas go in the DSN so every pooled connection gets them.
		// _txlock=immediate takes the write lock at BEGIN, so two writers
		// queue on the busy timeout instead of failing to upgrade a read lock.
		dsn := "file:" + path + "?_txlock=immediate" +
			"&_pragma=busy_timeout(" + strconv.Itoa(int(busyTimeout.Milliseconds())) + ")" +
			"&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		return &Store{db: db, dialect: SQLite}, nil
	case strings.HasPrefix(loc, "postgres://"), strings.HasPrefix(loc, "postgresql://"):
		db, err := sql.Open("pgx", loc)
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		return &Store{db: db, dialect: Postgres}, nil
	default:
		return nil, fmt.Errorf("open store: %q is neither sqlite:PATH nor postgres://…", redact(loc))
	}
}

// redact drops what may be a password from a location before it goes
// into an error.
func redact(loc string) string {
	if i := strings.Index(loc, "@"); i >= 0 {
		if j := strings.Index(loc, "://"); j >= 0 && j < i {
			return loc[:j+3] + "…" + loc[i:]
		}
	}
	return loc
}

// Dialect reports the backend.
func (s *Store) Dialect() Dialect { return s.dialect }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// q rewrites the ? placeholders of a query to $1, $2… for PostgreSQL. The
// queries in this package hold no ? anywhere else.
func (s *Store) q(query string) string {
	if s.dialect != Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return s.db.ExecContext(ctx, s.q(query), args...)
}

// Times are stored as unix milliseconds; 0 / NULL is the zero time.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func nullMS(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

func fromNullMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMS(v.Int64)
}

// isUnique reports whether err is a unique or primary-key violation, in
// either dialect (matched by message to keep the drivers' error types out
// of this package's code paths).
func isUnique(err error) bool {
	if err == nil {
		return false
	}
	m := err.Error()
	return strings.Contains(m, "UNIQUE constraint failed") || strings.Contains(m, "SQLSTATE 23505")
}

// BackupSQLite writes a consistent copy of an SQLite database to path,
// which must not exist (VACUUM INTO refuses to overwrite). Writers may
// go on meanwhile: the copy is one read transaction's view.
func (s *Store) BackupSQLite(ctx context.Context, path string) error {
	if s.dialect != SQLite {
		return errors.New("backup: not an SQLite database (use pg_dump)")
	}
	if _, err := s.db.ExecContext(ctx, "VACUUM INTO ?", path); err != nil {
		return fmt.Errorf("backup to %s: %w", path, err)
	}
	// The copy lists every token id and user, like the database.
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("backup to %s: %w", path, err)
	}
	return nil
}

// queryAll runs a query and scans every row with scan; errors name what
// was listed.
func queryAll[T any](ctx context.Context, s *Store, what, query string, args []any, scan func(*sql.Rows) (T, error)) ([]T, error) {
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// lookupErr names what was looked up in err and turns "no such row" into
// ErrNotFound, so callers test one sentinel whatever the backend.
func lookupErr(what string, err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	return fmt.Errorf("%s: %w", what, err)
}

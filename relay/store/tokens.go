package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind is what a token is for.
type Kind string

const (
	KindBridge Kind = "bridge" // holds a dev's slot (tetherd, tag-mcp-bridge)
	KindClient Kind = "client" // calls a dev's servers (MCP clients)
)

// Token is the record of one issued token (never the token itself).
type Token struct {
	JTI      string
	Kind     Kind
	Dev      string
	Scopes   []string
	Audience string
	Created  time.Time
	Expires  time.Time
	LastUsed time.Time // zero: never seen by a relay since it was issued
	Revoked  time.Time // zero: not revoked
	Name     string    // what the user called it on the web page; "" from the CLI
}

// Revocation is one revoked token, numbered in the order revoked.
type Revocation struct {
	ID  int64
	JTI string
	At  time.Time
	// Expires is when the revoked token would have expired anyway (zero:
	// never): past it, a relay need not remember the revocation.
	Expires time.Time
}

// AddToken records an issued token. A jti already recorded is ErrExists.
func (s *Store) AddToken(ctx context.Context, t Token) error {
	if t.JTI == "" {
		return errors.New("add token: empty jti")
	}
	if t.Kind != KindBridge && t.Kind != KindClient {
		return fmt.Errorf("add token: kind %q is not %q or %q", t.Kind, KindBridge, KindClient)
	}
	_, err := s.exec(ctx, `INSERT INTO tokens (jti, kind, dev, scopes, aud, created_at, expires_at, name)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		t.JTI, string(t.Kind), t.Dev, strings.Join(t.Scopes, " "), t.Audience, ms(t.Created), ms(t.Expires), t.Name)
	if isUnique(err) {
		return fmt.Errorf("add token %s: %w", t.JTI, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("add token: %w", err)
	}
	return nil
}

const tokenColumns = "jti, kind, dev, scopes, aud, created_at, expires_at, last_used, revoked_at, name"

func scanToken(sc interface{ Scan(...any) error }) (Token, error) {
	var t Token
	var kind, scopes string
	var created, expires int64
	var used, revoked sql.NullInt64
	if err := sc.Scan(&t.JTI, &kind, &t.Dev, &scopes, &t.Audience, &created, &expires, &used, &revoked, &t.Name); err != nil {
		return Token{}, err
	}
	t.Kind, t.Scopes = Kind(kind), strings.Fields(scopes)
	t.Created, t.Expires = fromMS(created), fromMS(expires)
	t.LastUsed, t.Revoked = fromNullMS(used), fromNullMS(revoked)
	return t, nil
}

// Token returns the record of jti, or ErrNotFound.
func (s *Store) Token(ctx context.Context, jti string) (Token, error) {
	t, err := scanToken(s.db.QueryRowContext(ctx, s.q("SELECT "+tokenColumns+" FROM tokens WHERE jti = ?"), jti))
	if err != nil {
		return Token{}, lookupErr(fmt.Sprintf("token %s", jti), err)
	}
	return t, nil
}

// Tokens lists every recorded token, oldest first; dev "" means all devs.
func (s *Store) Tokens(ctx context.Context, dev string) ([]Token, error) {
	query, args := "SELECT "+tokenColumns+" FROM tokens ORDER BY created_at, jti", []any{}
	if dev != "" {
		query, args = "SELECT "+tokenColumns+" FROM tokens WHERE dev = ? ORDER BY created_at, jti", []any{dev}
	}
	return queryAll(ctx, s, "list tokens", query, args, func(rows *sql.Rows) (Token, error) { return scanToken(rows) })
}

// Revoke revokes jti at the given time. A jti never recorded is
// ErrNotFound (a typo would otherwise revoke nothing and say nothing);
// revoking a revoked token again changes nothing and is no error.
func (s *Store) Revoke(ctx context.Context, jti string, at time.Time) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, s.q("UPDATE tokens SET revoked_at = ? WHERE jti = ? AND revoked_at IS NULL"), ms(at), jti)
	if err != nil {
		return fmt.Errorf("revoke %s: %w", jti, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("revoke %s: %w", jti, err)
	} else if n == 0 {
		var one int
		err := tx.QueryRowContext(ctx, s.q("SELECT 1 FROM tokens WHERE jti = ?"), jti).Scan(&one)
		if err != nil {
			return lookupErr(fmt.Sprintf("revoke %s", jti), err)
		}
		return nil // already revoked
	}
	if s.dialect == Postgres {
		// Relays read revocations by id, above the highest they have seen.
		// PostgreSQL hands out ids at insert, not at commit, so two
		// concurrent revokes could commit 11 before 10 and a relay that
		// read 11 would never see 10. Writers of this table take turns
		// (readers are not blocked), so ids become visible in order.
		// SQLite has one writer at a time already.
		if _, err := tx.ExecContext(ctx, "LOCK TABLE revocations IN EXCLUSIVE MODE"); err != nil {
			return fmt.Errorf("revoke %s: %w", jti, err)
		}
	}
	if _, err := tx.ExecContext(ctx, s.q("INSERT INTO revocations (jti, revoked_at) VALUES (?, ?)"), jti, ms(at)); err != nil {
		return fmt.Errorf("revoke %s: %w", jti, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("revoke %s: %w", jti, err)
	}
	return nil
}

// RevocationsAfter returns the revocations numbered above id, in order.
// A relay polls it with the highest id it has seen: one indexed range
// query that returns nothing while nothing changes.
func (s *Store) RevocationsAfter(ctx context.Context, id int64) ([]Revocation, error) {
	return queryAll(ctx, s, "revocations", `SELECT r.id, r.jti, r.revoked_at, t.expires_at
		FROM revocations r JOIN tokens t ON t.jti = r.jti WHERE r.id > ? ORDER BY r.id`, []any{id}, func(rows *sql.Rows) (Revocation, error) {
		var r Revocation
		var at, exp int64
		err := rows.Scan(&r.ID, &r.JTI, &at, &exp)
		r.At, r.Expires = fromMS(at), fromMS(exp)
		return r, err
	})
}

// TouchTokens records when tokens were last used (jti → time). It only
// moves last_used forward; unknown ids (tokens issued before the store)
// are ignored.
func (s *Store) TouchTokens(ctx context.Context, used map[string]time.Time) error {
	if len(used) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("touch tokens: %w", err)
	}
	defer tx.Rollback()
	for jti, at := range used {
		if _, err := tx.ExecContext(ctx, s.q("UPDATE tokens SET last_used = ? WHERE jti = ? AND (last_used IS NULL OR last_used < ?)"),
			ms(at), jti, ms(at)); err != nil {
			return fmt.Errorf("touch tokens: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("touch tokens: %w", err)
	}
	return nil
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrSpent is returned when an authorization code or refresh token is
// presented a second time. The caller treats that as theft and revokes
// the whole grant (RFC 6749 §4.1.2, RFC 9700 §4.14.2).
var ErrSpent = errors.New("already used")

// OAuthGrant is one approval, by a user, of one client for one resource
// (an MCP URL). Its codes, refresh tokens and access tokens are one
// family: revoking the grant revokes all of them.
type OAuthGrant struct {
	ID          string
	UserID      string
	ClientID    string
	ClientName  string
	RedirectURI string
	Resource    string
	Scope       string
	Created     time.Time
	Revoked     time.Time // zero: live
	// LastUsed is when a relay last saw one of its access tokens (zero:
	// never); filled by OAuthGrants only.
	LastUsed time.Time
}

// AddOAuthGrant records a new grant.
func (s *Store) AddOAuthGrant(ctx context.Context, g OAuthGrant) error {
	_, err := s.exec(ctx, `INSERT INTO oauth_grants (id, user_id, client_id, client_name, redirect_uri, resource, scope, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, g.ID, g.UserID, g.ClientID, g.ClientName, g.RedirectURI, g.Resource, g.Scope, ms(g.Created))
	if err != nil {
		return fmt.Errorf("add oauth grant: %w", err)
	}
	return nil
}

const grantColumns = "g.id, g.user_id, g.client_id, g.client_name, g.redirect_uri, g.resource, g.scope, g.created_at, g.revoked_at"

func scanGrant(sc interface{ Scan(...any) error }, extra ...any) (OAuthGrant, error) {
	var g OAuthGrant
	var created int64
	var revoked sql.NullInt64
	dst := append([]any{&g.ID, &g.UserID, &g.ClientID, &g.ClientName, &g.RedirectURI, &g.Resource, &g.Scope, &created, &revoked}, extra...)
	if err := sc.Scan(dst...); err != nil {
		return OAuthGrant{}, err
	}
	g.Created, g.Revoked = fromMS(created), fromNullMS(revoked)
	return g, nil
}

// OAuthGrant returns the grant with id, or ErrNotFound.
func (s *Store) OAuthGrant(ctx context.Context, id string) (OAuthGrant, error) {
	g, err := scanGrant(s.db.QueryRowContext(ctx, s.q("SELECT "+grantColumns+" FROM oauth_grants g WHERE g.id = ?"), id))
	if err != nil {
		return OAuthGrant{}, lookupErr(fmt.Sprintf("oauth grant %s", id), err)
	}
	return g, nil
}

// OAuthGrants lists the live grants of a user, newest first, each with
// the last use of any of its access tokens.
func (s *Store) OAuthGrants(ctx context.Context, userID string) ([]OAuthGrant, error) {
	return queryAll(ctx, s, "oauth grants", `SELECT `+grantColumns+`, MAX(t.last_used)
		FROM oauth_grants g
		LEFT JOIN oauth_grant_tokens gt ON gt.grant_id = g.id
		LEFT JOIN tokens t ON t.jti = gt.jti
		WHERE g.user_id = ? AND g.revoked_at IS NULL
		GROUP BY g.id, g.user_id, g.client_id, g.client_name, g.redirect_uri, g.resource, g.scope, g.created_at, g.revoked_at
		ORDER BY g.created_at DESC, g.id`, []any{userID}, func(rows *sql.Rows) (OAuthGrant, error) {
		var used sql.NullInt64
		g, err := scanGrant(rows, &used)
		g.LastUsed = fromNullMS(used)
		return g, err
	})
}

// RevokeOAuthGrant marks the grant revoked and revokes every access token
// issued under it (each gets a revocations row, so every relay drops it
// on its next poll). Refresh tokens and codes die with the grant: they
// are only honoured for a live grant. Revoking twice is no error.
func (s *Store) RevokeOAuthGrant(ctx context.Context, id string, at time.Time) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("revoke oauth grant: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, s.q("UPDATE oauth_grants SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"), ms(at), id); err != nil {
		return fmt.Errorf("revoke oauth grant %s: %w", id, err)
	}
	// Revocation rows first: they are chosen by tokens.revoked_at IS NULL,
	// which the update below then sets.
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO revocations (jti, revoked_at)
		SELECT t.jti, ? FROM tokens t JOIN oauth_grant_tokens gt ON gt.jti = t.jti
		WHERE gt.grant_id = ? AND t.revoked_at IS NULL`), ms(at), id); err != nil {
		return fmt.Errorf("revoke oauth grant %s: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE tokens SET revoked_at = ?
		WHERE revoked_at IS NULL AND jti IN (SELECT jti FROM oauth_grant_tokens WHERE grant_id = ?)`), ms(at), id); err != nil {
		return fmt.Errorf("revoke oauth grant %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("revoke oauth grant %s: %w", id, err)
	}
	return nil
}

// AddGrantToken records an access token issued under a grant.
func (s *Store) AddGrantToken(ctx context.Context, grantID string, t Token) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add grant token: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO tokens (jti, kind, dev, scopes, aud, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`),
		t.JTI, string(t.Kind), t.Dev, strings.Join(t.Scopes, " "), t.Audience, ms(t.Created), ms(t.Expires)); err != nil {
		return fmt.Errorf("add grant token: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.q("INSERT INTO oauth_grant_tokens (jti, grant_id) VALUES (?, ?)"), t.JTI, grantID); err != nil {
		return fmt.Errorf("add grant token: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("add grant token: %w", err)
	}
	return nil
}

// OAuthCode is an authorization code (by hash) waiting to be redeemed.
type OAuthCode struct {
	Hash          string
	GrantID       string
	CodeChallenge string // PKCE S256 challenge
	Created       time.Time
	Expires       time.Time
}

// AddOAuthCode records a new code.
func (s *Store) AddOAuthCode(ctx context.Context, c OAuthCode) error {
	_, err := s.exec(ctx, "INSERT INTO oauth_codes (code_hash, grant_id, code_challenge, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
		c.Hash, c.GrantID, c.CodeChallenge, ms(c.Created), ms(c.Expires))
	if err != nil {
		return fmt.Errorf("add oauth code: %w", err)
	}
	return nil
}

// RedeemOAuthCode spends a code: the first call returns it, every later
// one returns it too but with an error wrapping ErrSpent (so the caller
// knows which grant to revoke). An unknown code is ErrNotFound. Expiry is
// the caller's check.
func (s *Store) RedeemOAuthCode(ctx context.Context, hash string, at time.Time) (OAuthCode, error) {
	return spend(ctx, s, "oauth_codes", "code_hash", hash, at, func(sc interface{ Scan(...any) error }) (OAuthCode, error) {
		var c OAuthCode
		var created, expires int64
		err := sc.Scan(&c.Hash, &c.GrantID, &c.CodeChallenge, &created, &expires)
		c.Created, c.Expires = fromMS(created), fromMS(expires)
		return c, err
	}, "code_hash, grant_id, code_challenge, created_at, expires_at")
}

// OAuthRefresh is a refresh token (by hash).
type OAuthRefresh struct {
	Hash    string
	GrantID string
	Created time.Time
	Expires time.Time
}

// AddOAuthRefresh records a new refresh token.
func (s *Store) AddOAuthRefresh(ctx context.Context, r OAuthRefresh) error {
	_, err := s.exec(ctx, "INSERT INTO oauth_refresh_tokens (token_hash, grant_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
		r.Hash, r.GrantID, ms(r.Created), ms(r.Expires))
	if err != nil {
		return fmt.Errorf("add oauth refresh token: %w", err)
	}
	return nil
}

// SpendOAuthRefresh spends a refresh token, like RedeemOAuthCode: a
// second use returns it with an error wrapping ErrSpent.
func (s *Store) SpendOAuthRefresh(ctx context.Context, hash string, at time.Time) (OAuthRefresh, error) {
	return spend(ctx, s, "oauth_refresh_tokens", "token_hash", hash, at, func(sc interface{ Scan(...any) error }) (OAuthRefresh, error) {
		var r OAuthRefresh
		var created, expires int64
		err := sc.Scan(&r.Hash, &r.GrantID, &created, &expires)
		r.Created, r.Expires = fromMS(created), fromMS(expires)
		return r, err
	}, "token_hash, grant_id, created_at, expires_at")
}

// spend is the compare-and-set both one-time secrets share: set used_at
// where it is NULL; when no row changed, the secret is unknown or spent.
func spend[T any](ctx context.Context, s *Store, table, key, hash string, at time.Time,
	scan func(interface{ Scan(...any) error }) (T, error), cols string) (T, error) {
	var zero T
	res, err := s.exec(ctx, "UPDATE "+table+" SET used_at = ? WHERE "+key+" = ? AND used_at IS NULL", ms(at), hash)
	if err != nil {
		return zero, fmt.Errorf("spend %s: %w", table, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return zero, fmt.Errorf("spend %s: %w", table, err)
	}
	v, err := scan(s.db.QueryRowContext(ctx, s.q("SELECT "+cols+" FROM "+table+" WHERE "+key+" = ?"), hash))
	if err != nil {
		return zero, lookupErr(fmt.Sprintf("spend %s", table), err)
	}
	if n == 0 {
		return v, fmt.Errorf("spend %s: %w", table, ErrSpent)
	}
	return v, nil
}

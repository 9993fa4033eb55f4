package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Expiry: one method per table, each a bounded DELETE of the rows past
// their end (at most limit rows, so one call holds the table briefly; the
// relay's janitor calls again while a call fills its limit). Revocation
// rows are kept: with the tokens table they are the audit record of what
// was revoked and when (one small row per revoked token).

// deleteBatch deletes at most limit rows of table whose key is chosen by
// where. The subquery form (key IN (SELECT … LIMIT n)) is the bounded
// DELETE both SQLite and PostgreSQL accept.
func (s *Store) deleteBatch(ctx context.Context, table, key, where string, limit int, args ...any) (int, error) {
	res, err := s.exec(ctx, "DELETE FROM "+table+" WHERE "+key+" IN (SELECT "+key+" FROM "+table+" WHERE "+where+
		" LIMIT "+strconv.Itoa(max(limit, 1))+")", args...)
	if err != nil {
		return 0, fmt.Errorf("expire %s: %w", table, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("expire %s: %w", table, err)
	}
	return int(n), nil
}

// DeleteExpiredDeviceCodes deletes device authorizations (connect codes
// among them: they are device codes approved at birth) that ended before.
func (s *Store) DeleteExpiredDeviceCodes(ctx context.Context, before time.Time, limit int) (int, error) {
	return s.deleteBatch(ctx, "device_codes", "device_hash", "expires_at <= ?", limit, ms(before))
}

// DeleteExpiredSignInLinks deletes sign-in links that ended before (used
// or not: a used link is refused the same as an expired one).
func (s *Store) DeleteExpiredSignInLinks(ctx context.Context, before time.Time, limit int) (int, error) {
	return s.deleteBatch(ctx, "sign_in_links", "hash", "expires_at <= ?", limit, ms(before))
}

// DeleteExpiredWebSessions deletes web sessions that ended before.
func (s *Store) DeleteExpiredWebSessions(ctx context.Context, before time.Time, limit int) (int, error) {
	return s.deleteBatch(ctx, "web_sessions", "hash", "expires_at <= ?", limit, ms(before))
}

// DeleteExpiredCeremonies deletes WebAuthn ceremonies that ended before.
func (s *Store) DeleteExpiredCeremonies(ctx context.Context, before time.Time, limit int) (int, error) {
	return s.deleteBatch(ctx, "webauthn_ceremonies", "hash", "expires_at <= ?", limit, ms(before))
}

// DeleteExpiredOAuthCodes deletes authorization codes that ended before.
func (s *Store) DeleteExpiredOAuthCodes(ctx context.Context, before time.Time, limit int) (int, error) {
	return s.deleteBatch(ctx, "oauth_codes", "code_hash", "expires_at <= ?", limit, ms(before))
}

// DeleteExpiredOAuthRefresh deletes refresh tokens that ended before. A
// spent one is kept until then: presenting it again is how reuse (a
// stolen token) is detected.
func (s *Store) DeleteExpiredOAuthRefresh(ctx context.Context, before time.Time, limit int) (int, error) {
	return s.deleteBatch(ctx, "oauth_refresh_tokens", "token_hash", "expires_at <= ?", limit, ms(before))
}

// DeleteDeadOAuthGrants deletes at most limit grants revoked before
// revokedBefore or created before createdBefore (past their maximum age),
// with their codes, refresh tokens (the grant's refresh family) and
// links to access tokens. The tokens rows stay: revocations refer to them.
func (s *Store) DeleteDeadOAuthGrants(ctx context.Context, revokedBefore, createdBefore time.Time, limit int) (int, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("expire oauth grants: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, s.q(`SELECT id FROM oauth_grants
		WHERE (revoked_at IS NOT NULL AND revoked_at <= ?) OR created_at <= ? LIMIT `+strconv.Itoa(max(limit, 1))),
		ms(revokedBefore), ms(createdBefore))
	if err != nil {
		return 0, fmt.Errorf("expire oauth grants: %w", err)
	}
	var ids []any
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("expire oauth grants: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("expire oauth grants: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	in := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ") + ")"
	for _, q := range []string{
		"DELETE FROM oauth_codes WHERE grant_id IN " + in,
		"DELETE FROM oauth_refresh_tokens WHERE grant_id IN " + in,
		"DELETE FROM oauth_grant_tokens WHERE grant_id IN " + in,
		"DELETE FROM oauth_grants WHERE id IN " + in,
	} {
		if _, err := tx.ExecContext(ctx, s.q(q), ids...); err != nil {
			return 0, fmt.Errorf("expire oauth grants: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("expire oauth grants: %w", err)
	}
	return len(ids), nil
}

// DeleteUnusedOAuthClients deletes at most limit registered clients whose
// id starts with prefix (dynamic registrations: not tetherd's own row),
// created before createdBefore, with no grant left (the janitor deletes
// dead grants first) and no device code. Registration is open, so these
// are what a script, or an app tried once, leaves behind.
func (s *Store) DeleteUnusedOAuthClients(ctx context.Context, prefix string, createdBefore time.Time, limit int) (int, error) {
	if prefix == "" {
		return 0, fmt.Errorf("expire oauth clients: empty prefix")
	}
	return s.deleteBatch(ctx, "oauth_clients", "id", `substr(id, 1, ?) = ? AND created_at <= ?
		AND NOT EXISTS (SELECT 1 FROM oauth_grants g WHERE g.client_id = oauth_clients.id)
		AND NOT EXISTS (SELECT 1 FROM device_codes d WHERE d.client_id = oauth_clients.id)`,
		limit, len(prefix), prefix, ms(createdBefore))
}

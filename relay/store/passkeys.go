package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrLastWayIn refuses to remove a user's only way to sign in: their
// last passkey while they have no password.
var ErrLastWayIn = errors.New("it is the account's last way to sign in")

// Passkey is a WebAuthn credential of a user. ID is the credential id
// (base64url); Credential is the WebAuthn library's record of it (public
// key, sign counter, flags) as JSON, which the store does not read.
type Passkey struct {
	ID         string
	UserID     string
	Name       string
	Credential []byte
	Created    time.Time
	LastUsed   time.Time // zero: never
}

// WebAuthnHandle returns the user's WebAuthn user handle, setting it to
// fresh (random bytes, base64url, made by the caller) if the user has
// none yet. Of two concurrent calls both get the one that was stored.
func (s *Store) WebAuthnHandle(ctx context.Context, userID, fresh string) (string, error) {
	if _, err := s.exec(ctx, "UPDATE users SET webauthn_handle = ? WHERE id = ? AND webauthn_handle IS NULL", fresh, userID); err != nil {
		return "", fmt.Errorf("webauthn handle: %w", err)
	}
	var h sql.NullString
	err := s.db.QueryRowContext(ctx, s.q("SELECT webauthn_handle FROM users WHERE id = ?"), userID).Scan(&h)
	if err != nil {
		return "", lookupErr(fmt.Sprintf("webauthn handle: user %s", userID), err)
	}
	return h.String, nil
}

// UserByWebAuthnHandle returns the id of the user with that handle, or ErrNotFound.
func (s *Store) UserByWebAuthnHandle(ctx context.Context, handle string) (string, error) {
	var id string
	err := s.db.QueryRowContext(ctx, s.q("SELECT id FROM users WHERE webauthn_handle = ?"), handle).Scan(&id)
	if err != nil {
		return "", lookupErr("user by webauthn handle", err)
	}
	return id, nil
}

// AddPasskey records a new passkey; ErrExists if its id is known.
func (s *Store) AddPasskey(ctx context.Context, p Passkey) error {
	_, err := s.exec(ctx, "INSERT INTO passkeys (id, user_id, name, credential, created_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?)",
		p.ID, p.UserID, p.Name, string(p.Credential), ms(p.Created), nullMS(p.LastUsed))
	if isUnique(err) {
		return fmt.Errorf("add passkey: %w", ErrExists)
	}
	if err != nil {
		return fmt.Errorf("add passkey: %w", err)
	}
	return nil
}

// Passkeys lists the user's passkeys, oldest first.
func (s *Store) Passkeys(ctx context.Context, userID string) ([]Passkey, error) {
	return queryAll(ctx, s, "passkeys", "SELECT id, user_id, name, credential, created_at, last_used_at FROM passkeys WHERE user_id = ? ORDER BY created_at, id",
		[]any{userID}, func(rows *sql.Rows) (Passkey, error) {
			var p Passkey
			var cred string
			var created int64
			var used sql.NullInt64
			err := rows.Scan(&p.ID, &p.UserID, &p.Name, &cred, &created, &used)
			p.Credential, p.Created, p.LastUsed = []byte(cred), fromMS(created), fromNullMS(used)
			return p, err
		})
}

// UsedPasskey stores the credential record after a sign-in with it (the
// library updates its sign counter) and when it was used.
func (s *Store) UsedPasskey(ctx context.Context, id string, credential []byte, at time.Time) error {
	res, err := s.exec(ctx, "UPDATE passkeys SET credential = ?, last_used_at = ? WHERE id = ?", string(credential), ms(at), id)
	if err != nil {
		return fmt.Errorf("used passkey: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("used passkey: %w", err)
	} else if n == 0 {
		return fmt.Errorf("used passkey: %w", ErrNotFound)
	}
	return nil
}

// DeletePasskey removes one of the user's passkeys, unless it is their
// last way in (ErrLastWayIn): the check and the delete are one statement,
// so two concurrent removals cannot both pass it.
func (s *Store) DeletePasskey(ctx context.Context, userID, id string) error {
	res, err := s.exec(ctx, `DELETE FROM passkeys WHERE id = ? AND user_id = ? AND (
		(SELECT password_hash FROM users WHERE id = ?) <> ''
		OR (SELECT COUNT(*) FROM passkeys WHERE user_id = ?) > 1)`, id, userID, userID, userID)
	if err != nil {
		return fmt.Errorf("delete passkey: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("delete passkey: %w", err)
	} else if n > 0 {
		return nil
	}
	var one int
	err = s.db.QueryRowContext(ctx, s.q("SELECT 1 FROM passkeys WHERE id = ? AND user_id = ?"), id, userID).Scan(&one)
	if err != nil {
		return lookupErr("delete passkey", err)
	}
	return fmt.Errorf("delete passkey: %w", ErrLastWayIn)
}

// CeremonyKind says what a WebAuthn ceremony is for.
type CeremonyKind string

const (
	// CeremonyRegister adds a passkey to a signed-in user, or to the
	// user of a sign-in link (LinkHash set).
	CeremonyRegister CeremonyKind = "register"
	// CeremonyLogin signs in with a discoverable passkey (no user yet).
	CeremonyLogin CeremonyKind = "login"
)

// Ceremony is a WebAuthn ceremony in progress. Hash is a hash of the
// browser cookie it is bound to; Data is the library's session data
// (challenge and options) as JSON.
type Ceremony struct {
	Hash     string
	Kind     CeremonyKind
	UserID   string // "" for CeremonyLogin
	LinkHash string // the sign-in link a registration will use, or ""
	Data     []byte
	Expires  time.Time
}

// AddCeremony records a ceremony, and drops those expired at now.
func (s *Store) AddCeremony(ctx context.Context, c Ceremony, now time.Time) error {
	if _, err := s.exec(ctx, "DELETE FROM webauthn_ceremonies WHERE expires_at <= ?", ms(now)); err != nil {
		return fmt.Errorf("add ceremony: %w", err)
	}
	_, err := s.exec(ctx, "INSERT INTO webauthn_ceremonies (hash, kind, user_id, link_hash, data, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
		c.Hash, string(c.Kind), c.UserID, c.LinkHash, string(c.Data), ms(c.Expires))
	if err != nil {
		return fmt.Errorf("add ceremony: %w", err)
	}
	return nil
}

// TakeCeremony removes the ceremony with hash and returns it if it had
// not expired at now: one take per ceremony, whatever its outcome.
// Otherwise ErrNotFound (unknown or taken already) or ErrUsed (expired).
func (s *Store) TakeCeremony(ctx context.Context, hash string, now time.Time) (Ceremony, error) {
	var c Ceremony
	var kind, data string
	var expires int64
	err := s.db.QueryRowContext(ctx, s.q("DELETE FROM webauthn_ceremonies WHERE hash = ? RETURNING hash, kind, user_id, link_hash, data, expires_at"), hash).
		Scan(&c.Hash, &kind, &c.UserID, &c.LinkHash, &data, &expires)
	if err != nil {
		return Ceremony{}, lookupErr("ceremony", err)
	}
	c.Kind, c.Data, c.Expires = CeremonyKind(kind), []byte(data), fromMS(expires)
	if !now.Before(c.Expires) {
		return Ceremony{}, fmt.Errorf("ceremony: %w", ErrUsed)
	}
	return c, nil
}

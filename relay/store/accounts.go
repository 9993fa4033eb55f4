package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrUsed is a sign-in link that was used already or has expired.
var ErrUsed = errors.New("used or expired")

// SetPassword stores a password hash (an encoded argon2id string made by
// the caller) for the user.
func (s *Store) SetPassword(ctx context.Context, userID, hash string) error {
	res, err := s.exec(ctx, "UPDATE users SET password_hash = ? WHERE id = ?", hash, userID)
	if err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("set password: %w", err)
	} else if n == 0 {
		return fmt.Errorf("set password: user %s: %w", userID, ErrNotFound)
	}
	return nil
}

// PasswordHash returns the user's stored password hash ("" when none is
// set) and the user, or ErrNotFound.
func (s *Store) PasswordHash(ctx context.Context, userID string) (User, string, error) {
	var u User
	var created int64
	var disabled sql.NullInt64
	var hash string
	err := s.db.QueryRowContext(ctx, s.q("SELECT id, created_at, disabled_at, password_hash FROM users WHERE id = ?"), userID).
		Scan(&u.ID, &created, &disabled, &hash)
	if err != nil {
		return User{}, "", lookupErr(fmt.Sprintf("user %s", userID), err)
	}
	u.Created, u.Disabled = fromMS(created), fromNullMS(disabled)
	return u, hash, nil
}

// SignInLink is a one-time link that lets a user in (to set a password).
// Hash is a hash of the link's code; the code itself is never stored.
type SignInLink struct {
	Hash    string
	UserID  string
	Created time.Time
	Expires time.Time
}

// AddSignInLink records a new link.
func (s *Store) AddSignInLink(ctx context.Context, l SignInLink) error {
	_, err := s.exec(ctx, "INSERT INTO sign_in_links (hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
		l.Hash, l.UserID, ms(l.Created), ms(l.Expires))
	if err != nil {
		return fmt.Errorf("add sign-in link: %w", err)
	}
	return nil
}

// SignInLink returns the link with hash if it is unused and not expired
// at now, without using it; otherwise ErrUsed (or ErrNotFound).
func (s *Store) SignInLink(ctx context.Context, hash string, now time.Time) (SignInLink, error) {
	var l SignInLink
	var created, expires int64
	var used sql.NullInt64
	err := s.db.QueryRowContext(ctx, s.q("SELECT hash, user_id, created_at, expires_at, used_at FROM sign_in_links WHERE hash = ?"), hash).
		Scan(&l.Hash, &l.UserID, &created, &expires, &used)
	if err != nil {
		return SignInLink{}, lookupErr("sign-in link", err)
	}
	l.Created, l.Expires = fromMS(created), fromMS(expires)
	if used.Valid || !now.Before(l.Expires) {
		return SignInLink{}, fmt.Errorf("sign-in link: %w", ErrUsed)
	}
	return l, nil
}

// UseSignInLink marks the link used and returns its user. It is a
// compare-and-set: of two requests with one link only one gets the user;
// the other, and any after expiry, get ErrUsed.
func (s *Store) UseSignInLink(ctx context.Context, hash string, now time.Time) (string, error) {
	l, err := s.SignInLink(ctx, hash, now)
	if err != nil {
		return "", err
	}
	res, err := s.exec(ctx, "UPDATE sign_in_links SET used_at = ? WHERE hash = ? AND used_at IS NULL AND expires_at > ?", ms(now), hash, ms(now))
	if err != nil {
		return "", fmt.Errorf("use sign-in link: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return "", fmt.Errorf("use sign-in link: %w", err)
	} else if n == 0 {
		return "", fmt.Errorf("use sign-in link: %w", ErrUsed)
	}
	return l.UserID, nil
}

// WebSession is a signed-in browser. Hash is a hash of the session
// cookie's value; CSRF is the session's anti-forgery token, which the
// page repeats in every form.
type WebSession struct {
	Hash    string
	UserID  string
	CSRF    string
	Created time.Time
	Expires time.Time
}

// AddWebSession records a new session.
func (s *Store) AddWebSession(ctx context.Context, ws WebSession) error {
	_, err := s.exec(ctx, "INSERT INTO web_sessions (hash, user_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
		ws.Hash, ws.UserID, ws.CSRF, ms(ws.Created), ms(ws.Expires))
	if err != nil {
		return fmt.Errorf("add web session: %w", err)
	}
	return nil
}

// WebSession returns the session with hash if it has not expired at now,
// or ErrNotFound.
func (s *Store) WebSession(ctx context.Context, hash string, now time.Time) (WebSession, error) {
	var ws WebSession
	var created, expires int64
	err := s.db.QueryRowContext(ctx, s.q("SELECT hash, user_id, csrf, created_at, expires_at FROM web_sessions WHERE hash = ? AND expires_at > ?"),
		hash, ms(now)).Scan(&ws.Hash, &ws.UserID, &ws.CSRF, &created, &expires)
	if err != nil {
		return WebSession{}, lookupErr("web session", err)
	}
	ws.Created, ws.Expires = fromMS(created), fromMS(expires)
	return ws, nil
}

// DeleteWebSession ends a session (sign-out); an unknown hash is no error.
func (s *Store) DeleteWebSession(ctx context.Context, hash string) error {
	if _, err := s.exec(ctx, "DELETE FROM web_sessions WHERE hash = ?", hash); err != nil {
		return fmt.Errorf("delete web session: %w", err)
	}
	return nil
}

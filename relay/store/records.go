package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// User is an account on the relay; its id is the dev id of its bridge.
type User struct {
	ID       string
	Created  time.Time
	Disabled time.Time // zero: active
}

// AddUser records a new user; an id taken is ErrExists.
func (s *Store) AddUser(ctx context.Context, u User) error {
	_, err := s.exec(ctx, "INSERT INTO users (id, created_at, disabled_at) VALUES (?, ?, ?)", u.ID, ms(u.Created), nullMS(u.Disabled))
	if isUnique(err) {
		return fmt.Errorf("add user %s: %w", u.ID, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("add user: %w", err)
	}
	return nil
}

// User returns the user with id, or ErrNotFound.
func (s *Store) User(ctx context.Context, id string) (User, error) {
	var u User
	var created int64
	var disabled sql.NullInt64
	err := s.db.QueryRowContext(ctx, s.q("SELECT id, created_at, disabled_at FROM users WHERE id = ?"), id).Scan(&u.ID, &created, &disabled)
	if err != nil {
		return User{}, lookupErr(fmt.Sprintf("user %s", id), err)
	}
	u.Created, u.Disabled = fromMS(created), fromNullMS(disabled)
	return u, nil
}

// OAuthClient is a registered OAuth client (tetherd, a hosted agent).
type OAuthClient struct {
	ID           string
	Name         string
	RedirectURIs []string
	Created      time.Time
}

// AddOAuthClient registers a client; an id taken is ErrExists.
func (s *Store) AddOAuthClient(ctx context.Context, c OAuthClient) error {
	_, err := s.exec(ctx, "INSERT INTO oauth_clients (id, name, redirect_uris, created_at) VALUES (?, ?, ?, ?)",
		c.ID, c.Name, strings.Join(c.RedirectURIs, " "), ms(c.Created))
	if isUnique(err) {
		return fmt.Errorf("add oauth client %s: %w", c.ID, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("add oauth client: %w", err)
	}
	return nil
}

// OAuthClient returns the client with id, or ErrNotFound.
func (s *Store) OAuthClient(ctx context.Context, id string) (OAuthClient, error) {
	var c OAuthClient
	var uris string
	var created int64
	err := s.db.QueryRowContext(ctx, s.q("SELECT id, name, redirect_uris, created_at FROM oauth_clients WHERE id = ?"), id).
		Scan(&c.ID, &c.Name, &uris, &created)
	if err != nil {
		return OAuthClient{}, lookupErr(fmt.Sprintf("oauth client %s", id), err)
	}
	c.RedirectURIs, c.Created = strings.Fields(uris), fromMS(created)
	return c, nil
}

// DeviceState is where a device authorization (RFC 8628) stands.
type DeviceState string

const (
	DevicePending  DeviceState = "pending"
	DeviceApproved DeviceState = "approved"
	DeviceDenied   DeviceState = "denied"
	DeviceRedeemed DeviceState = "redeemed" // the token was handed out; the code is spent
)

// DeviceCode is one device authorization. DeviceHash is a hash of the
// device code (the code itself is a bearer secret and is not stored).
type DeviceCode struct {
	DeviceHash string
	UserCode   string
	ClientID   string
	State      DeviceState
	UserID     string // who approved or denied; "" while pending
	Created    time.Time
	Expires    time.Time
}

// AddDeviceCode records a pending device authorization.
func (s *Store) AddDeviceCode(ctx context.Context, d DeviceCode) error {
	_, err := s.exec(ctx, `INSERT INTO device_codes (device_hash, user_code, client_id, state, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?)`, d.DeviceHash, d.UserCode, d.ClientID, string(DevicePending), ms(d.Created), ms(d.Expires))
	if isUnique(err) {
		return fmt.Errorf("add device code: %w", ErrExists)
	}
	if err != nil {
		return fmt.Errorf("add device code: %w", err)
	}
	return nil
}

// DeviceCode returns the device authorization with the device code hash, or ErrNotFound.
func (s *Store) DeviceCode(ctx context.Context, deviceHash string) (DeviceCode, error) {
	var d DeviceCode
	var state string
	var user sql.NullString
	var created, expires int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT device_hash, user_code, client_id, state, user_id, created_at, expires_at
		FROM device_codes WHERE device_hash = ?`), deviceHash).Scan(&d.DeviceHash, &d.UserCode, &d.ClientID, &state, &user, &created, &expires)
	if err != nil {
		return DeviceCode{}, lookupErr("device code", err)
	}
	d.State, d.UserID, d.Created, d.Expires = DeviceState(state), user.String, fromMS(created), fromMS(expires)
	return d, nil
}

// SetDeviceState moves a device authorization from state from to state
// to, on behalf of userID. It is a compare-and-set: when the code is not
// in state from (another request moved it first) nothing changes and the
// error wraps ErrNotFound, so a code is approved, or redeemed, only once.
func (s *Store) SetDeviceState(ctx context.Context, deviceHash string, from, to DeviceState, userID string) error {
	var user sql.NullString
	if userID != "" {
		user = sql.NullString{String: userID, Valid: true}
	}
	res, err := s.exec(ctx, "UPDATE device_codes SET state = ?, user_id = COALESCE(?, user_id) WHERE device_hash = ? AND state = ?",
		string(to), user, deviceHash, string(from))
	if err != nil {
		return fmt.Errorf("device code %s→%s: %w", from, to, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("device code %s→%s: %w", from, to, err)
	} else if n == 0 {
		return fmt.Errorf("device code %s→%s: no such code in state %s: %w", from, to, from, ErrNotFound)
	}
	return nil
}

// AuditEvent is one entry of the audit trail: who did what to what.
type AuditEvent struct {
	ID      int64
	At      time.Time
	Actor   string // "cli", "user:alice", "relay"
	Action  string // "token.issue", "token.revoke", …
	Subject string // the object acted on, e.g. a jti
	Detail  string
}

// AddAudit appends an event and returns its id.
func (s *Store) AddAudit(ctx context.Context, e AuditEvent) (int64, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, s.q("INSERT INTO audit_events (at, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?) RETURNING id"),
		ms(e.At), e.Actor, e.Action, e.Subject, e.Detail).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	return id, nil
}

// AuditEvents returns the newest events first, at most limit of them.
func (s *Store) AuditEvents(ctx context.Context, limit int) ([]AuditEvent, error) {
	return queryAll(ctx, s, "audit events", "SELECT id, at, actor, action, subject, detail FROM audit_events ORDER BY id DESC LIMIT ?",
		[]any{limit}, func(rows *sql.Rows) (AuditEvent, error) {
			var e AuditEvent
			var at int64
			err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Subject, &e.Detail)
			e.At = fromMS(at)
			return e, err
		})
}

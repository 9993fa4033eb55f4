package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/tether-dev/tether/internal/atomicfile"
)

// TokenLog is the relay's record of the tokens it issued and revoked,
// kept in one JSON file next to the secret (TokenLogPath). It never holds
// a token, only its id (jti) and what it was issued for. The `token`
// command writes it; the running relay reads its revocations (Revocations).
//
// Writers replace the file atomically; two `token` commands run at the
// same instant may lose one of their entries (the log, not the tokens).
type TokenLog struct {
	Issued  []IssuedToken  `json:"issued"`
	Revoked []RevokedToken `json:"revoked"`
}

// IssuedToken describes one issued token.
type IssuedToken struct {
	ID       string    `json:"jti"`
	Dev      string    `json:"dev"`
	Scope    string    `json:"scope"`
	Audience string    `json:"aud,omitempty"`
	IssuedAt time.Time `json:"iat"`
	Expires  time.Time `json:"exp"`
}

// RevokedToken is one revocation.
type RevokedToken struct {
	ID string    `json:"jti"`
	At time.Time `json:"at"`
}

// TokenLogPath is where the log of the secret in secretFile lives.
func TokenLogPath(secretFile string) string { return secretFile + ".tokens" }

// ReadTokenLog reads the log; a missing file is an empty log.
func ReadTokenLog(path string) (*TokenLog, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &TokenLog{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read token log: %w", err)
	}
	var l TokenLog
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("token log %s: %w", path, err)
	}
	return &l, nil
}

// Write replaces the log file atomically, mode 0600.
func (l *TokenLog) Write(path string) error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return fmt.Errorf("encode token log: %w", err)
	}
	if err := atomicfile.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write token log: %w", err)
	}
	return nil
}

// Revoke adds jti to the revocations. It fails for an id the log never
// issued (a typo would otherwise revoke nothing and say nothing).
func (l *TokenLog) Revoke(jti string, now time.Time) error {
	found := false
	for _, it := range l.Issued {
		found = found || it.ID == jti
	}
	if !found {
		return fmt.Errorf("no token with jti %q was issued with this secret (see `tether-relay token list`)", jti)
	}
	for _, r := range l.Revoked {
		if r.ID == jti {
			return nil
		}
	}
	l.Revoked = append(l.Revoked, RevokedToken{ID: jti, At: now.UTC()})
	return nil
}

// Revocations is the set of revoked token ids, re-read from the log file
// whenever the file changes: Has checks the file's identity and
// modification time (one stat) on each call, so a revocation applies to
// the next request.
type Revocations struct {
	path string

	mu   sync.Mutex
	info fs.FileInfo // of the file last read; nil when absent
	ids  map[string]bool
	err  error  // of the last read, kept until the file changes
	gen  uint64 // counts reads that changed the set
}

// generation refreshes and returns a number that changes whenever the
// set may have changed.
func (r *Revocations) generation() uint64 {
	r.refresh()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gen
}

// NewRevocations reads the log at path (a missing file: nothing revoked).
func NewRevocations(path string) (*Revocations, error) {
	r := &Revocations{path: path}
	r.refresh()
	return r, r.err
}

// refresh re-reads the file if it changed since the last read.
func (r *Revocations) refresh() {
	info, err := os.Stat(r.path)
	if err != nil {
		info = nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	same := (info == nil && r.info == nil && r.ids != nil) ||
		(info != nil && r.info != nil && os.SameFile(info, r.info) && info.ModTime().Equal(r.info.ModTime()) && info.Size() == r.info.Size())
	if same {
		return
	}
	r.info = info
	l, err := ReadTokenLog(r.path)
	if err != nil {
		// Keep the last good set: a broken file must not un-revoke tokens.
		r.err = err
		return
	}
	r.err = nil
	ids := make(map[string]bool, len(l.Revoked))
	for _, rv := range l.Revoked {
		ids[rv.ID] = true
	}
	r.ids = ids
	r.gen++
}

// Has reports whether the token id (Claims.ID form: "j:<jti>") is revoked.
func (r *Revocations) Has(id string) bool {
	if r == nil {
		return false
	}
	r.refresh()
	r.mu.Lock()
	defer r.mu.Unlock()
	jti, ok := cutJTI(id)
	return ok && r.ids[jti]
}

func cutJTI(id string) (string, bool) {
	if len(id) > 2 && id[:2] == "j:" {
		return id[2:], true
	}
	return "", false
}

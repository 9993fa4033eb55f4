package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// LegacyTokenFile is where relays before the store kept their token log:
// <secret>.tokens beside the secret file.
func LegacyTokenFile(secretFile string) string { return secretFile + ".tokens" }

// legacyLog is the JSON of that file.
type legacyLog struct {
	Issued []struct {
		ID       string    `json:"jti"`
		Dev      string    `json:"dev"`
		Scope    string    `json:"scope"`
		Audience string    `json:"aud"`
		IssuedAt time.Time `json:"iat"`
		Expires  time.Time `json:"exp"`
	} `json:"issued"`
	Revoked []struct {
		ID string    `json:"jti"`
		At time.Time `json:"at"`
	} `json:"revoked"`
}

// ImportLegacyTokenFile copies a token log file of an older relay into
// the store and renames it to path+".imported", so an upgrade keeps every
// issued token listable and every revocation in force. A missing file is
// nothing to do (imported reports whether there was one). Records already
// in the store are kept, so an import cut short before the rename can run
// again.
func (s *Store) ImportLegacyTokenFile(ctx context.Context, path string) (imported bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("import %s: %w", path, err)
	}
	var l legacyLog
	if err := json.Unmarshal(b, &l); err != nil {
		return false, fmt.Errorf("import %s: %w", path, err)
	}
	for _, it := range l.Issued {
		t := Token{JTI: it.ID, Kind: Kind(it.Scope), Dev: it.Dev, Scopes: []string{it.Scope}, Audience: it.Audience,
			Created: it.IssuedAt, Expires: it.Expires}
		if err := s.AddToken(ctx, t); err != nil && !errors.Is(err, ErrExists) {
			return false, fmt.Errorf("import %s: %w", path, err)
		}
	}
	for _, r := range l.Revoked {
		if err := s.Revoke(ctx, r.ID, r.At); err != nil && !errors.Is(err, ErrNotFound) {
			return false, fmt.Errorf("import %s: %w", path, err)
		}
	}
	if err := os.Rename(path, path+".imported"); err != nil {
		return false, fmt.Errorf("import %s: %w", path, err)
	}
	return true, nil
}

package keystore

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// ErrNotJWT is wrapped by ParseClaims when the token does not have the shape
// of a Tether token (a JWT whose sub is "dev:<id>").
var ErrNotJWT = errors.New("not a Tether token (a JWT)")

// Claims are what the JWT payload says about itself. They are for display
// (the tray, `tetherd token show`, the expiry warning) and are never trusted:
// ParseClaims does not check the signature; the relay does.
type Claims struct {
	Dev      string    // the id from sub "dev:<id>"
	Scopes   []string  // "bridge", "client"
	Expiry   time.Time // zero when the token has no exp
	IssuedAt time.Time // zero when the token has no iat
	// Audience is the aud claim: the relay URL(s) the token was issued
	// for. Empty on older tokens, which name no relay.
	Audience []string
}

// ParseClaims reads the claims of t without verifying it. The errors wrap
// ErrNotJWT and say what is wrong; they never contain the token.
func ParseClaims(t Token) (Claims, error) {
	parts := strings.Split(t.Reveal(), ".")
	if len(parts) != 3 {
		return Claims{}, fmt.Errorf("%w: want 3 dot-separated parts, got %d", ErrNotJWT, len(parts))
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if err := decodePart(parts[0], &header); err != nil {
		return Claims{}, fmt.Errorf("%w: header: %w", ErrNotJWT, err)
	}
	if header.Alg == "" {
		return Claims{}, fmt.Errorf("%w: header has no alg", ErrNotJWT)
	}
	var payload struct {
		Sub   string          `json:"sub"`
		Scope json.RawMessage `json:"scope"`
		Exp   *float64        `json:"exp"`
		Iat   *float64        `json:"iat"`
		Aud   json.RawMessage `json:"aud"`
	}
	if err := decodePart(parts[1], &payload); err != nil {
		return Claims{}, fmt.Errorf("%w: payload: %w", ErrNotJWT, err)
	}
	if parts[2] == "" {
		return Claims{}, fmt.Errorf("%w: signature is empty", ErrNotJWT)
	}
	if _, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[2], "=")); err != nil {
		return Claims{}, fmt.Errorf("%w: signature is not base64url", ErrNotJWT)
	}
	dev, ok := strings.CutPrefix(payload.Sub, "dev:")
	if !ok || dev == "" {
		return Claims{}, fmt.Errorf("%w: sub %q is not \"dev:<id>\"", ErrNotJWT, payload.Sub)
	}
	c := Claims{Dev: dev}
	var err error
	if c.Scopes, err = parseScope(payload.Scope); err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrNotJWT, err)
	}
	if c.Expiry, err = numericDate("exp", payload.Exp); err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrNotJWT, err)
	}
	if c.IssuedAt, err = numericDate("iat", payload.Iat); err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrNotJWT, err)
	}
	if c.Audience, err = parseAudience(payload.Aud); err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrNotJWT, err)
	}
	return c, nil
}

// ExpiresWithin reports whether the token expires before now+d, which is
// also true once it has expired. A token without exp never expires.
func (c Claims) ExpiresWithin(d time.Duration, now time.Time) bool {
	return !c.Expiry.IsZero() && c.Expiry.Before(now.Add(d))
}

// Expired reports whether now is at or past exp (RFC 7519 §4.1.4).
func (c Claims) Expired(now time.Time) bool {
	return !c.Expiry.IsZero() && !now.Before(c.Expiry)
}

// decodePart decodes one base64url JWT segment holding a JSON object.
// Padding is tolerated though JWTs should not carry it.
func decodePart(seg string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
	if err != nil {
		return errors.New("not base64url")
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return errors.New("not a JSON object")
	}
	return nil
}

// parseScope accepts the Tether form (["bridge"]) and the OAuth form
// ("bridge client").
func parseScope(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err == nil {
		return list, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return strings.Fields(s), nil
	}
	return nil, errors.New("scope is neither a list nor a string")
}

func numericDate(name string, v *float64) (time.Time, error) {
	if v == nil {
		return time.Time{}, nil
	}
	if math.IsNaN(*v) || math.IsInf(*v, 0) || *v < 0 || *v > 1e11 {
		return time.Time{}, fmt.Errorf("%s %v is not a date", name, *v)
	}
	sec, frac := math.Modf(*v)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

// parseAudience reads aud, which RFC 7519 allows as one string or an array.
func parseAudience(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, errors.New("aud is neither a string nor an array of strings")
	}
	return many, nil
}

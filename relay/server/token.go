package server

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tether-dev/tether/relay/store"
)

// Token scopes. A bridge token holds a dev's slot; a client token calls
// that dev's servers. Neither can do the other's job.
const (
	ScopeBridge = "bridge"
	ScopeClient = "client"
)

// devPrefix is how the subject names a developer: sub = "dev:<id>".
const devPrefix = "dev:"

// Errors from Verify and from request authorization. The first three map
// to 401 and ErrForbidden to 403; none of them carries the token text.
var (
	ErrNoToken      = errors.New("missing bearer token")
	ErrBadToken     = errors.New("invalid token")
	ErrExpiredToken = errors.New("token expired")
	ErrForbidden    = errors.New("token not allowed here")
	ErrRevokedToken = errors.New("token revoked")
	// ErrInsufficientScope is the ErrForbidden of a token that lacks the
	// scope a request needs (a step-up can fix it, RFC 6750 §3.1).
	ErrInsufficientScope = fmt.Errorf("%w: insufficient scope", ErrForbidden)
	// ErrWrongResource is the ErrBadToken of a token bound to another MCP
	// URL (RFC 8707): the client must get a token for this one.
	ErrWrongResource = fmt.Errorf("%w: token is for another resource", ErrBadToken)
)

// Issuer is the iss of every token tether-relay issues. A token with
// another iss is refused; one without iss (issued before tokens carried
// it) is accepted until it expires.
const Issuer = "tether-relay"

// DefaultAudience is the aud of a token issued without one named (the
// relay has no public URL). Every relay accepts it besides its own
// Verifier.Audiences; a token with any other aud is refused, and one
// without aud (issued before tokens carried it) is accepted.
const DefaultAudience = "tether-relay"

// maxIATSkew is how far in the future a token's iat may be: clocks of
// the issuing and the checking machine differ a little.
const maxIATSkew = time.Minute

// Claims is what the relay trusts from a verified token.
type Claims struct {
	Dev    string
	Scopes []string
	Expiry time.Time
	// ID names the token: its jti, or for a token without one a hash of
	// the token itself. Session ids are bound to it.
	ID string
	// Resource is, for a token bound to one MCP URL (an OAuth access
	// token, RFC 8707), that URL's path: /mcp/{dev}/{server}, or /mcp/{dev}
	// for all of a dev's servers. Empty for a relay-wide token.
	Resource string
	// Grant is, for an access token the relay's OAuth server issued, the
	// id of the grant (the user's approval) it was issued under; "" for
	// every other token.
	Grant string
}

// Principal is what sessions and per-token limits are bound to: the
// OAuth grant of an OAuth access token — which lives across refreshes,
// each of which mints a new jti — else the token's own ID. The token
// itself is still verified on every request, so an expired or revoked
// token (and every token of a revoked grant) is refused as before.
func (c Claims) Principal() string {
	if c.Grant != "" {
		return "grant:" + c.Grant
	}
	return c.ID
}

// owns reports whether a session bound to token (sessionClaims.Token)
// may be used with these claims. A session opened before sessions were
// bound to grants names the jti: still accepted for that same token.
func (c Claims) owns(token string) bool {
	return token != "" && (token == c.Principal() || token == c.ID)
}

// allowsMCP reports whether the token may call server of dev: every
// relay-wide token may (its dev is checked elsewhere), a resource-bound
// one only on its own resource.
func (c Claims) allowsMCP(dev, server string) bool {
	return c.Resource == "" || c.Resource == "/mcp/"+dev || c.Resource == "/mcp/"+dev+"/"+server
}

// HasScope reports whether the token was issued for scope.
func (c Claims) HasScope(scope string) bool { return slices.Contains(c.Scopes, scope) }

// scopes accepts both the JSON array Tether issues and the space-separated
// string OAuth-style issuers write, so hand-made TAG tokens still verify.
type scopes []string

func (s *scopes) UnmarshalJSON(b []byte) error {
	var list []string
	if err := json.Unmarshal(b, &list); err == nil {
		*s = list
		return nil
	}
	var one string
	if err := json.Unmarshal(b, &one); err != nil {
		return fmt.Errorf("scope must be a string or a list of strings: %w", err)
	}
	*s = strings.Fields(one)
	return nil
}

type tokenClaims struct {
	jwt.RegisteredClaims
	Scope scopes `json:"scope"`
	// Grant names the OAuth grant of an access token the relay issued.
	Grant string `json:"gid,omitempty"`
}

// Issue signs an HS256 token for dev with one scope, valid for ttl, for
// DefaultAudience.
func Issue(secret []byte, dev string, scope string, ttl time.Duration) (string, error) {
	tok, _, err := IssueToken(secret, TokenSpec{Dev: dev, Scope: scope, TTL: ttl}, time.Now())
	return tok, err
}

// TokenSpec is what IssueToken issues.
type TokenSpec struct {
	Dev, Scope string
	TTL        time.Duration
	// Audience is the relay the token is for, its public URL
	// (https://relay.example.com); empty means DefaultAudience.
	Audience string
	// Grant is the OAuth grant an access token is issued under (the gid
	// claim); "" for other tokens.
	Grant string
}

// IssueToken signs an HS256 token with a fresh random jti, iss Issuer and
// aud, and returns it with its record for the store (which holds no token).
func IssueToken(secret []byte, spec TokenSpec, now time.Time) (string, store.Token, error) {
	if len(secret) == 0 {
		return "", store.Token{}, errors.New("issue token: empty secret")
	}
	if err := checkDevID(spec.Dev); err != nil {
		return "", store.Token{}, fmt.Errorf("issue token: %w", err)
	}
	if spec.Scope != ScopeBridge && spec.Scope != ScopeClient {
		return "", store.Token{}, fmt.Errorf("issue token: scope %q is not %q or %q", spec.Scope, ScopeBridge, ScopeClient)
	}
	if spec.TTL <= 0 {
		return "", store.Token{}, fmt.Errorf("issue token: ttl %v must be positive", spec.TTL)
	}
	aud := normalizeAudience(spec.Audience)
	if aud == "" {
		aud = DefaultAudience
	}
	var raw [12]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", store.Token{}, fmt.Errorf("issue token: %w", err)
	}
	info := store.Token{JTI: base64.RawURLEncoding.EncodeToString(raw[:]), Kind: store.Kind(spec.Scope), Dev: spec.Dev,
		Scopes: []string{spec.Scope}, Audience: aud,
		Created: now.UTC().Truncate(time.Second), Expires: now.Add(spec.TTL).UTC().Truncate(time.Second)}
	claims := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			ID:        info.JTI,
			Issuer:    Issuer,
			Audience:  jwt.ClaimStrings{aud},
			Subject:   devPrefix + spec.Dev,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(spec.TTL)),
		},
		Scope: scopes{spec.Scope},
		Grant: spec.Grant,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	if err != nil {
		return "", store.Token{}, fmt.Errorf("issue token: %w", err)
	}
	return s, info, nil
}

// normalizeAudience drops a trailing slash, so https://r.example.com/ and
// https://r.example.com name the same relay.
func normalizeAudience(a string) string { return strings.TrimRight(strings.TrimSpace(a), "/") }

// checkDevID keeps dev ids usable as one URL path segment.
func checkDevID(dev string) error {
	if dev == "" {
		return errors.New("empty dev id")
	}
	if len(dev) > 128 {
		return errors.New("dev id longer than 128 characters")
	}
	for _, r := range dev {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
		if !ok {
			return fmt.Errorf("dev id %q may hold only letters, digits, '-', '_' and '.'", dev)
		}
	}
	return nil
}

// Verifier checks HS256 tokens signed with Secret. Now defaults to
// time.Now; tests set it to check expiry without waiting.
//
// Verified tokens are remembered (up to verifiedCacheMax of them), so a
// client that sends the same bearer token on every POST costs one map
// lookup and an expiry check instead of a base64 + JSON + HMAC parse per
// call, which was a third of the relay's per-call CPU. Secret must not
// change after the first Verify.
type Verifier struct {
	Secret []byte
	Now    func() time.Time
	// Audiences are the aud values this relay accepts besides
	// DefaultAudience: its public URLs.
	Audiences []string
	// Revocations, when set, refuses revoked tokens on every check and
	// collects when each token was last used.
	Revocations *Revocations

	mu       sync.Mutex
	verified map[string]Claims // token → claims it verified to
}

// verifiedCacheMax bounds the remembered tokens; when full the cache is
// dropped and refilled, which costs one full verify per live token.
const verifiedCacheMax = 4096

// Verify checks signature, algorithm (HS256 only: "none" and every other
// algorithm are refused), expiry and the subject's form.
func (v *Verifier) Verify(token string) (Claims, error) {
	if token == "" {
		return Claims{}, ErrNoToken
	}
	if len(v.Secret) == 0 {
		return Claims{}, fmt.Errorf("%w: relay has no secret", ErrBadToken)
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	v.mu.Lock()
	c, ok := v.verified[token]
	v.mu.Unlock()
	if ok {
		// Only expiry can change a verified token's fate (its signature,
		// subject and nbf held before and still hold).
		if !now().Before(c.Expiry) {
			v.forget(token)
			return Claims{}, ErrExpiredToken
		}
		if v.Revocations.Has(c.ID) {
			return Claims{}, ErrRevokedToken
		}
		v.Revocations.markUsed(c.ID, now())
		return c, nil
	}
	var tc tokenClaims
	_, err := jwt.ParseWithClaims(token, &tc,
		func(*jwt.Token) (any, error) { return v.Secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(now),
	)
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return Claims{}, ErrExpiredToken
	case err != nil:
		// jwt's messages name the failing check, never the token itself.
		return Claims{}, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	dev, ok := strings.CutPrefix(tc.Subject, devPrefix)
	if !ok || checkDevID(dev) != nil {
		return Claims{}, fmt.Errorf("%w: subject is not dev:<id>", ErrBadToken)
	}
	if tc.Issuer != "" && tc.Issuer != Issuer {
		return Claims{}, fmt.Errorf("%w: issuer %q is not %q", ErrBadToken, tc.Issuer, Issuer)
	}
	resource := ""
	if len(tc.Audience) > 0 && !slices.ContainsFunc(tc.Audience, v.acceptsAudience) {
		// Not the relay as a whole: it may be one of its MCP URLs.
		if len(tc.Audience) == 1 {
			resource = v.resourcePath(tc.Audience[0])
		}
		if resource == "" {
			return Claims{}, fmt.Errorf("%w: audience %v is not this relay", ErrBadToken, []string(tc.Audience))
		}
	}
	if tc.IssuedAt != nil && tc.IssuedAt.After(now().Add(maxIATSkew)) {
		return Claims{}, fmt.Errorf("%w: issued in the future (iat %s)", ErrBadToken, tc.IssuedAt.UTC().Format(time.RFC3339))
	}
	if resource != "" && !strings.HasPrefix(resource+"/", "/mcp/"+dev+"/") {
		return Claims{}, fmt.Errorf("%w: audience %s is not a resource of dev %s", ErrBadToken, tc.Audience[0], dev)
	}
	c = Claims{Dev: dev, Scopes: tc.Scope, Expiry: tc.ExpiresAt.Time, ID: tokenID(tc.ID, token), Resource: resource, Grant: tc.Grant}
	if v.Revocations.Has(c.ID) {
		return Claims{}, ErrRevokedToken
	}
	v.Revocations.markUsed(c.ID, now())
	v.remember(token, c)
	return c, nil
}

func (v *Verifier) acceptsAudience(aud string) bool {
	aud = normalizeAudience(aud)
	return aud == DefaultAudience || slices.ContainsFunc(v.Audiences, func(a string) bool { return normalizeAudience(a) == aud })
}

// resourcePath returns the path of aud when aud is an MCP URL of this
// relay (one of Audiences followed by /mcp/{dev} or /mcp/{dev}/{server}),
// else "".
func (v *Verifier) resourcePath(aud string) string {
	aud = normalizeAudience(aud)
	for _, a := range v.Audiences {
		rest, ok := strings.CutPrefix(aud, normalizeAudience(a))
		if !ok || !strings.HasPrefix(rest, "/mcp/") {
			continue
		}
		parts := strings.Split(strings.TrimPrefix(rest, "/mcp/"), "/")
		if len(parts) > 2 || checkDevID(parts[0]) != nil || len(parts) == 2 && parts[1] == "" {
			continue
		}
		return rest
	}
	return ""
}

// tokenID is jti when the token has one, else a hash of the token (which
// names it just as well, and is not the token).
func tokenID(jti, token string) string {
	if jti != "" {
		return "j:" + jti
	}
	h := sha256.Sum256([]byte(token))
	return "h:" + base64.RawURLEncoding.EncodeToString(h[:16])
}

func (v *Verifier) remember(token string, c Claims) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.verified == nil || len(v.verified) >= verifiedCacheMax {
		v.verified = make(map[string]Claims)
	}
	v.verified[token] = c
}

func (v *Verifier) forget(token string) {
	v.mu.Lock()
	delete(v.verified, token)
	v.mu.Unlock()
}

// bearer extracts the token from "Authorization: Bearer <token>".
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// authorize verifies the request's token and checks that it belongs to dev
// (when dev is not empty) and holds one of the scopes. It returns the HTTP
// status to answer with on failure: 401 for a missing, malformed, forged
// or expired token; 403 for a valid token that is not allowed here.
func (v *Verifier) authorize(r *http.Request, dev string, allowed ...string) (Claims, int, error) {
	c, err := v.Verify(bearer(r))
	if err != nil {
		return Claims{}, http.StatusUnauthorized, err
	}
	if dev != "" && c.Dev != dev {
		return Claims{}, http.StatusForbidden, fmt.Errorf("%w: token is for another dev", ErrForbidden)
	}
	if !slices.ContainsFunc(allowed, c.HasScope) {
		return Claims{}, http.StatusForbidden, fmt.Errorf("%w: token scope %v, need one of %v", ErrInsufficientScope, c.Scopes, allowed)
	}
	// A token bound to an MCP URL serves that URL and nothing else (not
	// the status API, not another server of the same dev).
	if c.Resource != "" && (r.PathValue("server") == "" || !c.allowsMCP(dev, r.PathValue("server"))) {
		return Claims{}, http.StatusUnauthorized, fmt.Errorf("%w (%s)", ErrWrongResource, c.Resource)
	}
	return c, 0, nil
}

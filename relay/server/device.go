package server

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tether-dev/tether/relay/store"
)

// The device authorization grant (RFC 8628) with its RFC 8414 metadata,
// and connect codes (connectcode.go): the two ways a computer gets a
// bridge token without anyone copying it by hand. The person's side is a
// page on the relay; who is signed in is not this file's business — the
// account code injects it as Device.User.

// GrantTypeDeviceCode is RFC 8628's grant type.
const GrantTypeDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"

// ClientTetherd is the OAuth client id tetherd (and the tray) use.
const ClientTetherd = "tetherd"

// Device flow timing (RFC 8628 §3.2, §3.5).
const (
	DeviceCodeTTL      = 10 * time.Minute
	DevicePollInterval = 5 * time.Second
	slowDownStep       = 5 * time.Second
	// DefaultDeviceTokenTTL is the life of a bridge token handed out by
	// the device flow or a connect code.
	DefaultDeviceTokenTTL = 90 * 24 * time.Hour
)

// userCodeAlphabet is RFC 8628 §6.1's example: 20 consonants, no vowels
// (no words), nothing that reads as another letter or digit.
const userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

// Errors of Approve and RedeemConnectCode.
var (
	ErrUnknownCode = errors.New("no such code")
	ErrCodeExpired = errors.New("code expired")
	ErrCodeUsed    = errors.New("code already used")
)

// Device serves the device authorization grant and connect codes. Set
// the fields, then mount it with Server.Device (or Routes on any mux).
type Device struct {
	// Store holds the device codes and the issued tokens' records. Required.
	Store *store.Store
	// Secret signs the bridge tokens (the Verifier's secret). Required.
	Secret []byte
	// PublicURL is the relay's public base URL: the metadata's issuer,
	// the verification_uri's base and the tokens' audience. Empty: taken
	// from each request (scheme and Host), for a relay without one.
	PublicURL string
	// TokenTTL is the life of the bridge tokens handed out (default DefaultDeviceTokenTTL).
	TokenTTL time.Duration
	// User returns the signed-in user of a page request. nil, or false:
	// nobody is signed in, and the page says sign-in is needed.
	User func(*http.Request) (userID string, ok bool)
	// CSRFToken and CSRFCheck protect the page's POSTs. nil: a token
	// derived from Secret, bound to the signed-in user and what the form
	// acts on, sent in the form field "csrf".
	CSRFToken func(r *http.Request, userID string) string
	CSRFCheck func(r *http.Request, userID string) bool
	// Interval is the polling interval handed to clients (default
	// DevicePollInterval; whole seconds, at least one).
	Interval time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time

	clientOK atomic.Bool // the tetherd OAuth client is registered

	mu    sync.Mutex
	polls map[string]*devicePoll // device hash → what the store does not keep
	ipHit map[string]*rateWindow // client IP → requests this window
}

// devicePoll is what the relay remembers of a device authorization in
// memory: who asked (for the approval page) and the polling pace. Lost
// on restart; the page then says the computer is unknown and the pace
// starts over, which is safe either way.
type devicePoll struct {
	name, version, ip string
	created, expires  time.Time
	lastPoll          time.Time
	interval          time.Duration
}

// rateWindow counts one IP's requests in a fixed window.
type rateWindow struct {
	start time.Time
	n     int
}

// Per-IP limits: device authorizations and connect-code redemptions (each
// costs a database write or a token) and approval-page POSTs (each is a
// guess at a user code).
const (
	ipWindow   = time.Minute
	ipMaxHits  = 20
	maxPending = 10000 // bound on devicePoll entries, against a flood from many IPs
)

// Routes mounts the device flow's and connect codes' endpoints on mux.
func (d *Device) Routes(mux *http.ServeMux) {
	// The metadata document and the token endpoint are shared with the
	// OAuth authorization server: Server registers them (asmeta.go).
	mux.HandleFunc("POST /oauth/device_authorization", d.handleDeviceAuthorization)
	mux.HandleFunc("GET /device", d.handlePage)
	mux.HandleFunc("POST /device", d.handlePageSubmit)
	mux.HandleFunc("GET /connect", d.handleConnectPage)
	mux.HandleFunc("POST /v1/connect-codes", d.handleConnectCode)
	mux.HandleFunc("POST /v1/connect-codes/redeem", d.handleRedeem)
}

func (d *Device) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Device) log() *slog.Logger {
	if d.Logger != nil {
		return d.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (d *Device) interval() time.Duration {
	if d.Interval >= time.Second {
		return d.Interval.Truncate(time.Second)
	}
	return DevicePollInterval
}

func (d *Device) tokenTTL() time.Duration {
	if d.TokenTTL > 0 {
		return d.TokenTTL
	}
	return DefaultDeviceTokenTTL
}

// base is the relay's public base URL, from PublicURL or the request.
func (d *Device) base(r *http.Request) string {
	if d.PublicURL != "" {
		return strings.TrimRight(d.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (d *Device) handleMetadata(w http.ResponseWriter, r *http.Request) {
	b := d.base(r)
	writeJSON(w, http.StatusOK, AuthServerMetadata{
		Issuer:                            b,
		DeviceAuthorizationEndpoint:       b + "/oauth/device_authorization",
		TokenEndpoint:                     b + "/oauth/token",
		GrantTypesSupported:               []string{GrantTypeDeviceCode},
		ResponseTypesSupported:            []string{},
		TokenEndpointAuthMethodsSupported: []string{"none"},
	})
}

// oauthError answers an RFC 6749 §5.2 error.
func oauthError(w http.ResponseWriter, code int, kind, desc string) {
	w.Header().Set("Cache-Control", "no-store")
	body := map[string]string{"error": kind}
	if desc != "" {
		body["error_description"] = desc
	}
	writeJSON(w, code, body)
}

// clientIP is the request's peer address without the port (a trusted
// proxy's wrapper in cmd/relay has already put the client's there).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// allowIP counts a request from ip and reports whether it is within the
// per-IP limit.
func (d *Device) allowIP(ip string) bool {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ipHit == nil {
		d.ipHit = map[string]*rateWindow{}
	}
	if len(d.ipHit) > maxPending {
		for k, v := range d.ipHit {
			if now.Sub(v.start) >= ipWindow {
				delete(d.ipHit, k)
			}
		}
	}
	rw := d.ipHit[ip]
	if rw == nil || now.Sub(rw.start) >= ipWindow {
		rw = &rateWindow{start: now}
		d.ipHit[ip] = rw
	}
	rw.n++
	return rw.n <= ipMaxHits
}

// ensureClient registers the tetherd OAuth client once (the device_codes
// table refers to it).
func (d *Device) ensureClient(ctx context.Context) error {
	if d.clientOK.Load() {
		return nil
	}
	err := d.Store.AddOAuthClient(ctx, store.OAuthClient{ID: ClientTetherd, Name: "Tether bridge", Created: d.now()})
	if err != nil && !errors.Is(err, store.ErrExists) {
		return err
	}
	d.clientOK.Store(true)
	return nil
}

// DeviceAuthorization is the RFC 8628 §3.2 answer.
type DeviceAuthorization struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int    `json:"expires_in"`
	Interval                int    `json:"interval"`
}

func (d *Device) handleDeviceAuthorization(w http.ResponseWriter, r *http.Request) {
	if !d.allowIP(clientIP(r)) {
		w.Header().Set("Retry-After", "60")
		oauthError(w, http.StatusTooManyRequests, "slow_down", "too many device authorizations from this address")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "unreadable form")
		return
	}
	if r.PostForm.Get("client_id") != ClientTetherd {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "unknown client_id")
		return
	}
	ctx := r.Context()
	if err := d.ensureClient(ctx); err != nil {
		d.log().Error("device authorization", "err", err)
		oauthError(w, http.StatusInternalServerError, "server_error", "")
		return
	}
	now := d.now()
	dc := store.DeviceCode{ClientID: ClientTetherd, Created: now, Expires: now.Add(DeviceCodeTTL)}
	var deviceCode string
	// A user code clashing with a live one is rare (20^8 codes); try again.
	for attempt := 0; ; attempt++ {
		deviceCode, dc.DeviceHash = newSecretCode()
		dc.UserCode = newUserCode()
		err := d.Store.AddDeviceCode(ctx, dc)
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrExists) || attempt == 3 {
			d.log().Error("device authorization", "err", err)
			oauthError(w, http.StatusInternalServerError, "server_error", "")
			return
		}
	}
	d.remember(dc, &devicePoll{
		name: clip(r.PostForm.Get("device_name"), 100), version: clip(r.PostForm.Get("version"), 40),
		ip: clientIP(r), created: now, expires: dc.Expires, interval: d.interval(),
	})
	b := d.base(r)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, DeviceAuthorization{
		DeviceCode: deviceCode, UserCode: dc.UserCode,
		VerificationURI:         b + "/device",
		VerificationURIComplete: b + "/device?user_code=" + url.QueryEscape(dc.UserCode),
		ExpiresIn:               int(DeviceCodeTTL / time.Second), Interval: int(d.interval() / time.Second),
	})
}

func (d *Device) remember(dc store.DeviceCode, p *devicePoll) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.polls == nil {
		d.polls = map[string]*devicePoll{}
	}
	if len(d.polls) >= maxPending {
		for k, v := range d.polls {
			if !p.created.Before(v.expires) {
				delete(d.polls, k)
			}
		}
	}
	d.polls[dc.DeviceHash] = p
}

// info returns a copy of what is remembered of a device authorization.
func (d *Device) info(hash string) (devicePoll, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, ok := d.polls[hash]
	if !ok {
		return devicePoll{}, false
	}
	return *p, true
}

// pace records a poll of hash and reports whether it came too soon, in
// which case the interval grows by 5 s (RFC 8628 §3.5).
func (d *Device) pace(hash string, dc store.DeviceCode) (tooSoon bool) {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.polls == nil {
		d.polls = map[string]*devicePoll{}
	}
	p := d.polls[hash]
	if p == nil {
		p = &devicePoll{created: dc.Created, expires: dc.Expires, interval: d.interval()}
		d.polls[hash] = p
	}
	last := p.lastPoll
	p.lastPoll = now
	if !last.IsZero() && now.Sub(last) < p.interval {
		p.interval += slowDownStep
		return true
	}
	return false
}

func (d *Device) forget(hash string) {
	d.mu.Lock()
	delete(d.polls, hash)
	d.mu.Unlock()
}

// TokenResponse is the RFC 6749 §5.1 answer of the token endpoint (and of
// a connect code's redemption).
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"` // authorization-code grant only
	Scope        string `json:"scope,omitempty"`
}

// handleToken redeems a device code. handleTokenEndpoint has read the form
// (bounded) and matched grant_type.
func (d *Device) handleToken(w http.ResponseWriter, r *http.Request) {
	code := r.PostForm.Get("device_code")
	if code == "" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "device_code is required")
		return
	}
	ctx := r.Context()
	hash := hashCode(code)
	dc, err := d.Store.DeviceCode(ctx, hash)
	switch {
	case errors.Is(err, store.ErrNotFound):
		oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown device_code")
		return
	case err != nil:
		d.log().Error("token", "err", err)
		oauthError(w, http.StatusInternalServerError, "server_error", "")
		return
	}
	if dc.ClientID != r.PostForm.Get("client_id") || isConnectCode(dc) {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "device_code was not issued to this client")
		return
	}
	switch {
	case dc.State == store.DeviceRedeemed:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "device_code already used")
		return
	case dc.State == store.DeviceDenied:
		d.forget(hash)
		oauthError(w, http.StatusBadRequest, "access_denied", "the request was denied")
		return
	case !d.now().Before(dc.Expires):
		d.forget(hash)
		oauthError(w, http.StatusBadRequest, "expired_token", "device_code expired")
		return
	case d.pace(hash, dc):
		oauthError(w, http.StatusBadRequest, "slow_down", "polling too fast")
		return
	case dc.State == store.DevicePending:
		oauthError(w, http.StatusBadRequest, "authorization_pending", "")
		return
	}
	// Approved: spend the code first (compare-and-set), so two polls at
	// once cannot both get a token.
	if err := d.Store.SetDeviceState(ctx, hash, store.DeviceApproved, store.DeviceRedeemed, ""); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "device_code already used")
		return
	}
	// The token is listed on the Tokens page under the computer's name,
	// so the person can tell it from others and revoke it.
	name := "tetherd login"
	if info, ok := d.info(hash); ok && info.name != "" {
		name = info.name + " (tetherd login)"
	}
	d.forget(hash)
	resp, err := d.issue(ctx, dc.UserID, "device", hash[:12], name)
	if err != nil {
		d.log().Error("token", "err", err)
		oauthError(w, http.StatusInternalServerError, "server_error", "")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, resp)
}

// issue signs a bridge token for userID's dev and records it under name
// (what the Tokens page lists it as).
func (d *Device) issue(ctx context.Context, userID, via, subject, name string) (TokenResponse, error) {
	ttl := d.tokenTTL()
	tok, rec, err := IssueToken(d.Secret, TokenSpec{Dev: userID, Scope: ScopeBridge, TTL: ttl, Audience: d.PublicURL}, d.now())
	if err != nil {
		return TokenResponse{}, err
	}
	rec.Name = name
	if err := d.Store.AddToken(ctx, rec); err != nil {
		return TokenResponse{}, err
	}
	if _, err := d.Store.AddAudit(ctx, store.AuditEvent{At: d.now(), Actor: "user:" + userID, Action: "token.issue",
		Subject: rec.JTI, Detail: "bridge token via " + via + " " + subject}); err != nil {
		d.log().Warn("audit", "err", err)
	}
	d.log().Info("bridge token issued", "dev", userID, "via", via, "jti", rec.JTI)
	return TokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int(ttl / time.Second)}, nil
}

// Approve approves (or denies) the pending device authorization with
// userCode on behalf of userID, the signed-in user: the next poll gets a
// bridge token for userID's dev (or access_denied).
func (d *Device) Approve(ctx context.Context, userCode, userID string, approve bool) error {
	uc, ok := NormalizeUserCode(userCode)
	if !ok {
		return fmt.Errorf("approve %q: %w", userCode, ErrUnknownCode)
	}
	dc, err := d.Store.DeviceCodeByUserCode(ctx, uc)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("approve %s: %w", uc, ErrUnknownCode)
	}
	if err != nil {
		return fmt.Errorf("approve %s: %w", uc, err)
	}
	if !d.now().Before(dc.Expires) {
		return fmt.Errorf("approve %s: %w", uc, ErrCodeExpired)
	}
	to, action := store.DeviceApproved, "device.approve"
	if !approve {
		to, action = store.DeviceDenied, "device.deny"
	}
	if err := d.Store.SetDeviceState(ctx, dc.DeviceHash, store.DevicePending, to, userID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("approve %s: %w", uc, ErrCodeUsed)
		}
		return fmt.Errorf("approve %s: %w", uc, err)
	}
	if _, err := d.Store.AddAudit(ctx, store.AuditEvent{At: d.now(), Actor: "user:" + userID, Action: action, Subject: uc}); err != nil {
		d.log().Warn("audit", "err", err)
	}
	return nil
}

// NormalizeUserCode turns what a person typed ("bcdf ghjk", "BCDFGHJK")
// into the stored form BCDF-GHJK; ok is false when it cannot be a user code.
func NormalizeUserCode(s string) (string, bool) {
	var b []byte
	for _, r := range strings.ToUpper(s) {
		switch {
		case strings.ContainsRune(userCodeAlphabet, r):
			b = append(b, byte(r))
		case r == '-' || r == ' ':
		default:
			return "", false
		}
	}
	if len(b) != 8 {
		return "", false
	}
	return string(b[:4]) + "-" + string(b[4:]), true
}

// newUserCode is 8 letters of userCodeAlphabet, XXXX-XXXX: 20^8 ≈ 2^34.6.
func newUserCode() string {
	raw := make([]byte, 8)
	out := make([]byte, 0, 9)
	for len(out) < 9 {
		rand.Read(raw)
		for _, c := range raw {
			// 240 = 12×20: reject above it so every letter is equally likely.
			if c >= 240 || len(out) == 9 {
				continue
			}
			if len(out) == 4 {
				out = append(out, '-')
			}
			out = append(out, userCodeAlphabet[int(c)%len(userCodeAlphabet)])
		}
	}
	return string(out)
}

// newSecretCode returns a fresh 256-bit code and the hash the store keeps.
func newSecretCode() (code, hash string) {
	var raw [32]byte
	rand.Read(raw[:])
	code = base64.RawURLEncoding.EncodeToString(raw[:])
	return code, hashCode(code)
}

func hashCode(code string) string {
	h := sha256.Sum256([]byte(code))
	return hex.EncodeToString(h[:])
}

// clip bounds a client-supplied label shown on the page.
func clip(s string, n int) string {
	s = strings.TrimSpace(s)
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// csrfToken and csrfOK are the default CSRF protection: an HMAC of the
// user and what the form acts on, under the relay's secret. Only a page
// the relay rendered for this user carries it.
func (d *Device) csrfToken(r *http.Request, userID, subject string) string {
	if d.CSRFToken != nil {
		return d.CSRFToken(r, userID)
	}
	mac := hmac.New(sha256.New, d.Secret)
	mac.Write([]byte("tether-csrf\x00" + userID + "\x00" + subject))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func (d *Device) csrfOK(r *http.Request, userID, subject string) bool {
	if d.CSRFCheck != nil {
		return d.CSRFCheck(r, userID)
	}
	return hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(d.csrfToken(r, userID, subject)))
}

func (d *Device) user(r *http.Request) (string, bool) {
	if d.User == nil {
		return "", false
	}
	id, ok := d.User(r)
	return id, ok && id != ""
}

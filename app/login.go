package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tether-dev/tether/keystore"
)

// Sign-in with the browser: the client half of the OAuth 2.0 Device
// Authorization Grant (RFC 8628) against the relay, and of connect codes.
// The computer never listens on a port: it asks the relay for a code,
// the person approves it in a browser where they are signed in to the
// relay, and the computer polls until the relay hands out a bridge token.

// Errors of a device login that end it; each message says what to do next.
var (
	ErrLoginDenied  = errors.New("the sign-in was denied in the browser; run the sign-in again if that was a mistake")
	ErrLoginExpired = errors.New("the code expired before it was approved; start the sign-in again and approve it within 10 minutes")
)

const grantTypeDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"

// loginClientID is the OAuth client id the relay knows tetherd by.
const loginClientID = "tetherd"

// LoginOptions tune a device login.
type LoginOptions struct {
	// HTTPClient; nil is a client with a 30 s timeout per request.
	HTTPClient *http.Client
	// DeviceName and Version are shown to the person who approves.
	DeviceName, Version string
	// After waits between polls (tests); nil is time.After.
	After func(time.Duration) <-chan time.Time
}

// DeviceLogin is a started device login: the code is known and the
// person can approve it; Wait polls for the token.
type DeviceLogin struct {
	// UserCode is what the person checks on the page (XXXX-XXXX).
	UserCode string
	// VerificationURI is the page; VerificationURIComplete the page with
	// the code filled in, to open in the browser.
	VerificationURI, VerificationURIComplete string
	// Expires is when the code stops working.
	Expires time.Time

	relayURL   string
	tokenURL   string
	deviceCode string
	interval   time.Duration
	hc         *http.Client
	after      func(time.Duration) <-chan time.Time
}

// authServerMetadata is the part of RFC 8414 metadata a login needs.
type authServerMetadata struct {
	Issuer                      string   `json:"issuer"`
	DeviceAuthorizationEndpoint string   `json:"device_authorization_endpoint"`
	TokenEndpoint               string   `json:"token_endpoint"`
	GrantTypesSupported         []string `json:"grant_types_supported"`
}

// StartLogin discovers the relay's endpoints and asks for a device code.
func StartLogin(ctx context.Context, relayURL string, opts LoginOptions) (*DeviceLogin, error) {
	base, err := loginBase(relayURL)
	if err != nil {
		return nil, err
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	var md authServerMetadata
	if err := getJSON(ctx, hc, base+"/.well-known/oauth-authorization-server", &md); err != nil {
		return nil, fmt.Errorf("the relay at %s does not offer sign-in with the browser (%w); paste a bridge token instead (tetherd token set)", base, err)
	}
	// The endpoints must be the relay's own: metadata that sent the
	// device code (and so the token) elsewhere is refused.
	for _, ep := range []string{md.DeviceAuthorizationEndpoint, md.TokenEndpoint} {
		if !sameOrigin(ep, base) {
			return nil, fmt.Errorf("the relay's sign-in endpoint %q is not on %s", ep, base)
		}
	}
	form := url.Values{"client_id": {loginClientID}}
	if opts.DeviceName != "" {
		form.Set("device_name", opts.DeviceName)
	}
	if opts.Version != "" {
		form.Set("version", opts.Version)
	}
	var da struct {
		DeviceCode              string `json:"device_code"`
		UserCode                string `json:"user_code"`
		VerificationURI         string `json:"verification_uri"`
		VerificationURIComplete string `json:"verification_uri_complete"`
		ExpiresIn               int    `json:"expires_in"`
		Interval                int    `json:"interval"`
	}
	if status, oe, err := postForm(ctx, hc, md.DeviceAuthorizationEndpoint, form, &da); err != nil {
		return nil, fmt.Errorf("asking the relay for a sign-in code: %w", err)
	} else if status != http.StatusOK {
		return nil, fmt.Errorf("asking the relay for a sign-in code: %s", oe)
	}
	if da.DeviceCode == "" || da.UserCode == "" || !sameOrigin(da.VerificationURI, base) {
		return nil, errors.New("the relay's answer to the sign-in request is incomplete")
	}
	if da.VerificationURIComplete == "" || !sameOrigin(da.VerificationURIComplete, base) {
		da.VerificationURIComplete = da.VerificationURI
	}
	interval := time.Duration(da.Interval) * time.Second
	if interval <= 0 {
		interval = 5 * time.Second // RFC 8628 §3.2's default
	}
	after := opts.After
	if after == nil {
		after = time.After
	}
	return &DeviceLogin{
		UserCode: da.UserCode, VerificationURI: da.VerificationURI, VerificationURIComplete: da.VerificationURIComplete,
		Expires:  time.Now().Add(time.Duration(da.ExpiresIn) * time.Second),
		relayURL: base, tokenURL: md.TokenEndpoint, deviceCode: da.DeviceCode, interval: interval, hc: hc, after: after,
	}, nil
}

// Wait polls the relay until the code is approved (the bridge token),
// denied (ErrLoginDenied), expired (ErrLoginExpired) or ctx ends. It
// keeps the pace the relay asks for: the interval, 5 s more on each
// slow_down, and a longer wait after a network error.
func (l *DeviceLogin) Wait(ctx context.Context) (keystore.Token, error) {
	interval := l.interval
	for {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-l.after(interval):
		}
		var tr struct {
			AccessToken string `json:"access_token"`
			TokenType   string `json:"token_type"`
		}
		status, oe, err := postForm(ctx, l.hc, l.tokenURL, url.Values{
			"grant_type": {grantTypeDeviceCode}, "device_code": {l.deviceCode}, "client_id": {loginClientID},
		}, &tr)
		switch {
		case ctx.Err() != nil:
			return "", ctx.Err()
		case err != nil || status >= 500:
			// The relay or the network is down for a moment: back off
			// (RFC 8628 §3.5) and try again until the code expires.
			if !time.Now().Before(l.Expires) {
				return "", ErrLoginExpired
			}
			interval = min(interval*2, time.Minute)
			continue
		case status == http.StatusOK:
			tok := keystore.Token(strings.TrimSpace(tr.AccessToken))
			if !strings.EqualFold(tr.TokenType, "Bearer") || tok == "" {
				return "", fmt.Errorf("the relay answered with a %q token, not a bridge token", tr.TokenType)
			}
			return l.check(tok)
		}
		switch oe.Code {
		case "authorization_pending":
		case "slow_down":
			interval += 5 * time.Second
		case "access_denied":
			return "", ErrLoginDenied
		case "expired_token":
			return "", ErrLoginExpired
		default:
			return "", fmt.Errorf("the relay refused the sign-in: %s; start it again", oe)
		}
	}
}

// check refuses a token that cannot serve as this relay's bridge token.
func (l *DeviceLogin) check(tok keystore.Token) (keystore.Token, error) {
	if _, err := CheckBridgeToken(tok, time.Now()); err != nil {
		return "", fmt.Errorf("the relay handed out a token that does not work here: %w", err)
	}
	if err := CheckTokenAudience(tok, l.relayURL); err != nil {
		return "", err
	}
	return tok, nil
}

// RedeemConnectCode exchanges a connect code (from a tether://connect
// link) for a bridge token at the relay. The code travels only in the
// POST body, over HTTPS (http only to this machine).
func RedeemConnectCode(ctx context.Context, hc *http.Client, relayURL, code string) (keystore.Token, error) {
	base, err := loginBase(relayURL)
	if err != nil {
		return "", err
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	status, oe, err := postForm(ctx, hc, base+"/v1/connect-codes/redeem", url.Values{"code": {code}, "client_id": {loginClientID}}, &tr)
	if err != nil {
		return "", fmt.Errorf("redeeming the connect code at %s: %w", base, err)
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("the relay refused the connect code: %s", oe)
	}
	l := DeviceLogin{relayURL: base}
	return l.check(keystore.Token(strings.TrimSpace(tr.AccessToken)))
}

// loginBase checks a relay URL for sign-in: https, or http to this
// machine only (a login over plain http off loopback would hand the token
// to whoever is on the path), and returns it without a trailing slash.
func loginBase(relayURL string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(relayURL))
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("%q is not a relay URL (https://relay.example.com)", relayURL)
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !IsLoopbackHost(u.Hostname()) {
			return "", fmt.Errorf("sign-in needs the relay's https:// URL: %s would carry the token in clear", redactRelayURL(relayURL))
		}
	case "wss", "ws":
		u.Scheme = "http" + strings.TrimPrefix(strings.ToLower(u.Scheme), "ws")
		return loginBase(u.String())
	default:
		return "", fmt.Errorf("%q is not a relay URL (https://relay.example.com)", relayURL)
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return strings.TrimRight(u.String(), "/"), nil
}

func sameOrigin(a, base string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(base)
	return err1 == nil && err2 == nil && strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Host, ub.Host)
}

// oauthErr is an RFC 6749 §5.2 error answer.
type oauthErr struct {
	Code        string `json:"error"`
	Description string `json:"error_description"`
	status      int
}

func (e oauthErr) String() string {
	switch {
	case e.Code == "" && e.status != 0:
		return fmt.Sprintf("HTTP %d", e.status)
	case e.Description != "":
		return e.Code + ": " + e.Description
	}
	return e.Code
}

// postForm posts form and decodes a 200 answer into out, or an error
// answer into the returned oauthErr.
func postForm(ctx context.Context, hc *http.Client, endpoint string, form url.Values, out any) (int, oauthErr, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, oauthErr{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, oauthErr{}, err
	}
	defer resp.Body.Close()
	body := io.LimitReader(resp.Body, 64<<10)
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(body).Decode(out); err != nil {
			return resp.StatusCode, oauthErr{}, fmt.Errorf("unreadable answer: %w", err)
		}
		return resp.StatusCode, oauthErr{}, nil
	}
	oe := oauthErr{status: resp.StatusCode}
	_ = json.NewDecoder(body).Decode(&oe)
	return resp.StatusCode, oe, nil
}

func getJSON(ctx context.Context, hc *http.Client, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(out)
}

package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tether-dev/tether/relay/store"
)

// Connect codes: the web page's "Connect this computer" button. The
// signed-in user mints a short-lived single-use code; the page opens
// tether://connect?relay=URL&code=CODE; the tray redeems the code here
// for a bridge token. The link never carries the token, so a link that
// leaks (browser history, a screen share) is worth nothing after two
// minutes or one use.
//
// A connect code is kept as a device authorization approved at birth:
// the device code's hash is the connect code's, its user code is not of
// the typed XXXX-XXXX form (so it cannot be entered on /device), and
// redeeming it is the same approved → redeemed compare-and-set.

// ConnectCodeTTL is how long a connect code can be redeemed.
const ConnectCodeTTL = 2 * time.Minute

const connectUserCodePrefix = "connect-"

func isConnectCode(dc store.DeviceCode) bool {
	return strings.HasPrefix(dc.UserCode, connectUserCodePrefix)
}

// ConnectCode is the answer of POST /v1/connect-codes.
type ConnectCode struct {
	Code      string `json:"code"`
	URL       string `json:"url"` // tether://connect?relay=…&code=…
	ExpiresIn int    `json:"expires_in"`
}

// NewConnectCode mints a connect code for userID's dev.
func (d *Device) NewConnectCode(ctx context.Context, userID, relayURL string) (ConnectCode, error) {
	if err := d.ensureClient(ctx); err != nil {
		return ConnectCode{}, fmt.Errorf("connect code: %w", err)
	}
	now := d.now()
	code, hash := newSecretCode()
	var tag [8]byte
	rand.Read(tag[:])
	dc := store.DeviceCode{DeviceHash: hash, UserCode: connectUserCodePrefix + hex.EncodeToString(tag[:]),
		ClientID: ClientTetherd, Created: now, Expires: now.Add(ConnectCodeTTL)}
	if err := d.Store.AddDeviceCode(ctx, dc); err != nil {
		return ConnectCode{}, fmt.Errorf("connect code: %w", err)
	}
	if err := d.Store.SetDeviceState(ctx, hash, store.DevicePending, store.DeviceApproved, userID); err != nil {
		return ConnectCode{}, fmt.Errorf("connect code: %w", err)
	}
	q := url.Values{"relay": {relayURL}, "code": {code}}
	return ConnectCode{Code: code, URL: "tether://connect?" + q.Encode(), ExpiresIn: int(ConnectCodeTTL / time.Second)}, nil
}

// RedeemConnectCode spends a connect code and returns a bridge token for
// the dev of the user who minted it.
func (d *Device) RedeemConnectCode(ctx context.Context, code string) (TokenResponse, error) {
	hash := hashCode(code)
	dc, err := d.Store.DeviceCode(ctx, hash)
	if errors.Is(err, store.ErrNotFound) || err == nil && !isConnectCode(dc) {
		return TokenResponse{}, ErrUnknownCode
	}
	if err != nil {
		return TokenResponse{}, fmt.Errorf("redeem: %w", err)
	}
	if dc.State != store.DeviceApproved {
		return TokenResponse{}, ErrCodeUsed
	}
	if !d.now().Before(dc.Expires) {
		return TokenResponse{}, ErrCodeExpired
	}
	if err := d.Store.SetDeviceState(ctx, hash, store.DeviceApproved, store.DeviceRedeemed, ""); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return TokenResponse{}, ErrCodeUsed
		}
		return TokenResponse{}, fmt.Errorf("redeem: %w", err)
	}
	return d.issue(ctx, dc.UserID, "connect code", dc.UserCode, "Connect this computer")
}

const connectSubject = "connect-codes"

// handleConnectCode mints a code for the signed-in user. A JSON caller
// (the page's script) gets ConnectCode; a plain form post gets a page
// that opens the tether:// link.
func (d *Device) handleConnectCode(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	_ = r.ParseForm()
	uid, ok := d.user(r)
	if !ok {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "sign in first"})
		return
	}
	if !d.csrfOK(r, uid, connectSubject) {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "form expired; reload the page"})
		return
	}
	cc, err := d.NewConnectCode(r.Context(), uid, d.base(r))
	if err != nil {
		d.log().Error("connect code", "err", err)
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "could not make a connect code"})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		writeJSON(w, http.StatusOK, cc)
		return
	}
	securePage(w, true)
	connectTmpl.Execute(w, map[string]any{"URL": template.URL(cc.URL)})
}

// handleConnectPage is the "Connect this computer" button for the
// signed-in user (the account pages may carry the same form).
func (d *Device) handleConnectPage(w http.ResponseWriter, r *http.Request) {
	securePage(w, true)
	uid, ok := d.user(r)
	p := map[string]any{"SignIn": !ok}
	if ok {
		p["User"], p["CSRF"] = uid, d.csrfToken(r, uid, connectSubject)
	}
	connectButtonTmpl.Execute(w, p)
}

var connectButtonTmpl = pageTemplate("connect-button", `{{template "top" "Connect this computer"}}
<h1>Connect this computer</h1>
{{if .SignIn}}<p><a href="/?return=/connect">Sign in to the relay</a> first.</p>
{{else}}<p>Opens the Tether app on this computer and connects its bridge as <strong>{{.User}}</strong>. The Tether menu asks you to confirm.</p>
<form method="post" action="/v1/connect-codes"><input type="hidden" name="csrf" value="{{.CSRF}}">
<button type="submit">Connect this computer</button></form>
<p>On a computer without the Tether app, run <code>tetherd login</code> instead.</p>{{end}}
{{template "bottom"}}`)

func (d *Device) handleRedeem(w http.ResponseWriter, r *http.Request) {
	if !d.allowIP(clientIP(r)) {
		w.Header().Set("Retry-After", "60")
		oauthError(w, http.StatusTooManyRequests, "slow_down", "too many attempts from this address")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "unreadable form")
		return
	}
	resp, err := d.RedeemConnectCode(r.Context(), r.PostForm.Get("code"))
	switch {
	case errors.Is(err, ErrUnknownCode), errors.Is(err, ErrCodeUsed):
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the connect code is unknown or already used; make a new one on the relay's page")
		return
	case errors.Is(err, ErrCodeExpired):
		oauthError(w, http.StatusBadRequest, "expired_token", "the connect code expired; make a new one on the relay's page")
		return
	case err != nil:
		d.log().Error("redeem connect code", "err", err)
		oauthError(w, http.StatusInternalServerError, "server_error", "")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, resp)
}

// connectTmpl opens the link at once: app.js follows a[data-open-now].
var connectTmpl = pageTemplate("connect", `{{template "top" "Connect this computer"}}
<h1>Connect this computer</h1>
<p>Your browser should now ask to open Tether. If nothing happens, <a id="open" data-open-now href="{{.URL}}">open Tether</a>.</p>
<p>The link works once, for two minutes.</p>
{{template "bottom"}}`)

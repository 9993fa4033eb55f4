package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/tether-dev/tether/relay/store"
)

// handleToken serves the authorization-code and refresh grants;
// handleTokenEndpoint has read the form (bounded).
func (o *oauthServer) handleToken(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	clientID := f.Get("client_id")
	if user, _, ok := r.BasicAuth(); ok && clientID == "" {
		// A client that sends its id as Basic auth with an empty secret.
		clientID, _ = url.QueryUnescape(user)
	}
	if clientID == "" {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client_id is required")
		return
	}
	switch f.Get("grant_type") {
	case "authorization_code":
		o.redeemCode(w, r, clientID, f)
	case "refresh_token":
		o.refresh(w, r, clientID, f)
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
	}
}

func (o *oauthServer) redeemCode(w http.ResponseWriter, r *http.Request, clientID string, f url.Values) {
	ctx, now := r.Context(), o.s.clock()
	code, err := o.cfg.Store.RedeemOAuthCode(ctx, hashSecret(f.Get("code")), now)
	if errors.Is(err, store.ErrSpent) {
		// A code used twice was stolen, or the first use was: everything
		// issued from it dies (RFC 6749 §4.1.2).
		o.revokeFamily(r, code.GrantID, "authorization code reused")
		oauthError(w, http.StatusBadRequest, "invalid_grant", "authorization code already used")
		return
	}
	if err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown authorization code")
		return
	}
	g, err := o.cfg.Store.OAuthGrant(ctx, code.GrantID)
	switch {
	case err != nil:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown authorization code")
	case g.ClientID != clientID:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the code was issued to another client")
	case !now.Before(code.Expires):
		oauthError(w, http.StatusBadRequest, "invalid_grant", "authorization code expired")
	case !grantLive(g, now):
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the grant was revoked")
	case f.Get("redirect_uri") != g.RedirectURI:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri differs from the authorization request's")
	case !pkceOK(f.Get("code_verifier"), code.CodeChallenge):
		oauthError(w, http.StatusBadRequest, "invalid_grant", "code_verifier does not match the code_challenge")
	case f.Has("resource") && normalizeAudience(f.Get("resource")) != g.Resource:
		oauthError(w, http.StatusBadRequest, "invalid_target", "resource differs from the authorized one")
	default:
		o.issue(w, r, g, now)
	}
}

// pkceOK checks an S256 verifier (RFC 7636 §4.6) in constant time.
func pkceOK(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	h := sha256.Sum256([]byte(verifier))
	return subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(h[:])), []byte(challenge)) == 1
}

func (o *oauthServer) refresh(w http.ResponseWriter, r *http.Request, clientID string, f url.Values) {
	ctx, now := r.Context(), o.s.clock()
	rt, err := o.cfg.Store.SpendOAuthRefresh(ctx, hashSecret(f.Get("refresh_token")), now)
	if errors.Is(err, store.ErrSpent) {
		// Rotation means a refresh token is used once; a second use is a
		// copy in someone else's hands. Revoke the family (RFC 9700 §4.14.2).
		o.revokeFamily(r, rt.GrantID, "refresh token reused")
		oauthError(w, http.StatusBadRequest, "invalid_grant", "refresh token already used; the grant is revoked")
		return
	}
	if err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown refresh token")
		return
	}
	g, err := o.cfg.Store.OAuthGrant(ctx, rt.GrantID)
	switch {
	case err != nil:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown refresh token")
	case g.ClientID != clientID:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the refresh token was issued to another client")
	case !now.Before(rt.Expires):
		oauthError(w, http.StatusBadRequest, "invalid_grant", "refresh token expired")
	case !grantLive(g, now):
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the grant was revoked or is older than 90 days")
	case f.Has("resource") && normalizeAudience(f.Get("resource")) != g.Resource:
		oauthError(w, http.StatusBadRequest, "invalid_target", "resource differs from the authorized one")
	default:
		o.issue(w, r, g, now)
	}
}

// issue mints an access token (the relay's own, bound to the grant's
// resource) and a fresh refresh token.
func (o *oauthServer) issue(w http.ResponseWriter, r *http.Request, g store.OAuthGrant, now time.Time) {
	ctx := r.Context()
	tok, rec, err := IssueToken(o.s.Verifier.Secret, TokenSpec{Dev: g.UserID, Scope: ScopeClient, TTL: accessTTL, Audience: g.Resource, Grant: g.ID}, now)
	if err == nil {
		err = o.cfg.Store.AddGrantToken(ctx, g.ID, rec)
	}
	refresh := secret(32)
	if err == nil {
		exp := now.Add(refreshIdle)
		if end := g.Created.Add(grantMaxAge); end.Before(exp) {
			exp = end
		}
		err = o.cfg.Store.AddOAuthRefresh(ctx, store.OAuthRefresh{Hash: hashSecret(refresh), GrantID: g.ID, Created: now, Expires: exp})
	}
	if err != nil {
		o.s.log.Error("oauth issue", "grant", g.ID, "err", err)
		oauthError(w, http.StatusInternalServerError, "server_error", "could not issue a token")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, TokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int(accessTTL / time.Second),
		RefreshToken: refresh, Scope: g.Scope})
}

// revokeFamily revokes a grant and everything issued under it, and drops
// its access tokens from this relay at once (other relays on the same
// store drop them on their next revocation poll).
func (o *oauthServer) revokeFamily(r *http.Request, grantID, why string) {
	if grantID == "" {
		return
	}
	if err := o.cfg.Store.RevokeOAuthGrant(r.Context(), grantID, o.s.clock()); err != nil {
		o.s.log.Error("oauth revoke grant", "grant", grantID, "err", err)
		return
	}
	o.audit(r.Context(), "relay", "oauth.revoke", grantID, why)
	o.s.log.Warn("oauth grant revoked", "grant", grantID, "why", why)
	if rv := o.s.Verifier.Revocations; rv != nil {
		if err := rv.Refresh(r.Context()); err != nil {
			o.s.log.Warn("revocations refresh", "err", err)
		}
	}
}

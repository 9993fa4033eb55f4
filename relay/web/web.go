// Package web is tether-relay's web page: sign-in (one-time links,
// passkeys first and passwords as the fallback), "My bridge" (live over SSE) and the tokens page. It is
// server-rendered html/template with one CSS and one small JS file, all
// embedded; the Content-Security-Policy allows no inline script.
//
// Sessions live in the store (a cookie holds a random id; the store holds
// its hash), every POST carries the session's CSRF token and is refused
// when its Origin is not the relay's own.
package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/tether-dev/tether/relay/server"
	"github.com/tether-dev/tether/relay/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

const (
	sessionCookie = "tether_session"
	// preCSRFCookie carries the anti-forgery token of the forms shown
	// before there is a session (sign-in, set password).
	preCSRFCookie = "tether_csrf"

	// SessionTTL is how long a sign-in lasts.
	SessionTTL = 7 * 24 * time.Hour
	// maxForm bounds a form POST's body.
	maxForm = 64 << 10

	// LinkTTL is how long a sign-in link from `tether-relay user add` works.
	LinkTTL = 15 * time.Minute
)

// Config is what New needs.
type Config struct {
	Store *store.Store
	// Relay is the relay this page belongs to: its bridges, its token
	// secret and revocations.
	Relay *server.Server
	// PublicURL is the relay's public base URL (https://relay.example.com).
	// It is the only Origin accepted on a POST, the base of the URLs the
	// page shows, and when it is https the cookies are Secure. Empty: the
	// request's own scheme and Host (a relay on loopback).
	PublicURL string
	Logger    *slog.Logger
	// Limits of sign-in attempts; zero fields take the defaults.
	Limits Limits
	// AuthHeader, when set, names a request header (X-Forwarded-User)
	// that an authenticating proxy in front of the relay (an OIDC proxy)
	// fills with the signed-in user's id: a request carrying it is that
	// user, if the account exists. The caller must strip the header from
	// requests that did not come through that proxy (cmd/relay does, and
	// requires --trusted-proxy for it).
	AuthHeader string
}

// Web serves the page. Create it with New; it is an http.Handler.
type Web struct {
	st        *store.Store
	relay     *server.Server
	publicURL string
	log       *slog.Logger
	limits    *attemptLimits
	authHdr   string
	pages     map[string]*template.Template
	mux       *http.ServeMux
	now       func() time.Time

	closeOnce sync.Once
	done      chan struct{} // closed by Close: ends the event streams
}

// New builds the page's handler.
func New(c Config) (*Web, error) {
	if c.Store == nil || c.Relay == nil || c.Relay.Verifier == nil {
		return nil, errors.New("web: Store, Relay and Relay.Verifier are required")
	}
	pub := strings.TrimRight(c.PublicURL, "/")
	if pub != "" {
		if u, err := url.Parse(pub); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("web: public URL %q is not http(s)://host", c.PublicURL)
		}
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Web{st: c.Store, relay: c.Relay, publicURL: pub, log: log, limits: newAttemptLimits(c.Limits),
		authHdr: c.AuthHeader,
		now:     time.Now, done: make(chan struct{})}
	if err := w.parseTemplates(); err != nil {
		return nil, err
	}
	static, _ := fs.Sub(staticFS, "static")
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.Handle("GET /favicon.ico", http.RedirectHandler("/static/icon.svg", http.StatusMovedPermanently))
	mux.HandleFunc("GET /{$}", w.handleHome)
	mux.HandleFunc("POST /signin", w.handleSignIn)
	mux.HandleFunc("GET /signin/link/{code}", w.handleLinkPage)
	mux.HandleFunc("POST /signin/link", w.handleLinkSubmit)
	mux.HandleFunc("POST /signin/link/passkey/begin", w.handleLinkPasskeyBegin)
	mux.HandleFunc("POST /signin/link/passkey/finish", w.handleLinkPasskeyFinish)
	mux.HandleFunc("POST /signin/passkey/begin", w.handlePasskeySignInBegin)
	mux.HandleFunc("POST /signin/passkey/finish", w.handlePasskeySignInFinish)
	mux.Handle("GET /account", w.SignedIn(w.handleAccount))
	mux.Handle("POST /account/passkeys/begin", w.SignedIn(w.handleAddPasskeyBegin))
	mux.Handle("POST /account/passkeys/finish", w.SignedIn(w.handleAddPasskeyFinish))
	mux.Handle("POST /account/passkeys/remove", w.SignedIn(w.handleRemovePasskey))
	mux.Handle("POST /account/password", w.SignedIn(w.handleSetPassword))
	mux.Handle("POST /signout", w.SignedIn(w.handleSignOut))
	mux.Handle("GET /tokens", w.SignedIn(w.handleTokens))
	mux.Handle("POST /tokens", w.SignedIn(w.handleCreateToken))
	mux.Handle("POST /tokens/revoke", w.SignedIn(w.handleRevoke))
	mux.Handle("GET /events", w.SignedIn(w.handleEvents))
	w.mux = mux
	return w, nil
}

// Handle mounts h at pattern on the page's mux, with the page's security
// headers; wrap h in SignedIn to require a signed-in user.
func (w *Web) Handle(pattern string, h http.Handler) { w.mux.Handle(pattern, h) }

// Close ends the open event streams (the relay is shutting down).
func (w *Web) Close() { w.closeOnce.Do(func() { close(w.done) }) }

// ServeHTTP implements http.Handler.
func (w *Web) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	h := rw.Header()
	// No inline script or style anywhere: everything comes from /static.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	// Sign-in links carry their code in the path: never send it to
	// another site. Not "no-referrer": with it Chromium sends "Origin:
	// null" on the page's own form POSTs, which the Origin check refuses.
	h.Set("Referrer-Policy", "same-origin")
	// A page on a name the relay does not have is a DNS rebinding
	// attempt: its origin would look like the relay's own.
	if !w.relay.HostAllowed(r.Host) {
		http.Error(rw, "this relay does not answer to that host name (see --public-url)", http.StatusMisdirectedRequest)
		return
	}
	if r.Method == http.MethodPost {
		if !w.sameOrigin(r) {
			http.Error(rw, "cross-origin request refused", http.StatusForbidden)
			return
		}
		r.Body = http.MaxBytesReader(rw, r.Body, maxForm)
	}
	w.mux.ServeHTTP(rw, r)
}

// origin is the relay's own origin as the browser names it.
func (w *Web) origin(r *http.Request) string {
	if w.publicURL != "" {
		u, _ := url.Parse(w.publicURL)
		return u.Scheme + "://" + u.Host
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// baseURL is what the page shows as the relay's URL.
func (w *Web) baseURL(r *http.Request) string {
	if w.publicURL != "" {
		return w.publicURL
	}
	return w.origin(r)
}

// sameOrigin refuses a POST a browser sent from another site. Browsers
// send Origin on every POST; a request without one (not from a browser)
// still needs the CSRF token.
func (w *Web) sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		return o == w.origin(r)
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return true
	}
	return false
}

// secure reports whether cookies must be Secure: the browser reached the
// relay over TLS (directly, or through a trusted proxy that says so).
func (w *Web) secure(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(w.publicURL, "https://")
}

func (w *Web) setCookie(rw http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) {
	c := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: w.secure(r), SameSite: http.SameSiteLaxMode}
	if maxAge > 0 {
		c.MaxAge = int(maxAge.Seconds())
	} else {
		c.MaxAge = -1
	}
	http.SetCookie(rw, c)
}

// randomToken returns n random bytes, base64url.
func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashSecret is how secrets (link codes, session ids) are stored: a
// SHA-256, enough for 32 random bytes, so a leaked database lets no one in.
func hashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func equalSecret(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// session returns the request's session, if it has a live one: the
// trusted proxy's header, or the session cookie.
func (w *Web) session(r *http.Request) (store.WebSession, store.User, bool) {
	if id := r.Header.Get(w.authHdr); w.authHdr != "" && id != "" {
		u, err := w.st.User(r.Context(), id)
		if err != nil || !u.Disabled.IsZero() {
			return store.WebSession{}, store.User{}, false
		}
		return store.WebSession{UserID: u.ID, CSRF: w.headerCSRF(u.ID)}, u, true
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return store.WebSession{}, store.User{}, false
	}
	sess, err := w.st.WebSession(r.Context(), hashSecret(c.Value), w.now())
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			w.log.Warn("reading a web session failed", "err", err)
		}
		return store.WebSession{}, store.User{}, false
	}
	u, err := w.st.User(r.Context(), sess.UserID)
	if err != nil || !u.Disabled.IsZero() {
		return store.WebSession{}, store.User{}, false
	}
	return sess, u, true
}

// headerCSRF is the CSRF token of a user signed in by the proxy's
// header, who has no session to hold one: an HMAC of the user id under
// the relay's secret, which no other site can compute.
func (w *Web) headerCSRF(userID string) string {
	m := hmac.New(sha256.New, w.relay.Verifier.Secret)
	m.Write([]byte("tether-relay web csrf\x00" + userID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CurrentUser returns the signed-in user of the request.
func (w *Web) CurrentUser(r *http.Request) (store.User, bool) {
	_, u, ok := w.session(r)
	return u, ok
}

type ctxKey struct{}

type signedIn struct {
	sess store.WebSession
	user store.User
}

// CSRFToken returns the token a form on a SignedIn page must carry in its
// "csrf" field ("" outside SignedIn).
func CSRFToken(r *http.Request) string {
	si, _ := r.Context().Value(ctxKey{}).(signedIn)
	return si.sess.CSRF
}

// SignedIn wraps a handler that needs a signed-in user: without one, a
// GET is sent to the sign-in page and anything else gets 401; a POST must
// carry the session's CSRF token in the form field "csrf" (403 if not).
func (w *Web) SignedIn(h func(http.ResponseWriter, *http.Request, store.User)) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		sess, u, ok := w.session(r)
		if !ok {
			if r.Method == http.MethodGet {
				http.Redirect(rw, r, "/", http.StatusSeeOther)
				return
			}
			http.Error(rw, "sign in first", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost && !equalSecret(r.PostFormValue("csrf"), sess.CSRF) {
			http.Error(rw, "missing or wrong CSRF token; reload the page", http.StatusForbidden)
			return
		}
		rw.Header().Set("Cache-Control", "no-store")
		h(rw, r.WithContext(context.WithValue(r.Context(), ctxKey{}, signedIn{sess, u})), u)
	})
}

// startSession signs the user in on this browser.
func (w *Web) startSession(rw http.ResponseWriter, r *http.Request, userID string) error {
	id := randomToken(32)
	now := w.now()
	if err := w.st.AddWebSession(r.Context(), store.WebSession{Hash: hashSecret(id), UserID: userID, CSRF: randomToken(32),
		Created: now, Expires: now.Add(SessionTTL)}); err != nil {
		return err
	}
	// Expired sessions are deleted by the relay's janitor (server.Janitor).
	// An old session cookie of this browser is replaced, never reused
	// (no session fixation).
	w.setCookie(rw, r, sessionCookie, id, SessionTTL)
	w.setCookie(rw, r, preCSRFCookie, "", 0)
	w.audit(r.Context(), userID, "web.signin", userID, "from="+r.RemoteAddr)
	return nil
}

func (w *Web) handleSignOut(rw http.ResponseWriter, r *http.Request, u store.User) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if err := w.st.DeleteWebSession(r.Context(), hashSecret(c.Value)); err != nil {
			w.log.Warn("ending a web session failed", "err", err)
		}
	}
	w.setCookie(rw, r, sessionCookie, "", 0)
	http.Redirect(rw, r, "/", http.StatusSeeOther)
}

func (w *Web) audit(ctx context.Context, userID, action, subject, detail string) {
	if _, err := w.st.AddAudit(ctx, store.AuditEvent{At: w.now(), Actor: "user:" + userID, Action: action, Subject: subject, Detail: detail}); err != nil {
		w.log.Warn("audit failed", "err", err)
	}
}

// NewSignInLink makes a one-time sign-in link for the user, valid for
// LinkTTL, and returns it under baseURL (the relay's public URL).
func NewSignInLink(ctx context.Context, st *store.Store, baseURL, userID string, now time.Time) (string, error) {
	code := randomToken(32)
	if err := st.AddSignInLink(ctx, store.SignInLink{Hash: hashSecret(code), UserID: userID, Created: now, Expires: now.Add(LinkTTL)}); err != nil {
		return "", err
	}
	return strings.TrimRight(baseURL, "/") + "/signin/link/" + code, nil
}

package server

// The relay as the OAuth 2.1 authorization server of its own MCP
// endpoints, so hosted agents (ChatGPT, Claude.ai) that know only an MCP
// URL can discover, register, sign the user in and call tools.
//
// Why hand-written endpoints and not zitadel/oidc's op package: op is an
// OpenID Provider — it brings ID tokens, JWKS, sessions, its own Storage
// interface of some twenty methods and a large dependency tree — while
// MCP needs none of OIDC and does need three things op does not do out
// of the box: RFC 8707 resource-bound tokens checked by the relay's own
// Verifier, Client ID Metadata Documents with SSRF guards, and the
// relay's store as the only state. What is left is four small endpoints
// (metadata, authorize, token, register) on what the relay already has:
// golang-jwt HS256 tokens from IssueToken (so the existing Verifier,
// revocation poll and rate limits apply unchanged) and relay/store.
//
// Lifetimes: access tokens live accessTTL (1 h). Refresh tokens rotate on
// every use; each lives refreshIdle (30 days) from its issue — sliding, so
// an agent used at least monthly never drops — and no family outlives
// grantMaxAge (90 days) from the user's approval, after which the user
// approves again. A spent refresh token or code presented again revokes
// its whole grant (every access and refresh token of it).
//
// Static tokens keep working on /mcp/{dev}/{server}: a client that sends
// its header never sees the 401 that starts discovery. Clients that run
// discovery even with a header configured use the header-only alias
// /mcp-token/{dev}/{server}: same endpoint, but its 401 names no
// resource_metadata and no protected-resource document exists for it.

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/tether-dev/tether/relay/store"
)

// OAuthConfig turns on the authorization server.
type OAuthConfig struct {
	// Store holds clients, grants, codes and refresh tokens. Required.
	Store *store.Store
	// SignedInUser returns the relay user of a browser request (the web
	// UI's session). Nil, or not signed in: the consent page sends the
	// browser to / to sign in, with the page's URL as ?return=.
	SignedInUser func(*http.Request) (userID string, ok bool)

	// CIMDAllowPrivate (tests only) lets client metadata documents be
	// fetched from loopback and private addresses.
	CIMDAllowPrivate bool
	// CIMDRootCAs (tests only) replaces the system roots for fetching
	// client metadata documents.
	CIMDRootCAs *x509.CertPool
}

// Lifetimes; see the package comment of this file.
const (
	accessTTL   = time.Hour
	refreshIdle = 30 * 24 * time.Hour
	grantMaxAge = 90 * 24 * time.Hour
	codeTTL     = 5 * time.Minute
	consentTTL  = 10 * time.Minute
)

// scopeMCP is the one OAuth scope: call the granted MCP servers. Tokens
// carry it as the relay's client scope. offline_access is accepted and
// changes nothing: refresh tokens are always issued.
const (
	scopeMCP           = "mcp"
	scopeOfflineAccess = "offline_access"
)

// staticAliasPrefix is the header-only alias of /mcp/.
const staticAliasPrefix = "/mcp-token/"

// signInReturnParam names the return URL on the sign-in page (/).
const signInReturnParam = "return"

type oauthServer struct {
	cfg    OAuthConfig
	s      *Server
	issuer string // the relay's first public URL, no trailing slash
	key    []byte // HMAC key of consent and revoke nonces
	cimd   *cimdFetcher
	// registrations bounds DCR for the whole relay: registration is open
	// (anyone may register; only a user's consent grants anything), so
	// this is what keeps a script from filling the clients table.
	registrations *rate.Limiter
	// registerLimits bounds DCR per client address, so one address cannot
	// spend the whole relay's budget above and lock everyone else out.
	registerLimits *keyedLimits
	// authorizeLimits bounds GET /oauth/authorize per client address: it
	// needs no sign-in and may fetch a client metadata document.
	authorizeLimits *keyedLimits
}

// Registration budget: a burst for a busy minute, then a steady trickle.
// Per address: a client registers once per install (or per sign-in), so
// a handful in a row, then one every 30 s, leaves room for a busy NAT.
const (
	registerRate      = rate.Limit(2) // per second
	registerBurst     = 60
	registerAddrEvery = 30 * time.Second
	registerAddrBurst = 10
)

// OAuthOn reports whether the relay is the OAuth authorization server of
// its MCP endpoints, and so serves the Connected apps page (/apps).
func (s *Server) OAuthOn() bool {
	s.init()
	return s.oauth != nil
}

func (s *Server) initOAuth(mux *http.ServeMux) {
	if s.OAuth == nil {
		return
	}
	if len(s.PublicURLs) == 0 || s.Verifier == nil || len(s.Verifier.Secret) == 0 || s.OAuth.Store == nil {
		s.log.Error("OAuth is off: it needs a public URL, a secret and a store")
		return
	}
	mac := hmac.New(sha256.New, s.Verifier.Secret)
	mac.Write([]byte("tether-relay oauth nonce key"))
	o := &oauthServer{cfg: *s.OAuth, s: s, issuer: normalizeAudience(s.PublicURLs[0]), key: mac.Sum(nil),
		registrations: rate.NewLimiter(registerRate, registerBurst), authorizeLimits: newKeyedLimits(authorizeEvery, authorizeBurst),
		registerLimits: newKeyedLimits(registerAddrEvery, registerAddrBurst)}
	o.cimd = newCIMDFetcher(o.cfg.CIMDAllowPrivate, o.cfg.CIMDRootCAs)
	s.oauth = o
	// The metadata, token and registration endpoints answer any origin:
	// they use no cookies, and browser-based MCP clients (the Inspector)
	// call them with fetch.
	mux.Handle("GET /.well-known/oauth-protected-resource/mcp/{dev}/{server}", anyOrigin(o.handleResourceMetadata))
	mux.HandleFunc("GET /oauth/authorize", o.handleAuthorize)
	mux.HandleFunc("POST /oauth/authorize", o.handleConsent)
	mux.Handle("POST /oauth/register", anyOrigin(o.handleRegister))
	for _, p := range []string{"/.well-known/oauth-protected-resource/mcp/{dev}/{server}", "/oauth/register"} {
		mux.Handle("OPTIONS "+p, anyOrigin(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	}
	mux.HandleFunc("GET /oauth/apps", o.handleAppsList)
	mux.HandleFunc("DELETE /oauth/apps/{id}", o.handleAppsDelete)
	mux.HandleFunc("GET /apps", o.handleAppsPage)
	mux.HandleFunc("POST /apps/revoke", o.handleAppsRevoke)
}

// anyOrigin lets every browser origin read the answer (CORS), without
// credentials.
func anyOrigin(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodOptions {
			w.Header().Set("Access-Control-Allow-Methods", "GET, POST")
			w.Header().Set("Access-Control-Allow-Headers", "Content-Type, Authorization, Mcp-Protocol-Version")
			w.Header().Set("Access-Control-Max-Age", "600")
		}
		h(w, r)
	})
}

// AuthServerMetadata is the RFC 8414 document at
// /.well-known/oauth-authorization-server.
type AuthServerMetadata struct {
	Issuer                                     string   `json:"issuer"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	RegistrationEndpoint                       string   `json:"registration_endpoint,omitempty"`
	DeviceAuthorizationEndpoint                string   `json:"device_authorization_endpoint,omitempty"`
	ScopesSupported                            []string `json:"scopes_supported,omitempty"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported,omitempty"`
	ClientIDMetadataDocumentSupported          bool     `json:"client_id_metadata_document_supported,omitempty"`
	AuthorizationResponseIssParameterSupported bool     `json:"authorization_response_iss_parameter_supported,omitempty"`
}

// authServerMetadata builds the OAuth part of the document.
func (o *oauthServer) authServerMetadata() AuthServerMetadata {
	return AuthServerMetadata{
		Issuer:                                     o.issuer,
		AuthorizationEndpoint:                      o.issuer + "/oauth/authorize",
		TokenEndpoint:                              o.issuer + "/oauth/token",
		RegistrationEndpoint:                       o.issuer + "/oauth/register",
		ScopesSupported:                            []string{scopeMCP, scopeOfflineAccess},
		ResponseTypesSupported:                     []string{"code"},
		GrantTypesSupported:                        []string{"authorization_code", "refresh_token"},
		TokenEndpointAuthMethodsSupported:          []string{"none"},
		CodeChallengeMethodsSupported:              []string{"S256"},
		ClientIDMetadataDocumentSupported:          true,
		AuthorizationResponseIssParameterSupported: true,
	}
}

// resourceMetadata is the RFC 9728 document of one MCP endpoint.
type resourceMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	ScopesSupported        []string `json:"scopes_supported"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name,omitempty"`
}

func (o *oauthServer) handleResourceMetadata(w http.ResponseWriter, r *http.Request) {
	dev, name := r.PathValue("dev"), r.PathValue("server")
	if checkDevID(dev) != nil || !validServerName(name) {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", "max-age=300")
	writeJSON(w, http.StatusOK, resourceMetadata{
		Resource:               o.baseFor(r) + "/mcp/" + dev + "/" + name,
		AuthorizationServers:   []string{o.issuer},
		ScopesSupported:        []string{scopeMCP},
		BearerMethodsSupported: []string{"header"},
		ResourceName:           name + " (Tether, " + dev + ")",
	})
}

// validServerName keeps a server name one plain URL path segment.
func validServerName(name string) bool {
	return name != "" && len(name) <= 128 && !strings.ContainsAny(name, "/?#%\\ \t\r\n\"")
}

// mcpAuthError is authError for the MCP endpoints: with OAuth on, the
// challenge names the resource's metadata (RFC 9728 §5.1) and the scope to
// ask for, and a missing scope is an insufficient_scope with the scope to
// step up to.
func (s *Server) mcpAuthError(w http.ResponseWriter, r *http.Request, code int, err error) {
	dev, name := r.PathValue("dev"), r.PathValue("server")
	// The path is decoded: a name that could break out of the quoted
	// parameter gets the plain challenge (it has no metadata anyway).
	if s.oauth == nil || strings.HasPrefix(r.URL.Path, staticAliasPrefix) || checkDevID(dev) != nil || !validServerName(name) {
		s.authError(w, code, err)
		return
	}
	prm := s.oauth.baseFor(r) + "/.well-known/oauth-protected-resource/mcp/" + dev + "/" + name
	challenge := `Bearer realm="tether-relay", resource_metadata="` + prm + `"`
	switch {
	case code == http.StatusUnauthorized && err != ErrNoToken:
		challenge += `, scope="` + scopeMCP + `", error="invalid_token"`
	case code == http.StatusUnauthorized:
		// The scope to ask for (MCP 2025-11-25 says a 401 SHOULD name it).
		challenge += `, scope="` + scopeMCP + `"`
	case code == http.StatusForbidden && isInsufficientScope(err):
		challenge += `, error="insufficient_scope", scope="` + scopeMCP + `"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	w.Header().Set("Connection", "close")
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func isInsufficientScope(err error) bool {
	for e := err; e != nil; {
		if e == ErrInsufficientScope {
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}

// baseFor is the public URL a request came in on, matched by its Host:
// the resource in the metadata and in the challenge is then the URL the
// user pasted, under whichever of the relay's names. Clients (the
// TypeScript SDK, mcp-remote) refuse metadata whose resource is another
// origin than the URL they were given. A Host that is none of them (a
// loopback name) gets the issuer.
func (o *oauthServer) baseFor(r *http.Request) string {
	for _, p := range o.s.PublicURLs {
		if u, err := url.Parse(p); err == nil && strings.EqualFold(u.Host, r.Host) {
			return normalizeAudience(p)
		}
	}
	return o.issuer
}

// resourceFor checks that resource is an MCP URL of this relay, under any
// of its public URLs (the Verifier accepts all of them as audiences), and
// returns its dev and server ("" for all of the dev's servers).
func (o *oauthServer) resourceFor(resource string) (dev, name string, ok bool) {
	var rest string
	found := false
	for _, p := range o.s.PublicURLs {
		if rest, found = strings.CutPrefix(normalizeAudience(resource), normalizeAudience(p)+"/mcp/"); found {
			break
		}
	}
	if !found {
		return "", "", false
	}
	dev, name, _ = strings.Cut(rest, "/")
	if checkDevID(dev) != nil || strings.Contains(rest, "/") && !validServerName(name) {
		return "", "", false
	}
	return dev, name, true
}

// nonce is an HMAC over parts, bound to what it protects; see handleConsent.
func (o *oauthServer) nonce(parts ...string) string {
	mac := hmac.New(sha256.New, o.key)
	for _, p := range parts {
		fmt.Fprintf(mac, "%d:%s;", len(p), p)
	}
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func (o *oauthServer) nonceOK(got string, parts ...string) bool {
	return hmac.Equal([]byte(got), []byte(o.nonce(parts...)))
}

// signedIn returns the signed-in relay user of a browser request.
func (o *oauthServer) signedIn(r *http.Request) (string, bool) {
	if o.cfg.SignedInUser == nil {
		return "", false
	}
	return o.cfg.SignedInUser(r)
}

// toSignIn sends the browser to the sign-in page, to come back to ret.
func toSignIn(w http.ResponseWriter, r *http.Request, ret string) {
	http.Redirect(w, r, "/?"+signInReturnParam+"="+url.QueryEscape(ret), http.StatusFound)
}

// secret returns n random bytes, base64url.
func secret(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashSecret is how codes and refresh tokens are stored.
func hashSecret(v string) string {
	h := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// audit records an OAuth event; a failure is logged, not fatal.
func (o *oauthServer) audit(ctx context.Context, actor, action, subject, detail string) {
	if _, err := o.cfg.Store.AddAudit(ctx, store.AuditEvent{At: o.s.clock(), Actor: actor, Action: action, Subject: subject, Detail: detail}); err != nil {
		o.s.log.Warn("audit write failed", "action", action, "err", err)
	}
}

// cimdCache bounds.
const (
	cimdCacheFloor = 5 * time.Minute
	cimdCacheCeil  = 24 * time.Hour
	cimdCacheMax   = 1024
)

type cimdEntry struct {
	client  oauthClient
	expires time.Time
}

type cimdCache struct {
	mu sync.Mutex
	m  map[string]cimdEntry
}

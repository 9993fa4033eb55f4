package server

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tether-dev/tether/relay/store"
)

// authRequest is a checked authorization request.
type authRequest struct {
	client        oauthClient
	redirectURI   string
	state         string
	codeChallenge string
	resource      string // normalized MCP URL
	dev, server   string // what resource names; server "" = all
	scope         string
	// noResource: the client named no resource; the grant is dev-wide.
	noResource bool
}

// authError is an error of an authorization request. With redirect set
// it goes back to the client (RFC 6749 §4.1.2.1); without, the redirect
// URI itself is not trusted and the user sees it.
type authError struct {
	redirect bool
	status   int // of an error shown to the user; 0 is 400
	code     string
	desc     string
}

// parseAuthRequest checks the parameters of GET /oauth/authorize (and
// the same ones echoed by the consent form).
func (o *oauthServer) parseAuthRequest(r *http.Request, q url.Values) (authRequest, *authError) {
	var a authRequest
	c, err := o.client(r.Context(), q.Get("client_id"))
	if errors.Is(err, errCIMDBusy) {
		return a, &authError{status: http.StatusTooManyRequests, code: "temporarily_unavailable", desc: err.Error()}
	}
	if err != nil {
		return a, &authError{code: "invalid_client", desc: "unknown client: " + err.Error()}
	}
	a.client = c
	a.redirectURI = q.Get("redirect_uri")
	if a.redirectURI == "" || !redirectMatches(c.RedirectURIs, a.redirectURI) {
		return a, &authError{code: "invalid_request", desc: "redirect_uri is not one the client registered"}
	}
	a.state = q.Get("state")
	if q.Get("response_type") != "code" {
		return a, &authError{redirect: true, code: "unsupported_response_type", desc: "only response_type=code"}
	}
	if q.Get("code_challenge_method") != "S256" {
		return a, &authError{redirect: true, code: "invalid_request", desc: "PKCE with code_challenge_method=S256 is required"}
	}
	a.codeChallenge = q.Get("code_challenge")
	if len(a.codeChallenge) != 43 || strings.Trim(a.codeChallenge, base64URLChars) != "" {
		return a, &authError{redirect: true, code: "invalid_request", desc: "code_challenge must be a base64url SHA-256"}
	}
	// Scopes other than mcp and offline_access (openid, profile, …, which
	// generic OAuth clients add) are ignored rather than refused (RFC 6749
	// §3.3 allows either): the grant is always for mcp, and the token
	// response says so in its scope.
	a.scope = scopeMCP
	res := q["resource"]
	if len(res) == 0 {
		// The MCP spec says clients MUST send resource, but some real
		// ones do not (Claude.ai custom connectors, older Claude Code and
		// Codex). Their grant covers all of the signed-in user's servers,
		// and the consent page says so: see forUser.
		return a, nil
	}
	if len(res) != 1 {
		return a, &authError{redirect: true, code: "invalid_target", desc: "one resource (the MCP URL, RFC 8707) is required"}
	}
	dev, name, ok := o.resourceFor(res[0])
	if !ok {
		return a, &authError{redirect: true, code: "invalid_target", desc: "resource is not an MCP URL of this relay"}
	}
	a.resource, a.dev, a.server = normalizeAudience(res[0]), dev, name
	return a, nil
}

// forUser completes a request without a resource once the user is known:
// it is for all of the user's servers, the dev-wide audience
// <public-url>/mcp/<user> under the name the request came in on.
func (o *oauthServer) forUser(r *http.Request, a *authRequest, user string) {
	if a.resource == "" {
		a.resource, a.dev, a.server = o.baseFor(r)+"/mcp/"+user, user, ""
		a.noResource = true
	}
}

const base64URLChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// fail answers an authorization error.
func (o *oauthServer) fail(w http.ResponseWriter, r *http.Request, a authRequest, e *authError) {
	if !e.redirect {
		status := http.StatusBadRequest
		if e.status != 0 {
			status = e.status
		}
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", retryAfter(cimdHostEvery))
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		w.Write([]byte("Authorization request refused: " + e.code + ": " + e.desc + "\n"))
		return
	}
	o.redirectBack(w, r, a, url.Values{"error": {e.code}, "error_description": {e.desc}})
}

// tooManyPage is the plain-text 429 of a page.
func tooManyPage(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", retryAfter(wait))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusTooManyRequests)
	w.Write([]byte("Too many requests from this address; try again in a minute.\n"))
}

// redirectBack sends the browser to the client with v, the state and the
// issuer (RFC 9207: the client checks it to rule out mix-up attacks).
func (o *oauthServer) redirectBack(w http.ResponseWriter, r *http.Request, a authRequest, v url.Values) {
	if a.state != "" {
		v.Set("state", a.state)
	}
	v.Set("iss", o.issuer)
	sep := "?"
	if strings.Contains(a.redirectURI, "?") {
		sep = "&"
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, a.redirectURI+sep+v.Encode(), http.StatusFound)
}

func (o *oauthServer) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	// A page a person opens: over the budget is a plain-text 429 (there
	// is no trusted redirect URI to send an error to yet).
	if wait, ok := o.authorizeLimits.allow(clientIP(r), o.s.clock()); !ok {
		tooManyPage(w, wait)
		return
	}
	q := r.URL.Query()
	a, aerr := o.parseAuthRequest(r, q)
	if aerr != nil {
		o.fail(w, r, a, aerr)
		return
	}
	user, ok := o.signedIn(r)
	if !ok {
		toSignIn(w, r, r.URL.RequestURI())
		return
	}
	o.forUser(r, &a, user)
	if a.dev != user {
		o.fail(w, r, a, &authError{redirect: true, code: "invalid_target", desc: "the resource belongs to another user"})
		return
	}
	exp := strconv.FormatInt(o.s.clock().Add(consentTTL).Unix(), 10)
	page := consentPage{
		ClientName:   a.client.Name,
		ClientID:     a.client.ID,
		RedirectHost: redirectHost(a.redirectURI),
		Servers:      "all of your servers",
		User:         user,
		Fields: []hidden{
			{"client_id", a.client.ID}, {"redirect_uri", a.redirectURI}, {"state", a.state},
			{"code_challenge", a.codeChallenge}, {"code_challenge_method", "S256"}, {"response_type", "code"},
			{"resource", a.resource}, {"scope", a.scope}, {"exp", exp},
			{"csrf", o.consentNonce(user, a, exp)},
		},
	}
	if a.server != "" {
		page.Servers = "the server “" + a.server + "”"
	}
	if a.noResource {
		page.Servers = "all your servers (the app did not say which one it is for)"
	}
	securePage(w, false)
	if err := consentTmpl.Execute(w, page); err != nil {
		o.s.log.Warn("consent page", "err", err)
	}
}

// consentNonce binds the consent form to the signed-in user, to every
// parameter of the request and to an expiry: a page from another site
// cannot approve (it cannot compute the nonce), and the approval covers
// exactly what the user saw.
func (o *oauthServer) consentNonce(user string, a authRequest, exp string) string {
	return o.nonce("consent", user, a.client.ID, a.redirectURI, a.state, a.codeChallenge, a.resource, a.scope, exp)
}

func (o *oauthServer) handleConsent(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	a, aerr := o.parseAuthRequest(r, r.PostForm)
	if aerr != nil {
		o.fail(w, r, a, aerr)
		return
	}
	user, ok := o.signedIn(r)
	if !ok {
		toSignIn(w, r, "/oauth/authorize?"+r.PostForm.Encode())
		return
	}
	o.forUser(r, &a, user)
	exp := r.PostForm.Get("exp")
	expAt, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || a.dev != user || !o.nonceOK(r.PostForm.Get("csrf"), "consent", user, a.client.ID, a.redirectURI, a.state,
		a.codeChallenge, a.resource, a.scope, exp) {
		http.Error(w, "consent form refused (stale, forged or for another user)", http.StatusForbidden)
		return
	}
	if o.s.clock().Unix() > expAt {
		http.Error(w, "consent form expired: start again from your app", http.StatusForbidden)
		return
	}
	if r.PostForm.Get("action") != "approve" {
		o.audit(r.Context(), "user:"+user, "oauth.deny", a.client.ID, a.resource)
		o.redirectBack(w, r, a, url.Values{"error": {"access_denied"}, "error_description": {"the user denied access"}})
		return
	}
	now := o.s.clock()
	g := store.OAuthGrant{ID: "g_" + secret(12), UserID: user, ClientID: a.client.ID, ClientName: a.client.Name,
		RedirectURI: a.redirectURI, Resource: a.resource, Scope: a.scope, Created: now}
	code := secret(32)
	err = o.cfg.Store.AddOAuthGrant(r.Context(), g)
	if err == nil {
		err = o.cfg.Store.AddOAuthCode(r.Context(), store.OAuthCode{Hash: hashSecret(code), GrantID: g.ID,
			CodeChallenge: a.codeChallenge, Created: now, Expires: now.Add(codeTTL)})
	}
	if err != nil {
		o.s.log.Error("oauth approve", "err", err)
		o.redirectBack(w, r, a, url.Values{"error": {"server_error"}})
		return
	}
	o.audit(r.Context(), "user:"+user, "oauth.approve", g.ID, a.client.ID+" "+a.resource)
	o.redirectBack(w, r, a, url.Values{"code": {code}})
}

// redirectHost is what the consent page shows of where the user is sent:
// the host, or the scheme of a private-use URI (an app on this device).
func redirectHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	if u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return u.Scheme + ": (an app on your device)"
	}
	return u.Host
}

type hidden struct{ Name, Value string }

type consentPage struct {
	ClientName, ClientID, RedirectHost, Servers, User string
	Fields                                            []hidden
}

var consentTmpl = pageTemplate("consent", `{{template "top" (printf "Allow %s?" .ClientName)}}
<h1>Allow <em>{{.ClientName}}</em> to use your MCP servers?</h1>
<p>Signed in as <strong>{{.User}}</strong>.</p>
<ul class="card">
<li>Application: <strong>{{.ClientName}}</strong> (<code class="wrap">{{.ClientID}}</code>)</li>
<li>It will be sent back to: <strong>{{.RedirectHost}}</strong></li>
<li>It asks to call: <strong>{{.Servers}}</strong></li>
</ul>
<p>It can call tools on these servers until you revoke it under <a href="/apps">Connected apps</a>.</p>
<form method="post" action="/oauth/authorize" class="actions">
{{range .Fields}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<button name="action" value="approve">Approve</button>
<button name="action" value="deny" class="secondary">Deny</button>
</form>
{{template "bottom"}}`)

// grantLive reports whether a grant may still mint tokens.
func grantLive(g store.OAuthGrant, now time.Time) bool {
	return g.Revoked.IsZero() && now.Before(g.Created.Add(grantMaxAge))
}

package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tether-dev/tether/relay/store"
)

// oauthClient is a client the relay knows: registered (RFC 7591) and
// stored, or described by a Client ID Metadata Document at its client_id.
type oauthClient struct {
	ID           string
	Name         string
	RedirectURIs []string
}

// clientMetadata is the part of RFC 7591 client metadata (the DCR body,
// and a CIMD) the relay reads.
type clientMetadata struct {
	ClientID                string   `json:"client_id,omitempty"`
	ClientName              string   `json:"client_name,omitempty"`
	ClientURI               string   `json:"client_uri,omitempty"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types,omitempty"`
	ResponseTypes           []string `json:"response_types,omitempty"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method,omitempty"`
	Scope                   string   `json:"scope,omitempty"`
}

// maxClientMetadata caps a DCR body and a fetched CIMD.
const maxClientMetadata = 64 << 10

// registeredClientPrefix starts the id of every dynamically registered
// client; the janitor deletes only these (see unusedClientAge).
const registeredClientPrefix = "tc_"

// parseClientMetadata decodes and checks client metadata. For a CIMD
// (cimdURL set) the document's client_id must be its URL and only public
// clients are accepted; a DCR client's auth method becomes "none" (the
// relay issues no client secrets, and RFC 7591 §3.2.1 lets the server
// replace a requested value).
func parseClientMetadata(data []byte, cimdURL string) (clientMetadata, error) {
	var m clientMetadata
	if err := json.Unmarshal(data, &m); err != nil {
		return clientMetadata{}, fmt.Errorf("client metadata is not JSON: %w", err)
	}
	if cimdURL != "" {
		if m.ClientID != cimdURL {
			return clientMetadata{}, fmt.Errorf("client_id %q is not the document's URL", m.ClientID)
		}
		if m.TokenEndpointAuthMethod != "" && m.TokenEndpointAuthMethod != "none" {
			return clientMetadata{}, fmt.Errorf("token_endpoint_auth_method %q: only public clients (none) are supported", m.TokenEndpointAuthMethod)
		}
	} else {
		m.ClientID = ""
	}
	m.TokenEndpointAuthMethod = "none"
	if len(m.RedirectURIs) == 0 || len(m.RedirectURIs) > 20 {
		return clientMetadata{}, errors.New("redirect_uris must list 1 to 20 URIs")
	}
	for _, u := range m.RedirectURIs {
		if err := checkRedirectURI(u); err != nil {
			return clientMetadata{}, err
		}
	}
	for _, g := range m.GrantTypes {
		if g != "authorization_code" && g != "refresh_token" {
			return clientMetadata{}, fmt.Errorf("grant type %q is not supported", g)
		}
	}
	for _, rt := range m.ResponseTypes {
		if rt != "code" {
			return clientMetadata{}, fmt.Errorf("response type %q is not supported", rt)
		}
	}
	m.ClientName = strings.TrimSpace(m.ClientName)
	if len(m.ClientName) > 200 {
		m.ClientName = m.ClientName[:200]
	}
	return m, nil
}

// checkRedirectURI allows https URLs, http on a loopback address (any
// port, RFC 8252 §7.3) and private-use schemes (RFC 8252 §7.1, any
// scheme name, not only reverse-domain ones: see below), without
// fragments or credentials.
func checkRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || len(raw) > 2000 {
		return fmt.Errorf("redirect URI %q is not an absolute URI", raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") || u.User != nil {
		return fmt.Errorf("redirect URI %q has a fragment or credentials", raw)
	}
	switch scheme := strings.ToLower(u.Scheme); scheme {
	case "https":
		if u.Host == "" {
			return fmt.Errorf("redirect URI %q has no host", raw)
		}
	case "http":
		if !isLoopbackHost(u.Hostname()) {
			return fmt.Errorf("redirect URI %q: http is allowed only on a loopback address", raw)
		}
	case "javascript", "data", "file", "vbscript", "blob", "about", "ftp", "ws", "wss":
		return fmt.Errorf("redirect URI %q: scheme %s is not allowed", raw, scheme)
	default:
		// A private-use scheme (com.example.app:/cb, cursor://…). Only
		// its application can receive it. Accepted leniently on purpose:
		// RFC 8252 §7.1 asks for a reverse-domain scheme, but Cursor
		// registers a cursor:// redirect URI (and other editors do
		// alike), and refusing them breaks real clients. The
		// consent page names the scheme ("an app on your device"), and
		// the user's approval is the gate.
	}
	return nil
}

// redirectMatches is exact string matching, except that a loopback http
// URI may differ in port (RFC 8252 §7.3: native apps pick a free port).
func redirectMatches(registered []string, got string) bool {
	if slices.Contains(registered, got) {
		return true
	}
	g, err := url.Parse(got)
	if err != nil || g.Scheme != "http" || !isLoopbackHost(g.Hostname()) {
		return false
	}
	return slices.ContainsFunc(registered, func(reg string) bool {
		r, err := url.Parse(reg)
		return err == nil && r.Scheme == "http" && r.Hostname() == g.Hostname() &&
			r.Path == g.Path && r.RawQuery == g.RawQuery && g.Fragment == ""
	})
}

// client returns the client with id: a CIMD client when id is an https
// URL, else a registered one.
func (o *oauthServer) client(ctx context.Context, id string) (oauthClient, error) {
	if strings.HasPrefix(id, "https://") {
		return o.cimd.get(ctx, id, o.s.clock())
	}
	c, err := o.cfg.Store.OAuthClient(ctx, id)
	if err != nil {
		return oauthClient{}, err
	}
	return oauthClient{ID: c.ID, Name: c.Name, RedirectURIs: c.RedirectURIs}, nil
}

// handleRegister is RFC 7591 dynamic client registration (open: MCP
// clients register anonymously; the user's consent is the gate).
func (o *oauthServer) handleRegister(w http.ResponseWriter, r *http.Request) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		oauthError(w, http.StatusBadRequest, "invalid_client_metadata", "the body must be application/json")
		return
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxClientMetadata+1))
	if err != nil || len(data) > maxClientMetadata {
		oauthError(w, http.StatusBadRequest, "invalid_client_metadata", "the body is unreadable or over 64 KiB")
		return
	}
	// The address first: a refused address takes nothing from the
	// relay-wide budget.
	if wait, ok := o.registerLimits.allow(clientIP(r), o.s.clock()); !ok {
		tooMany(w, wait, "temporarily_unavailable")
		return
	}
	if !o.registrations.AllowN(o.s.clock(), 1) {
		w.Header().Set("Retry-After", "1")
		oauthError(w, http.StatusTooManyRequests, "temporarily_unavailable", "too many registrations; try again shortly")
		return
	}
	m, err := parseClientMetadata(data, "")
	if err != nil {
		code := "invalid_client_metadata"
		if strings.Contains(err.Error(), "redirect") {
			code = "invalid_redirect_uri"
		}
		oauthError(w, http.StatusBadRequest, code, err.Error())
		return
	}
	now := o.s.clock()
	m.ClientID = registeredClientPrefix + secret(16)
	if m.ClientName == "" {
		m.ClientName = "unnamed client"
	}
	if err := o.cfg.Store.AddOAuthClient(r.Context(), store.OAuthClient{ID: m.ClientID, Name: m.ClientName,
		RedirectURIs: m.RedirectURIs, Created: now}); err != nil {
		o.s.log.Error("oauth register", "err", err)
		oauthError(w, http.StatusInternalServerError, "server_error", "could not store the client")
		return
	}
	o.audit(r.Context(), "client:"+m.ClientID, "oauth.register", m.ClientID, m.ClientName)
	if len(m.GrantTypes) == 0 {
		m.GrantTypes = []string{"authorization_code", "refresh_token"}
	}
	if len(m.ResponseTypes) == 0 {
		m.ResponseTypes = []string{"code"}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, struct {
		clientMetadata
		IssuedAt int64 `json:"client_id_issued_at"`
	}{m, now.Unix()})
}

// ---- Client ID Metadata Documents ----

// cimdFetcher fetches and caches client metadata documents. The guards
// against server-side request forgery: https only, no redirects, no
// proxy, and the dialer refuses (at connect time, on the address it
// actually dials, so DNS rebinding cannot slip past a check done
// earlier) loopback, private, link-local and other non-public addresses;
// 5 s for the whole fetch; 64 KiB at most.
type cimdFetcher struct {
	client *http.Client
	cache  cimdCache
	// hosts caps fetches per host: client_id is chosen by whoever opens
	// /oauth/authorize, so without it the relay could be made to hammer
	// one site with distinct URLs (each a cache miss).
	hosts *keyedLimits
	// timeout bounds one fetch, connection to last byte (cimdTimeout;
	// tests shorten it).
	timeout time.Duration
}

// errCIMDBusy: the document's host was fetched too often lately.
var errCIMDBusy = errors.New("cimd: too many fetches from this client's host; try again later")

const cimdTimeout = 5 * time.Second

func newCIMDFetcher(allowPrivate bool, roots *x509.CertPool) *cimdFetcher {
	d := &net.Dialer{Timeout: cimdTimeout}
	if !allowPrivate {
		d.Control = func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			ip, err := netip.ParseAddr(host)
			if err != nil {
				return fmt.Errorf("cimd: dial %s: not an IP address", address)
			}
			if !publicIP(ip) {
				return fmt.Errorf("cimd: %s is not a public address", ip)
			}
			return nil
		}
	}
	tr := &http.Transport{
		Proxy:                  nil, // a proxy would dial for us, past the guard
		DialContext:            d.DialContext,
		TLSClientConfig:        &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    cimdTimeout,
		ResponseHeaderTimeout:  cimdTimeout,
		MaxResponseHeaderBytes: 16 << 10,
		ForceAttemptHTTP2:      true,
	}
	return &cimdFetcher{
		client: &http.Client{Transport: tr, Timeout: cimdTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		cache:   cimdCache{m: map[string]cimdEntry{}},
		hosts:   newKeyedLimits(cimdHostEvery, cimdHostBurst),
		timeout: cimdTimeout,
	}
}

// publicIP reports whether ip is a globally routable unicast address.
func publicIP(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() || ip.IsLinkLocalUnicast() ||
		ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || ip.IsMulticast() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64 can reach any IPv4 address
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("2002::/16"), // 6to4 embeds an IPv4 address
	netip.MustParsePrefix("fec0::/10"),
}

// checkCIMDURL: an https URL with a path, no credentials, fragment or dot
// segments (draft-ietf-oauth-client-id-metadata-document §3).
func checkCIMDURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("client_id %q is not an https URL", raw)
	}
	if u.Path == "" || u.Path == "/" {
		return fmt.Errorf("client_id %q has no path", raw)
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("client_id %q has dot segments", raw)
		}
	}
	return nil
}

func (f *cimdFetcher) get(ctx context.Context, id string, now time.Time) (oauthClient, error) {
	f.cache.mu.Lock()
	e, ok := f.cache.m[id]
	f.cache.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.client, nil
	}
	if u, err := url.Parse(id); err == nil {
		if _, ok := f.hosts.allow(u.Hostname(), now); !ok {
			return oauthClient{}, errCIMDBusy
		}
	}
	c, ttl, err := f.fetch(ctx, id)
	if err != nil {
		return oauthClient{}, err
	}
	f.cache.mu.Lock()
	if len(f.cache.m) >= cimdCacheMax {
		f.cache.m = map[string]cimdEntry{}
	}
	f.cache.m[id] = cimdEntry{client: c, expires: now.Add(ttl)}
	f.cache.mu.Unlock()
	return c, nil
}

func (f *cimdFetcher) fetch(ctx context.Context, id string) (oauthClient, time.Duration, error) {
	if err := checkCIMDURL(id); err != nil {
		return oauthClient{}, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, id, nil)
	if err != nil {
		return oauthClient{}, 0, fmt.Errorf("cimd: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return oauthClient{}, 0, fmt.Errorf("cimd: fetch %s: %w", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return oauthClient{}, 0, fmt.Errorf("cimd: fetch %s: status %d", id, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxClientMetadata+1))
	if err != nil {
		return oauthClient{}, 0, fmt.Errorf("cimd: read %s: %w", id, err)
	}
	if len(data) > maxClientMetadata {
		return oauthClient{}, 0, fmt.Errorf("cimd: %s is over 64 KiB", id)
	}
	m, err := parseClientMetadata(data, id)
	if err != nil {
		return oauthClient{}, 0, fmt.Errorf("cimd: %s: %w", id, err)
	}
	name := m.ClientName
	if name == "" {
		name = req.URL.Host
	}
	return oauthClient{ID: id, Name: name, RedirectURIs: m.RedirectURIs}, cacheTTL(resp.Header.Get("Cache-Control")), nil
}

// cacheTTL reads max-age from Cache-Control, kept within the floor and
// ceiling: a document that says no-store is still kept for the floor, so
// one authorization does not fetch it three times.
func cacheTTL(cc string) time.Duration {
	ttl := cimdCacheFloor
	for _, d := range strings.Split(cc, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(d), "=")
		if strings.EqualFold(k, "max-age") {
			if n, err := strconv.Atoi(strings.Trim(v, `"`)); err == nil {
				ttl = time.Duration(n) * time.Second
			}
		}
	}
	return min(max(ttl, cimdCacheFloor), cimdCacheCeil)
}

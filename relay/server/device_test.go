package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-dev/tether/relay/store"
)

// fakeClock is a settable clock for expiry and polling pace.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type deviceRelay struct {
	dev   *Device
	clock *fakeClock
	ts    *httptest.Server
	st    *store.Store
	user  string // the signed-in user the stub User func reports; "" none
	mu    sync.Mutex
}

func (r *deviceRelay) signIn(id string) {
	r.mu.Lock()
	r.user = id
	r.mu.Unlock()
}

func newDeviceRelay(t *testing.T, loc string) *deviceRelay {
	t.Helper()
	st := openStore(t, loc)
	if err := st.AddUser(t.Context(), store.User{ID: "alice", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	r := &deviceRelay{clock: &fakeClock{t: time.Now()}, st: st}
	r.dev = &Device{Store: st, Secret: testSecret, Now: r.clock.Now,
		User: func(*http.Request) (string, bool) {
			r.mu.Lock()
			defer r.mu.Unlock()
			return r.user, r.user != ""
		}}
	srv := &Server{Verifier: &Verifier{Secret: testSecret}, Device: r.dev}
	r.ts = startRelay(t, srv).ts
	return r
}

func sqliteLoc(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "relay.db") }

// postForm posts form to path and decodes the JSON answer.
func (r *deviceRelay) postForm(t *testing.T, path string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(r.ts.URL+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("POST %s: %d, body not JSON: %v", path, resp.StatusCode, err)
	}
	return resp.StatusCode, body
}

func (r *deviceRelay) authorize(t *testing.T) DeviceAuthorization {
	t.Helper()
	code, body := r.postForm(t, "/oauth/device_authorization", url.Values{"client_id": {"tetherd"}, "device_name": {"alice-laptop"}, "version": {"1.2.3"}})
	if code != http.StatusOK {
		t.Fatalf("device_authorization: %d %v", code, body)
	}
	b, _ := json.Marshal(body)
	var da DeviceAuthorization
	if err := json.Unmarshal(b, &da); err != nil {
		t.Fatal(err)
	}
	return da
}

// poll asks the token endpoint once and returns the error code ("" on success) and the body.
func (r *deviceRelay) poll(t *testing.T, deviceCode string) (string, map[string]any) {
	t.Helper()
	code, body := r.postForm(t, "/oauth/token", url.Values{"grant_type": {GrantTypeDeviceCode}, "device_code": {deviceCode}, "client_id": {"tetherd"}})
	if code == http.StatusOK {
		return "", body
	}
	if code != http.StatusBadRequest {
		t.Fatalf("token endpoint: status %d %v, want 200 or 400", code, body)
	}
	e, _ := body["error"].(string)
	return e, body
}

func TestDeviceMetadata(t *testing.T) {
	r := newDeviceRelay(t, sqliteLoc(t))
	resp, err := http.Get(r.ts.URL + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m AuthServerMetadata
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	want := AuthServerMetadata{Issuer: r.ts.URL, DeviceAuthorizationEndpoint: r.ts.URL + "/oauth/device_authorization",
		TokenEndpoint: r.ts.URL + "/oauth/token", GrantTypesSupported: []string{GrantTypeDeviceCode},
		ResponseTypesSupported: []string{}, TokenEndpointAuthMethodsSupported: []string{"none"}}
	if g, w := mustJSON(t, m), mustJSON(t, want); g != w {
		t.Fatalf("metadata:\n got %s\nwant %s", g, w)
	}
	r.dev.PublicURL = "https://relay.example.com/"
	resp2, err := http.Get(r.ts.URL + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	json.NewDecoder(resp2.Body).Decode(&m)
	if m.Issuer != "https://relay.example.com" || m.TokenEndpoint != "https://relay.example.com/oauth/token" {
		t.Fatalf("with a public URL: %+v", m)
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var userCodeRE = regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`)

// TestDeviceFlow walks the grant from request to token on both stores:
// pending, slow_down (and the interval growing by 5 s), approval, one
// redemption, then invalid_grant.
func TestDeviceFlow(t *testing.T) {
	for _, be := range storeBackends {
		t.Run(be.name, func(t *testing.T) {
			r := newDeviceRelay(t, be.location(t))
			da := r.authorize(t)
			if !userCodeRE.MatchString(da.UserCode) {
				t.Fatalf("user code %q is not XXXX-XXXX of the alphabet", da.UserCode)
			}
			if da.ExpiresIn != 600 || da.Interval != 5 || da.VerificationURI != r.ts.URL+"/device" ||
				da.VerificationURIComplete != r.ts.URL+"/device?user_code="+da.UserCode {
				t.Fatalf("authorization: %+v", da)
			}
			// The store keeps a hash, never the device code.
			if _, err := r.st.DeviceCode(t.Context(), da.DeviceCode); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("device code stored in clear: %v", err)
			}

			if e, _ := r.poll(t, da.DeviceCode); e != "authorization_pending" {
				t.Fatalf("first poll: %q", e)
			}
			r.clock.Advance(4 * time.Second)
			if e, _ := r.poll(t, da.DeviceCode); e != "slow_down" {
				t.Fatalf("poll after 4 s: %q, want slow_down", e)
			}
			// The interval is now 10 s: 9 s is still too soon…
			r.clock.Advance(9 * time.Second)
			if e, _ := r.poll(t, da.DeviceCode); e != "slow_down" {
				t.Fatalf("poll after 9 s at interval 10 s: %q, want slow_down", e)
			}
			// …(now 15 s) and 15 s is fine.
			r.clock.Advance(15 * time.Second)
			if e, _ := r.poll(t, da.DeviceCode); e != "authorization_pending" {
				t.Fatalf("poll after 15 s: %q", e)
			}

			if err := r.dev.Approve(t.Context(), strings.ToLower(strings.ReplaceAll(da.UserCode, "-", "")), "alice", true); err != nil {
				t.Fatal(err)
			}
			if err := r.dev.Approve(t.Context(), da.UserCode, "alice", true); !errors.Is(err, ErrCodeUsed) {
				t.Fatalf("second approval: %v, want ErrCodeUsed", err)
			}
			r.clock.Advance(15 * time.Second)
			e, body := r.poll(t, da.DeviceCode)
			if e != "" {
				t.Fatalf("poll after approval: %q %v", e, body)
			}
			if body["token_type"] != "Bearer" || body["expires_in"] != float64(DefaultDeviceTokenTTL/time.Second) {
				t.Fatalf("token answer: %v", body)
			}
			v := &Verifier{Secret: testSecret, Now: r.clock.Now}
			c, err := v.Verify(body["access_token"].(string))
			if err != nil {
				t.Fatal(err)
			}
			if c.Dev != "alice" || !c.HasScope(ScopeBridge) || c.HasScope(ScopeClient) {
				t.Fatalf("claims: %+v", c)
			}
			// Recorded, under the computer's name (the Tokens page lists it).
			if rec, err := r.st.Token(t.Context(), strings.TrimPrefix(c.ID, "j:")); err != nil || rec.Name != "alice-laptop (tetherd login)" {
				t.Fatalf("issued token recorded as %+v, %v", rec, err)
			}

			r.clock.Advance(15 * time.Second)
			if e, _ := r.poll(t, da.DeviceCode); e != "invalid_grant" {
				t.Fatalf("second redemption: %q, want invalid_grant", e)
			}
		})
	}
}

func TestDeviceDenied(t *testing.T) {
	r := newDeviceRelay(t, sqliteLoc(t))
	da := r.authorize(t)
	if err := r.dev.Approve(t.Context(), da.UserCode, "alice", false); err != nil {
		t.Fatal(err)
	}
	if e, _ := r.poll(t, da.DeviceCode); e != "access_denied" {
		t.Fatalf("after denial: %q", e)
	}
	// Denied stays denied, even when polled too fast.
	if e, _ := r.poll(t, da.DeviceCode); e != "access_denied" {
		t.Fatalf("after denial, again: %q", e)
	}
	if err := r.dev.Approve(t.Context(), da.UserCode, "alice", true); !errors.Is(err, ErrCodeUsed) {
		t.Fatalf("approving a denied code: %v", err)
	}
}

func TestDeviceExpired(t *testing.T) {
	r := newDeviceRelay(t, sqliteLoc(t))
	da := r.authorize(t)
	r.clock.Advance(DeviceCodeTTL - time.Second)
	if e, _ := r.poll(t, da.DeviceCode); e != "authorization_pending" {
		t.Fatalf("just before expiry: %q", e)
	}
	r.clock.Advance(time.Second)
	if e, _ := r.poll(t, da.DeviceCode); e != "expired_token" {
		t.Fatalf("at expiry: %q", e)
	}
	if err := r.dev.Approve(t.Context(), da.UserCode, "alice", true); !errors.Is(err, ErrCodeExpired) {
		t.Fatalf("approving an expired code: %v", err)
	}
	// Approved just before expiry but fetched after: still expired.
	da2 := r.authorize(t)
	if err := r.dev.Approve(t.Context(), da2.UserCode, "alice", true); err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(DeviceCodeTTL)
	if e, _ := r.poll(t, da2.DeviceCode); e != "expired_token" {
		t.Fatalf("approved, fetched after expiry: %q", e)
	}
}

func TestDeviceBadRequests(t *testing.T) {
	r := newDeviceRelay(t, sqliteLoc(t))
	if code, body := r.postForm(t, "/oauth/device_authorization", url.Values{"client_id": {"someone"}}); code != http.StatusUnauthorized || body["error"] != "invalid_client" {
		t.Fatalf("unknown client: %d %v", code, body)
	}
	if e, _ := r.poll(t, "not-a-code"); e != "invalid_grant" {
		t.Fatalf("unknown device code: %q", e)
	}
	if code, body := r.postForm(t, "/oauth/token", url.Values{"grant_type": {"password"}}); code != http.StatusBadRequest || body["error"] != "unsupported_grant_type" {
		t.Fatalf("wrong grant type: %d %v", code, body)
	}
	da := r.authorize(t)
	if code, body := r.postForm(t, "/oauth/token", url.Values{"grant_type": {GrantTypeDeviceCode}, "device_code": {da.DeviceCode}, "client_id": {"other"}}); code != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("another client's code: %d %v", code, body)
	}
	if err := r.dev.Approve(t.Context(), "BCDF-GHJK", "alice", true); !errors.Is(err, ErrUnknownCode) {
		t.Fatalf("unknown user code: %v", err)
	}
	if err := r.dev.Approve(t.Context(), "AEIO-0000", "alice", true); !errors.Is(err, ErrUnknownCode) {
		t.Fatalf("malformed user code: %v", err)
	}
}

func TestDeviceAuthorizationRateLimit(t *testing.T) {
	r := newDeviceRelay(t, sqliteLoc(t))
	for i := range ipMaxHits {
		if code, body := r.postForm(t, "/oauth/device_authorization", url.Values{"client_id": {"tetherd"}}); code != http.StatusOK {
			t.Fatalf("request %d: %d %v", i, code, body)
		}
	}
	if code, body := r.postForm(t, "/oauth/device_authorization", url.Values{"client_id": {"tetherd"}}); code != http.StatusTooManyRequests {
		t.Fatalf("request over the limit: %d %v", code, body)
	}
	r.clock.Advance(ipWindow)
	if code, body := r.postForm(t, "/oauth/device_authorization", url.Values{"client_id": {"tetherd"}}); code != http.StatusOK {
		t.Fatalf("after the window: %d %v", code, body)
	}
}

func getPage(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, readAll(t, resp)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// TestDevicePage approves through the page: the signed-in user sees the
// computer and approves with the form's CSRF token.
func TestDevicePage(t *testing.T) {
	r := newDeviceRelay(t, sqliteLoc(t))
	da := r.authorize(t)

	resp, err := http.Get(da.VerificationURIComplete)
	if err != nil {
		t.Fatal(err)
	}
	page := readAll(t, resp)
	assertStrictPage(t, "device page, signed out", resp.Header, page, true)
	if !strings.Contains(page, "Sign in to the relay</a> first") || strings.Contains(page, "Approve</button>") {
		t.Fatalf("page without a user:\n%s", page)
	}
	// Sign-in comes back to this very page (the web page honours ?return=).
	if want := `href="/?return=` + url.QueryEscape(strings.TrimPrefix(da.VerificationURIComplete, r.ts.URL)); !strings.Contains(strings.ToLower(page), strings.ToLower(want)) {
		t.Fatalf("sign-in link does not return here (want %s):\n%s", want, page)
	}

	r.signIn("alice")
	resp, err = http.Get(da.VerificationURIComplete)
	if err != nil {
		t.Fatal(err)
	}
	code, page := resp.StatusCode, readAll(t, resp)
	assertStrictPage(t, "device page", resp.Header, page, true)
	for _, want := range []string{"alice-laptop", "tetherd 1.2.3", "127.0.0.1", da.UserCode, "Approve</button>", "Deny</button>"} {
		if code != http.StatusOK || !strings.Contains(page, want) {
			t.Fatalf("approval page (%d) lacks %q:\n%s", code, want, page)
		}
	}
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf field:\n%s", page)
	}

	post := func(form url.Values) (int, string) {
		resp, err := http.PostForm(r.ts.URL+"/device", form)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, readAll(t, resp)
	}
	// Without the token, or with one made for another user, nothing happens.
	if code, _ := post(url.Values{"user_code": {da.UserCode}, "action": {"approve"}}); code != http.StatusForbidden {
		t.Fatalf("POST without csrf: %d", code)
	}
	r.signIn("mallory")
	if code, _ := post(url.Values{"user_code": {da.UserCode}, "action": {"approve"}, "csrf": {m[1]}}); code != http.StatusForbidden {
		t.Fatalf("POST with alice's csrf as mallory: %d", code)
	}
	r.signIn("alice")
	if e, _ := r.poll(t, da.DeviceCode); e != "authorization_pending" {
		t.Fatalf("before approval: %q", e)
	}
	approved, err := http.PostForm(r.ts.URL+"/device", url.Values{"user_code": {da.UserCode}, "action": {"approve"}, "csrf": {m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, approved); approved.StatusCode != http.StatusOK || !strings.Contains(body, "Approved") {
		t.Fatalf("approve: %d\n%s", approved.StatusCode, body)
	} else {
		assertStrictPage(t, "device page, approved", approved.Header, body, true)
	}
	r.clock.Advance(5 * time.Second)
	if e, body := r.poll(t, da.DeviceCode); e != "" {
		t.Fatalf("after approval: %q %v", e, body)
	}
	if code, body := post(url.Values{"user_code": {da.UserCode}, "action": {"approve"}, "csrf": {m[1]}}); code != http.StatusConflict || !strings.Contains(body, "already used") {
		t.Fatalf("approve again: %d\n%s", code, body)
	}
}

// TestConnectCodes mints a code for the signed-in user and redeems it
// once; a second redemption, an expired code and a device code fail.
func TestConnectCodes(t *testing.T) {
	r := newDeviceRelay(t, sqliteLoc(t))
	mint := func(csrf string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", r.ts.URL+"/v1/connect-codes", strings.NewReader(url.Values{"csrf": {csrf}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	if code, _ := mint(""); code != http.StatusUnauthorized {
		t.Fatalf("mint without a user: %d", code)
	}
	if _, page := getPage(t, r.ts.URL+"/connect"); !strings.Contains(page, "Sign in to the relay</a> first") || strings.Contains(page, "csrf") {
		t.Fatalf("connect page without a user:\n%s", page)
	}
	r.signIn("alice")
	if code, _ := mint("forged"); code != http.StatusForbidden {
		t.Fatalf("mint with a bad csrf: %d", code)
	}
	cresp, err := http.Get(r.ts.URL + "/connect")
	if err != nil {
		t.Fatal(err)
	}
	page := readAll(t, cresp)
	assertStrictPage(t, "connect page", cresp.Header, page, true)
	m := csrfRE.FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, "Connect this computer</button>") {
		t.Fatalf("connect page:\n%s", page)
	}
	csrf := m[1]
	code, body := mint(csrf)
	if code != http.StatusOK {
		t.Fatalf("mint: %d %v", code, body)
	}
	link, err := url.Parse(body["url"].(string))
	if err != nil || link.Scheme != "tether" || link.Host != "connect" || link.Query().Get("relay") != r.ts.URL ||
		link.Query().Get("code") != body["code"] || body["expires_in"] != float64(120) {
		t.Fatalf("connect code answer: %v", body)
	}
	cc := body["code"].(string)

	// The page's plain form post gets a page that opens the link.
	resp, err := http.PostForm(r.ts.URL+"/v1/connect-codes", url.Values{"csrf": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	html := readAll(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(html, `data-open-now href="tether://connect?code=`) {
		t.Fatalf("form post: %d\n%s", resp.StatusCode, html)
	}
	assertStrictPage(t, "connect code page", resp.Header, html, true)

	code, tok := r.postForm(t, "/v1/connect-codes/redeem", url.Values{"code": {cc}})
	if code != http.StatusOK {
		t.Fatalf("redeem: %d %v", code, tok)
	}
	c, err := (&Verifier{Secret: testSecret, Now: r.clock.Now}).Verify(tok["access_token"].(string))
	if err != nil || c.Dev != "alice" || !c.HasScope(ScopeBridge) {
		t.Fatalf("redeemed token: %+v %v", c, err)
	}
	if code, body := r.postForm(t, "/v1/connect-codes/redeem", url.Values{"code": {cc}}); code != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("second redemption: %d %v", code, body)
	}

	_, body = mint(csrf)
	r.clock.Advance(ConnectCodeTTL)
	if code, body := r.postForm(t, "/v1/connect-codes/redeem", url.Values{"code": {body["code"].(string)}}); code != http.StatusBadRequest || body["error"] != "expired_token" {
		t.Fatalf("expired code: %d %v", code, body)
	}

	// A connect code is not a device code, nor the other way round.
	_, body = mint(csrf)
	if e, _ := r.poll(t, body["code"].(string)); e != "invalid_grant" {
		t.Fatalf("connect code at the token endpoint: %q", e)
	}
	da := r.authorize(t)
	if err := r.dev.Approve(t.Context(), da.UserCode, "alice", true); err != nil {
		t.Fatal(err)
	}
	if code, body := r.postForm(t, "/v1/connect-codes/redeem", url.Values{"code": {da.DeviceCode}}); code != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("device code redeemed as a connect code: %d %v", code, body)
	}
}

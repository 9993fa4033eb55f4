package web

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"

	"github.com/tether-dev/tether/relay/store"
)

// softKey is a software authenticator: one ES256 passkey with "none"
// attestation, enough for the library's real ceremony checks.
type softKey struct {
	t       *testing.T
	key     *ecdsa.PrivateKey
	id      []byte
	handle  []byte // the user handle it stored at creation
	counter uint32
}

func newSoftKey(t *testing.T) *softKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	rand.Read(id)
	return &softKey{t: t, key: k, id: id}
}

var b64 = base64.RawURLEncoding

func clientData(t *testing.T, typ, challenge, origin string) []byte {
	b, err := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": origin, "crossOrigin": false})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// authData is rpIdHash | flags (UP, UV, and AT when attested) | counter [| attested credential].
func (k *softKey) authData(rpID string, attested []byte) []byte {
	h := sha256.Sum256([]byte(rpID))
	flags := byte(0x01 | 0x04)
	if attested != nil {
		flags |= 0x40
	}
	out := append(h[:], flags)
	out = binary.BigEndian.AppendUint32(out, k.counter)
	return append(out, attested...)
}

// create answers begin's creation options as navigator.credentials.create would.
func (k *softKey) create(options []byte, origin string) string {
	t := k.t
	var o struct {
		Challenge string              `json:"challenge"`
		RP        struct{ ID string } `json:"rp"`
		User      struct{ ID string } `json:"user"`
	}
	if err := json.Unmarshal(options, &o); err != nil {
		t.Fatalf("creation options %s: %v", options, err)
	}
	handle, err := b64.DecodeString(o.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	k.handle = handle
	x, y := k.key.X.FillBytes(make([]byte, 32)), k.key.Y.FillBytes(make([]byte, 32))
	cose, err := webauthncbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: x, -3: y})
	if err != nil {
		t.Fatal(err)
	}
	att := make([]byte, 16) // AAGUID: zeros
	att = binary.BigEndian.AppendUint16(att, uint16(len(k.id)))
	att = append(append(att, k.id...), cose...)
	obj, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": k.authData(o.RP.ID, att)})
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := json.Marshal(map[string]any{
		"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(clientData(t, "webauthn.create", o.Challenge, origin)),
			"attestationObject": b64.EncodeToString(obj),
			"transports":        []string{"internal"},
		},
		"clientExtensionResults": map[string]any{},
	})
	return string(resp)
}

// get answers begin's request options as navigator.credentials.get would.
func (k *softKey) get(options []byte, origin string) string {
	t := k.t
	var o struct {
		Challenge string `json:"challenge"`
		RPID      string `json:"rpId"`
	}
	if err := json.Unmarshal(options, &o); err != nil {
		t.Fatalf("request options %s: %v", options, err)
	}
	k.counter++
	ad := k.authData(o.RPID, nil)
	cd := clientData(t, "webauthn.get", o.Challenge, origin)
	h := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, ad...), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := json.Marshal(map[string]any{
		"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(cd),
			"authenticatorData": b64.EncodeToString(ad),
			"signature":         b64.EncodeToString(sig),
			"userHandle":        b64.EncodeToString(k.handle),
		},
		"clientExtensionResults": map[string]any{},
	})
	return string(resp)
}

// pkEnv is a test relay reached as http://localhost:PORT: an RP ID is a
// host name, never an IP address.
type pkEnv struct {
	*env
	base string
}

func newPKEnv(t *testing.T, cfg Config) *pkEnv {
	e := newEnv(t, cfg)
	return &pkEnv{env: e, base: strings.Replace(e.ts.URL, "127.0.0.1", "localhost", 1)}
}

func (e *pkEnv) postForm(c *http.Client, path string, form url.Values) (int, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", e.base)
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// mustPost posts and wants status want.
func (e *pkEnv) mustPost(c *http.Client, path string, form url.Values, want int) []byte {
	e.t.Helper()
	code, body := e.postForm(c, path, form)
	if code != want {
		e.t.Fatalf("POST %s: %d, want %d\n%s", path, code, want, body)
	}
	return body
}

// page GETs a page of the relay and returns its CSRF token and body.
func (e *pkEnv) page(c *http.Client, path string, want int) (string, string) {
	e.t.Helper()
	resp, body := get(e.t, c, e.base+path)
	if resp.StatusCode != want {
		e.t.Fatalf("GET %s: %d, want %d\n%s", path, resp.StatusCode, want, body)
	}
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		return "", body
	}
	return m[1], body
}

// signUpWithPasskey follows a new sign-in link and creates a passkey with k.
func (e *pkEnv) signUpWithPasskey(user string, k *softKey) *http.Client {
	e.t.Helper()
	c := e.browser()
	if err := e.st.AddUser(e.t.Context(), store.User{ID: user, Created: e.clock.now()}); err != nil {
		e.t.Fatal(err)
	}
	link, err := NewSignInLink(e.t.Context(), e.st, e.base, user, e.clock.now())
	if err != nil {
		e.t.Fatal(err)
	}
	code := link[strings.LastIndex(link, "/")+1:]
	csrf, _ := e.page(c, "/signin/link/"+code, http.StatusOK)
	form := url.Values{"csrf": {csrf}, "code": {code}, "name": {"First passkey"}} // as the page's form
	opts := e.mustPost(c, "/signin/link/passkey/begin", form, http.StatusOK)
	form.Set("credential", k.create(opts, e.base))
	body := e.mustPost(c, "/signin/link/passkey/finish", form, http.StatusOK)
	if !strings.Contains(string(body), `"next":"/"`) {
		e.t.Fatalf("finish: %s", body)
	}
	// Used: the link is gone.
	e.page(e.browser(), "/signin/link/"+code, http.StatusGone)
	return c
}

// signInWithPasskey signs a new browser in with k.
func (e *pkEnv) signInWithPasskey(k *softKey, want int) *http.Client {
	e.t.Helper()
	c := e.browser()
	csrf, _ := e.page(c, "/", http.StatusOK)
	form := url.Values{"csrf": {csrf}}
	opts := e.mustPost(c, "/signin/passkey/begin", form, http.StatusOK)
	form.Set("credential", k.get(opts, e.base))
	e.mustPost(c, "/signin/passkey/finish", form, want)
	return c
}

func TestPasskeySignUpSignInAndOptions(t *testing.T) {
	e := newPKEnv(t, Config{})
	k := newSoftKey(t)
	c := e.signUpWithPasskey("alice", k)

	// The handle the authenticator holds is random, not the user id.
	if len(k.handle) != 32 || strings.Contains(string(k.handle), "alice") {
		t.Fatalf("user handle %q", k.handle)
	}
	_, page := e.page(c, "/account", http.StatusOK)
	if !strings.Contains(page, "First passkey") || !strings.Contains(page, "You have no password") {
		t.Fatalf("account page after sign-up:\n%s", page)
	}

	// Signed in by the passkey alone; its use is recorded.
	c2 := e.signInWithPasskey(k, http.StatusOK)
	e.page(c2, "/tokens", http.StatusOK)
	pks, err := e.st.Passkeys(t.Context(), "alice")
	if err != nil || len(pks) != 1 || pks[0].LastUsed.IsZero() {
		t.Fatalf("passkeys after sign-in: %+v, %v", pks, err)
	}

	// A passkey nobody registered is refused.
	e.signInWithPasskey(newSoftKey(t), http.StatusUnauthorized)

	// The options name this relay and require a discoverable credential.
	csrf, _ := e.page(c2, "/account", http.StatusOK)
	var opts struct {
		RP                     struct{ ID string }   `json:"rp"`
		ExcludeCredentials     []struct{ ID string } `json:"excludeCredentials"`
		AuthenticatorSelection struct {
			ResidentKey string `json:"residentKey"`
		} `json:"authenticatorSelection"`
	}
	if err := json.Unmarshal(e.mustPost(c2, "/account/passkeys/begin", url.Values{"csrf": {csrf}}, http.StatusOK), &opts); err != nil {
		t.Fatal(err)
	}
	if opts.RP.ID != "localhost" || opts.AuthenticatorSelection.ResidentKey != "required" ||
		len(opts.ExcludeCredentials) != 1 || opts.ExcludeCredentials[0].ID != b64.EncodeToString(k.id) {
		t.Fatalf("creation options %+v", opts)
	}
}

func TestPasskeyCeremonyBindingAndSingleUse(t *testing.T) {
	e := newPKEnv(t, Config{})
	k := newSoftKey(t)
	e.signUpWithPasskey("alice", k)

	c := e.browser()
	csrf, _ := e.page(c, "/", http.StatusOK)
	form := url.Values{"csrf": {csrf}}

	// Replayed: the same answer with the same ceremony cookie, twice.
	opts := e.mustPost(c, "/signin/passkey/begin", form, http.StatusOK)
	u, _ := url.Parse(e.base)
	var ceremony *http.Cookie
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == ceremonyCookie {
			ceremony = ck
		}
	}
	if ceremony == nil {
		t.Fatal("no ceremony cookie after begin")
	}
	form.Set("credential", k.get(opts, e.base))
	e.mustPost(c, "/signin/passkey/finish", form, http.StatusOK)
	// c is signed in now: a used link's page (the sign-in form) gives it
	// a pre-session CSRF token again.
	pre, _ := e.page(c, "/signin/link/nope", http.StatusGone)
	form.Set("csrf", pre)
	c.Jar.SetCookies(u, []*http.Cookie{ceremony})
	if code, body := e.postForm(c, "/signin/passkey/finish", form); code != http.StatusBadRequest || !strings.Contains(string(body), "expired or was used") {
		t.Fatalf("replayed ceremony: %d %s", code, body)
	}

	// Without the cookie (another browser), the answer is worth nothing.
	c2 := e.browser()
	csrf2, _ := e.page(c2, "/", http.StatusOK)
	opts = e.mustPost(c, "/signin/passkey/begin", url.Values{"csrf": {pre}}, http.StatusOK)
	e.mustPost(c2, "/signin/passkey/finish", url.Values{"csrf": {csrf2}, "credential": {k.get(opts, e.base)}}, http.StatusBadRequest)

	// Expired: five minutes.
	c3 := e.browser()
	csrf3, _ := e.page(c3, "/", http.StatusOK)
	opts = e.mustPost(c3, "/signin/passkey/begin", url.Values{"csrf": {csrf3}}, http.StatusOK)
	e.clock.add(CeremonyTTL)
	e.mustPost(c3, "/signin/passkey/finish", url.Values{"csrf": {csrf3}, "credential": {k.get(opts, e.base)}}, http.StatusBadRequest)

	// A registration ceremony does not finish a sign-in. (A used link's
	// page is the sign-in form: it gives c4 a pre-session CSRF token.)
	c4 := e.signInWithPasskey(k, http.StatusOK)
	csrf4, _ := e.page(c4, "/account", http.StatusOK)
	pre4, _ := e.page(c4, "/signin/link/nope", http.StatusGone)
	opts = e.mustPost(c4, "/account/passkeys/begin", url.Values{"csrf": {csrf4}}, http.StatusOK)
	e.mustPost(c4, "/signin/passkey/finish", url.Values{"csrf": {pre4}, "credential": {k.get(opts, e.base)}}, http.StatusBadRequest)

	k2 := newSoftKey(t)
	opts = e.mustPost(c4, "/account/passkeys/begin", url.Values{"csrf": {csrf4}}, http.StatusOK)
	cred := k2.create(opts, e.base)
	// CSRF: the finish needs the session's token.
	e.mustPost(c4, "/account/passkeys/finish", url.Values{"credential": {cred}}, http.StatusForbidden)
	e.mustPost(c4, "/account/passkeys/finish", url.Values{"csrf": {csrf4}, "credential": {cred}}, http.StatusOK)
	// The begin without CSRF is refused as well.
	e.mustPost(c4, "/account/passkeys/begin", url.Values{}, http.StatusForbidden)
	e.mustPost(e.browser(), "/signin/passkey/begin", url.Values{}, http.StatusForbidden)
}

func TestPasskeyCloneWarningRefused(t *testing.T) {
	e := newPKEnv(t, Config{})
	k := newSoftKey(t)
	e.signUpWithPasskey("alice", k)
	k.counter = 10
	e.signInWithPasskey(k, http.StatusOK) // stored counter: 11
	k.counter = 3                         // a copy of the key, behind
	e.signInWithPasskey(k, http.StatusUnauthorized)
	evs, err := e.st.AuditEvents(t.Context(), 100)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range evs {
		found = found || ev.Action == "web.passkey.clone_warning"
	}
	if !found {
		t.Fatalf("no clone warning in the audit trail: %+v", evs)
	}
}

func TestPasskeyRemovalNeverTheLastWayIn(t *testing.T) {
	e := newPKEnv(t, Config{})
	k1, k2 := newSoftKey(t), newSoftKey(t)
	c := e.signUpWithPasskey("alice", k1)
	csrf, page := e.page(c, "/account", http.StatusOK)
	if strings.Contains(page, "/account/passkeys/remove") {
		t.Fatalf("the only passkey offers Remove:\n%s", page)
	}
	id1 := b64.EncodeToString(k1.id)
	e.mustPost(c, "/account/passkeys/remove", url.Values{"csrf": {csrf}, "id": {id1}}, http.StatusConflict)

	opts := e.mustPost(c, "/account/passkeys/begin", url.Values{"csrf": {csrf}}, http.StatusOK)
	e.mustPost(c, "/account/passkeys/finish", url.Values{"csrf": {csrf}, "name": {"phone"}, "credential": {k2.create(opts, e.base)}}, http.StatusOK)
	// Another user's browser cannot remove alice's passkey.
	b := e.signUpWithPasskey("bob", newSoftKey(t))
	bcsrf, _ := e.page(b, "/account", http.StatusOK)
	e.mustPost(b, "/account/passkeys/remove", url.Values{"csrf": {bcsrf}, "id": {id1}}, http.StatusNotFound)

	if code, _ := e.postForm(c, "/account/passkeys/remove", url.Values{"csrf": {csrf}, "id": {id1}}); code != http.StatusSeeOther {
		t.Fatalf("removing one of two passkeys: %d", code)
	}
	e.signInWithPasskey(k1, http.StatusUnauthorized)
	e.signInWithPasskey(k2, http.StatusOK)
	id2 := b64.EncodeToString(k2.id)
	e.mustPost(c, "/account/passkeys/remove", url.Values{"csrf": {csrf}, "id": {id2}}, http.StatusConflict)

	// With a password, the last passkey may go; the password then works.
	e.mustPost(c, "/account/password", url.Values{"csrf": {csrf}, "password": {"short"}, "password2": {"short"}}, http.StatusBadRequest)
	e.mustPost(c, "/account/password", url.Values{"csrf": {csrf}, "password": {"correct horse"}, "password2": {"correct horse"}}, http.StatusOK)
	if code, _ := e.postForm(c, "/account/passkeys/remove", url.Values{"csrf": {csrf}, "id": {id2}}); code != http.StatusSeeOther {
		t.Fatalf("removing the last passkey beside a password: %d", code)
	}
	c3 := e.browser()
	pcsrf, _ := e.page(c3, "/", http.StatusOK)
	if code, _ := e.postForm(c3, "/signin", url.Values{"csrf": {pcsrf}, "user": {"alice"}, "password": {"correct horse"}}); code != http.StatusSeeOther {
		t.Fatalf("password sign-in: %d", code)
	}
}

func TestPasskeySignInRateLimited(t *testing.T) {
	e := newPKEnv(t, Config{Limits: Limits{AccountEvery: time.Hour, AccountBurst: 2, IPEvery: time.Hour, IPBurst: 100}})
	k := newSoftKey(t)
	e.signUpWithPasskey("alice", k)
	e.signInWithPasskey(k, http.StatusOK)
	e.signInWithPasskey(k, http.StatusOK)
	e.signInWithPasskey(k, http.StatusTooManyRequests)
	// Shared with the password form: alice's bucket is empty there too.
	c := e.browser()
	csrf, _ := e.page(c, "/", http.StatusOK)
	if code, _ := e.postForm(c, "/signin", url.Values{"csrf": {csrf}, "user": {"alice"}, "password": {"whatever1"}}); code != http.StatusTooManyRequests {
		t.Fatalf("password sign-in after passkey attempts: %d", code)
	}
}

func TestPasskeyNeedsAHostName(t *testing.T) {
	e := newEnv(t, Config{}) // reached as 127.0.0.1
	c := e.browser()
	_, page := get(t, c, e.ts.URL+"/")
	resp, body := e.post(c, "/signin/passkey/begin", url.Values{"csrf": {csrfOf(t, page)}}, "")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "not an IP address") {
		t.Fatalf("passkey on an IP address: %d %s", resp.StatusCode, body)
	}
}

// TestPasskeyBeginRateLimited: the passkey "begin" endpoints that need no
// session (sign-in, sign-in link) share a per-address budget of their
// own: over it, 429 with Retry-After and no ceremony written; the
// password sign-in budget is untouched; the bucket refills with time.
func TestPasskeyBeginRateLimited(t *testing.T) {
	e := newPKEnv(t, Config{Limits: Limits{CeremonyEvery: time.Minute, CeremonyBurst: 3}})
	if err := e.st.AddUser(t.Context(), store.User{ID: "alice", Created: e.clock.now()}); err != nil {
		t.Fatal(err)
	}
	link, err := NewSignInLink(t.Context(), e.st, e.base, "alice", e.clock.now())
	if err != nil {
		t.Fatal(err)
	}
	code := link[strings.LastIndex(link, "/")+1:]
	c := e.browser()
	// The link page sets the same pre-session CSRF cookie as the sign-in
	// page: one token serves both forms.
	csrf, _ := e.page(c, "/signin/link/"+code, http.StatusOK)
	e.mustPost(c, "/signin/passkey/begin", url.Values{"csrf": {csrf}}, http.StatusOK)
	e.mustPost(c, "/signin/passkey/begin", url.Values{"csrf": {csrf}}, http.StatusOK)
	e.mustPost(c, "/signin/link/passkey/begin", url.Values{"csrf": {csrf}, "code": {code}}, http.StatusOK)
	for _, path := range []string{"/signin/passkey/begin", "/signin/link/passkey/begin"} {
		req, _ := http.NewRequest(http.MethodPost, e.base+path, strings.NewReader(url.Values{"csrf": {csrf}, "code": {code}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", e.base)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "Too many") {
			t.Fatalf("%s over the budget: %d Retry-After %q %s", path, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
	// The password form has its own budget.
	if code, _ := e.postForm(c, "/signin", url.Values{"csrf": {csrf}, "user": {"alice"}, "password": {"wrong one"}}); code == http.StatusTooManyRequests {
		t.Fatal("password sign-in refused by the ceremony budget")
	}
	e.clock.add(time.Minute)
	csrf, _ = e.page(c, "/", http.StatusOK)
	e.mustPost(c, "/signin/passkey/begin", url.Values{"csrf": {csrf}}, http.StatusOK)
}

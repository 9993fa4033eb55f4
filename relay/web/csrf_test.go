package web

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestCSRFEveryPOST: every POST route of the page refuses a form without
// its CSRF token, with a wrong one, and one sent from another site (a
// foreign Origin, or no Origin and Sec-Fetch-Site: cross-site), even with
// the right token; the same form with the token from the relay's own
// origin is not refused (so the 403s above are the CSRF checks'). The
// table must name every POST route New registers.
func TestCSRFEveryPOST(t *testing.T) {
	e := newEnv(t, Config{})
	// Reached as localhost, so the passkey routes get past their host
	// name check (an RP ID is never an IP address) and the control
	// requests below show the route at work.
	e.ts.URL = strings.Replace(e.ts.URL, "127.0.0.1", "localhost", 1)
	c, sessionCSRF := e.signUp("alice", "correct horse")
	// The forms shown before a session (sign-in, a link's page) carry the
	// token of their cookie, which each showing of such a form renews:
	// this browser gets one from the link's page before each route.
	link := e.link("alice")
	code := link[strings.LastIndex(link, "/")+1:]
	freshPreCSRF := func() string {
		_, page := get(t, c, link)
		return csrfOf(t, page)
	}

	type route struct {
		path    string
		session bool       // the session's token (else the pre-session form's)
		form    url.Values // the other fields: harmless values
	}
	routes := []route{
		{"/signin", false, url.Values{"user": {"alice"}, "password": {"wrong horse"}}},
		{"/signin/link", false, url.Values{"code": {code}, "password": {"short"}, "password2": {"other"}}},
		{"/signin/link/passkey/begin", false, url.Values{"code": {code}}},
		{"/signin/link/passkey/finish", false, url.Values{"code": {code}, "credential": {"{}"}}},
		{"/signin/passkey/begin", false, url.Values{}},
		{"/signin/passkey/finish", false, url.Values{"credential": {"{}"}}},
		{"/account/passkeys/begin", true, url.Values{"name": {"phone"}}},
		{"/account/passkeys/finish", true, url.Values{"credential": {"{}"}}},
		{"/account/passkeys/remove", true, url.Values{"id": {"no-such-passkey"}}},
		{"/account/password", true, url.Values{"password": {"short"}, "password2": {"other"}}},
		{"/tokens", true, url.Values{"kind": {"nonsense"}, "ttl": {"1d"}}},
		{"/tokens/revoke", true, url.Values{"jti": {"no-such-token"}}},
		{"/signout", true, url.Values{}}, // last: the control request ends the session
	}

	// Every POST route of the mux is in the table.
	src, err := os.ReadFile("web.go")
	if err != nil {
		t.Fatal(err)
	}
	var registered []string
	for _, m := range regexp.MustCompile(`mux\.Handle(?:Func)?\("POST ([^"]+)"`).FindAllStringSubmatch(string(src), -1) {
		registered = append(registered, m[1])
	}
	if len(registered) == 0 {
		t.Fatal("found no POST route in web.go")
	}
	for _, p := range registered {
		if !slices.ContainsFunc(routes, func(r route) bool { return r.path == p }) {
			t.Errorf("POST %s is not in this test's table", p)
		}
	}

	post := func(path string, form url.Values, header http.Header) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, e.ts.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	own := http.Header{"Origin": {e.ts.URL}}
	with := func(f url.Values, csrf string) url.Values {
		g := url.Values{}
		for k, v := range f {
			g[k] = v
		}
		if csrf != "" {
			g.Set("csrf", csrf)
		}
		return g
	}
	for _, r := range routes {
		preCSRF := freshPreCSRF()
		token, other := preCSRF, sessionCSRF
		if r.session {
			token, other = sessionCSRF, preCSRF
		}
		for _, bad := range []struct {
			what   string
			form   url.Values
			header http.Header
		}{
			{"no csrf", with(r.form, ""), own},
			{"a wrong csrf", with(r.form, token+"x"), own},
			{"the other form kind's csrf", with(r.form, other), own},
			{"a foreign Origin", with(r.form, token), http.Header{"Origin": {"https://evil.example"}}},
			{"Origin null", with(r.form, token), http.Header{"Origin": {"null"}}},
			{"a cross-site fetch without Origin", with(r.form, token), http.Header{"Sec-Fetch-Site": {"cross-site"}}},
		} {
			if got := post(r.path, bad.form, bad.header); got != http.StatusForbidden {
				t.Errorf("POST %s with %s: %d, want 403", r.path, bad.what, got)
			}
		}
		if got := post(r.path, with(r.form, token), own); got == http.StatusForbidden {
			t.Errorf("POST %s with its csrf from the relay's origin: 403", r.path)
		} else {
			t.Logf("POST %s with its csrf from the relay's origin: %d", r.path, got)
		}
	}
}

package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestTokenEndpointRateLimit: POST /oauth/token has one per-address budget
// for both grants; over it, 429 with Retry-After and an OAuth error body
// (slow_down for a device-code poll, temporarily_unavailable otherwise);
// it refills with time.
func TestTokenEndpointRateLimit(t *testing.T) {
	o := newOAuthRelay(t, OAuthConfig{})
	o.frozen.Store(time.Now().UnixNano()) // no refill while the loop runs
	post := func(grant string) (*http.Response, string) {
		t.Helper()
		resp, err := http.PostForm(o.ts.URL+"/oauth/token", url.Values{"grant_type": {grant}, "code": {"nope"}})
		if err != nil {
			t.Fatal(err)
		}
		return resp, readAll(t, resp)
	}
	for i := range tokenBurst {
		if resp, body := post("authorization_code"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
	}
	for grant, want := range map[string]string{"authorization_code": "temporarily_unavailable", "refresh_token": "temporarily_unavailable", GrantTypeDeviceCode: "slow_down"} {
		resp, body := post(grant)
		var e struct{ Error string }
		json.Unmarshal([]byte(body), &e)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || e.Error != want {
			t.Fatalf("%s over the budget: %d Retry-After %q %s", grant, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
	o.frozen.Add(int64(tokenEvery))
	if resp, body := post("authorization_code"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after a refill: %d %s", resp.StatusCode, body)
	}
}

// TestAuthorizeRateLimit: GET /oauth/authorize, which needs no sign-in,
// has a per-address budget; over it, a plain-text 429 with Retry-After.
func TestAuthorizeRateLimit(t *testing.T) {
	o := newOAuthRelay(t, OAuthConfig{})
	o.frozen.Store(time.Now().UnixNano())
	get := func() (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(o.ts.URL + "/oauth/authorize?client_id=nobody")
		if err != nil {
			t.Fatal(err)
		}
		return resp, readAll(t, resp)
	}
	for i := range authorizeBurst {
		if resp, body := get(); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
	}
	resp, body := get()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") || !strings.Contains(body, "Too many") {
		t.Fatalf("over the budget: %d %q %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type"), body)
	}
	o.frozen.Add(int64(authorizeEvery))
	if resp, body := get(); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("after a refill: %d %s", resp.StatusCode, body)
	}
}

// TestCIMDHostCap: distinct client metadata URLs on one host (each a cache
// miss) are fetched at most cimdHostBurst times at once; the next is
// refused with 429 without a fetch.
func TestCIMDHostCap(t *testing.T) {
	cs := newCIMDServer(t, func(id string) string { return cimdDoc(id, "Agent", "https://agent.example/cb") })
	o := newOAuthRelay(t, OAuthConfig{CIMDAllowPrivate: true, CIMDRootCAs: cs.ts.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs})
	o.frozen.Store(time.Now().UnixNano())
	get := func(i int) (*http.Response, string) {
		t.Helper()
		id := cs.ts.URL + "/client" + strings.Repeat("x", i) + ".json"
		resp, err := http.Get(o.ts.URL + "/oauth/authorize?" + url.Values{"client_id": {id}, "redirect_uri": {"https://elsewhere.example/cb"}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		return resp, readAll(t, resp)
	}
	for i := range cimdHostBurst {
		// Fetched, then refused for its redirect URI.
		if resp, body := get(i); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "redirect_uri") {
			t.Fatalf("document %d: %d %s", i, resp.StatusCode, body)
		}
	}
	resp, body := get(cimdHostBurst)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "too many fetches") {
		t.Fatalf("over the host's budget: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if n := cs.fetches.Load(); n != cimdHostBurst {
		t.Fatalf("%d fetches, want %d", n, cimdHostBurst)
	}
	// A cached document needs no fetch: still served.
	if resp, body := get(0); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "redirect_uri") {
		t.Fatalf("cached document: %d %s", resp.StatusCode, body)
	}
}

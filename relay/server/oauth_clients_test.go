package server

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// cimdServer serves a client metadata document over loopback HTTPS.
type cimdServer struct {
	ts      *httptest.Server
	fetches atomic.Int32
	doc     atomic.Value // func(url string) string
}

func newCIMDServer(t *testing.T, doc func(id string) string) *cimdServer {
	c := &cimdServer{}
	c.doc.Store(doc)
	c.ts = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=600")
		w.Write([]byte(c.doc.Load().(func(string) string)(c.ts.URL + r.URL.Path)))
	}))
	t.Cleanup(c.ts.Close)
	return c
}

func cimdDoc(id, name string, redirects ...string) string {
	b, _ := json.Marshal(map[string]any{"client_id": id, "client_name": name, "redirect_uris": redirects,
		"grant_types": []string{"authorization_code", "refresh_token"}, "token_endpoint_auth_method": "none"})
	return string(b)
}

// TestCIMD: a client whose id is the URL of its metadata document, served
// by a loopback HTTPS server (allowed in test mode), signs in and gets a
// token; the document is fetched once and cached; a document whose
// client_id is not its URL is refused.
func TestCIMD(t *testing.T) {
	const redirect = "https://agent.example/callback"
	cs := newCIMDServer(t, func(id string) string { return cimdDoc(id, "Metadata Agent", redirect) })
	o := newOAuthRelay(t, OAuthConfig{CIMDAllowPrivate: true, CIMDRootCAs: cs.ts.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs})
	dialFakeBridge(t, o.testRelay, "alice")
	c := &manualClient{t: t, o: o, id: cs.ts.URL + "/client.json", redirect: redirect}
	res := o.mcpURL("alice", "everything")

	b := o.browser(t, "alice")
	_, page := b.consentForm(c.authURL(res))
	if !strings.Contains(page, "Metadata Agent") || !strings.Contains(page, "agent.example") {
		t.Fatalf("consent page: %s", page)
	}
	access, _ := c.mustTokens(c.code("alice", res))
	if st, _ := mcpStatus(t, access, res); st != 200 {
		t.Fatalf("CIMD client's token: %d", st)
	}
	if n := cs.fetches.Load(); n != 1 {
		t.Fatalf("document fetched %d times, want 1 (cached by max-age)", n)
	}
	// Redirect URIs of a CIMD client match exactly too.
	if resp, _ := b.do("GET", c.authURL(res, "redirect_uri", "https://agent.example/other"), nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("CIMD redirect mismatch: %d", resp.StatusCode)
	}

	cs.doc.Store(func(string) string { return cimdDoc("https://someone-else.example/client.json", "Impostor", redirect) })
	liar := &manualClient{t: t, o: o, id: cs.ts.URL + "/liar.json", redirect: redirect}
	if resp, body := b.do("GET", liar.authURL(res), nil); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "invalid_client") {
		t.Fatalf("document with another client_id: %d %s", resp.StatusCode, body)
	}
}

// TestCIMDGuards: outside test mode the fetcher refuses loopback, private
// and link-local addresses (also behind a name), plain http, no path;
// and in any mode documents over 64 KiB.
func TestCIMDGuards(t *testing.T) {
	cs := newCIMDServer(t, func(id string) string { return cimdDoc(id, "x", "https://a.example/cb") })
	roots := cs.ts.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	guarded := newCIMDFetcher(false, roots)
	port := cs.ts.Listener.Addr().(interface{ String() string }).String()
	port = port[strings.LastIndex(port, ":"):]
	for _, id := range []string{
		cs.ts.URL + "/client.json",                  // 127.0.0.1, really listening
		"https://localhost" + port + "/client.json", // a name for it
		"https://10.0.0.1/client.json",
		"https://169.254.169.254/latest/meta-data",
		"https://[::1]" + port + "/client.json",
		"https://[::ffff:127.0.0.1]" + port + "/client.json",
		"https://100.64.0.1/client.json",
	} {
		if _, _, err := guarded.fetch(t.Context(), id); err == nil || !strings.Contains(err.Error(), "not a public address") {
			t.Errorf("%s: err %v, want a refusal of the address", id, err)
		}
	}
	if cs.fetches.Load() != 0 {
		t.Fatalf("the guarded fetcher reached the loopback server %d times", cs.fetches.Load())
	}
	for _, id := range []string{"http://agent.example/client.json", "https://agent.example", "https://agent.example/",
		"https://u:p@agent.example/c.json", "https://agent.example/a/../c.json", "https://agent.example/c.json#x"} {
		if _, _, err := guarded.fetch(t.Context(), id); err == nil {
			t.Errorf("%s: fetched", id)
		}
	}

	open := newCIMDFetcher(true, roots)
	if c, ttl, err := open.fetch(t.Context(), cs.ts.URL+"/client.json"); err != nil || c.Name != "x" || ttl != 10*time.Minute {
		t.Fatalf("test-mode fetch: %+v %v %v", c, ttl, err)
	}
	cs.doc.Store(func(id string) string {
		return `{"client_id":"` + id + `","redirect_uris":["https://a.example/cb"],"pad":"` + strings.Repeat("x", maxClientMetadata) + `"}`
	})
	if _, _, err := open.fetch(t.Context(), cs.ts.URL+"/big.json"); err == nil || !strings.Contains(err.Error(), "64 KiB") {
		t.Fatalf("oversized document: %v", err)
	}
}

func TestCacheTTL(t *testing.T) {
	for cc, want := range map[string]time.Duration{
		"":                    cimdCacheFloor,
		"no-store":            cimdCacheFloor,
		"max-age=10":          cimdCacheFloor,
		"public, max-age=600": 10 * time.Minute,
		"max-age=999999":      cimdCacheCeil,
		"max-age=junk":        cimdCacheFloor,
	} {
		if got := cacheTTL(cc); got != want {
			t.Errorf("cacheTTL(%q) = %v, want %v", cc, got, want)
		}
	}
}

func TestRedirectURIRules(t *testing.T) {
	for uri, ok := range map[string]bool{
		"https://chatgpt.com/connector_platform_oauth_redirect": true,
		"http://127.0.0.1:33418/callback":                       true,
		"http://localhost:6274/oauth/callback":                  true,
		"http://[::1]:8080/cb":                                  true,
		"cursor://anysphere.cursor-retrieval/oauth/callback":    true,
		"com.example.app:/oauth2redirect":                       true,
		"http://evil.example/cb":                                false,
		"http://192.168.1.10/cb":                                false,
		"https://a.example/cb#frag":                             false,
		"https://user:pw@a.example/cb":                          false,
		"javascript:alert(1)":                                   false,
		"data:text/html,hi":                                     false,
		"/relative":                                             false,
		"":                                                      false,
	} {
		if err := checkRedirectURI(uri); (err == nil) != ok {
			t.Errorf("checkRedirectURI(%q) = %v, want ok=%v", uri, err, ok)
		}
	}
	reg := []string{"http://127.0.0.1:1/cb", "https://a.example/cb"}
	for got, ok := range map[string]bool{
		"http://127.0.0.1:1/cb":     true,
		"http://127.0.0.1:9999/cb":  true, // loopback: any port
		"http://127.0.0.1:9999/cb2": false,
		"http://localhost:1/cb":     false, // another host
		"https://a.example/cb":      true,
		"https://a.example/cb/":     false,
		"https://a.example:444/cb":  false,
		"https://a.example/cb?x=1":  false,
	} {
		if redirectMatches(reg, got) != ok {
			t.Errorf("redirectMatches(%q) != %v", got, ok)
		}
	}
}

// TestRegisterRefusals: DCR refuses what it cannot honour.
func TestRegisterRefusals(t *testing.T) {
	o := newOAuthRelay(t, OAuthConfig{})
	for body, code := range map[string]string{
		`{"redirect_uris":["http://evil.example/cb"]}`: "invalid_redirect_uri",
		`{"redirect_uris":[]}`:                         "invalid_redirect_uri",
		`{"redirect_uris":["https://a.example/cb"],"grant_types":["client_credentials"]}`: "invalid_client_metadata",
		`{"redirect_uris":["https://a.example/cb"],"response_types":["token"]}`:           "invalid_client_metadata",
		`not json`: "invalid_client_metadata",
	} {
		resp, err := http.Post(o.ts.URL+"/oauth/register", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]string
		json.Unmarshal([]byte(readAll(t, resp)), &m)
		if resp.StatusCode != 400 || m["error"] != code {
			t.Errorf("%s: %d %v, want 400 %s", body, resp.StatusCode, m, code)
		}
	}
	// A confidential client is registered as a public one: the relay
	// issues no secrets.
	c := o.register(t, "wants a secret", "https://a.example/cb")
	stored, err := o.st.OAuthClient(t.Context(), c.id)
	if err != nil || stored.Name != "wants a secret" || stored.RedirectURIs[0] != "https://a.example/cb" {
		t.Fatalf("stored client %+v %v", stored, err)
	}
}

// FuzzClientMetadata: parsing DCR bodies and CIMDs never panics, and what
// it accepts has only allowed redirect URIs and grant types.
func FuzzClientMetadata(f *testing.F) {
	f.Add([]byte(`{"client_id":"https://a.example/c.json","redirect_uris":["https://a.example/cb"]}`), true)
	f.Add([]byte(`{"redirect_uris":["http://127.0.0.1:1/cb","cursor://x/y"],"grant_types":["authorization_code"]}`), false)
	f.Add([]byte(`{"redirect_uris":"x"}`), false)
	f.Fuzz(func(t *testing.T, data []byte, cimd bool) {
		id := ""
		if cimd {
			id = "https://a.example/c.json"
		}
		m, err := parseClientMetadata(data, id)
		if err != nil {
			return
		}
		if cimd && m.ClientID != id {
			t.Fatalf("accepted CIMD with client_id %q", m.ClientID)
		}
		if len(m.RedirectURIs) == 0 || m.TokenEndpointAuthMethod != "none" {
			t.Fatalf("accepted %+v", m)
		}
		for _, u := range m.RedirectURIs {
			if err := checkRedirectURI(u); err != nil {
				t.Fatalf("accepted redirect %q: %v", u, err)
			}
			if p, _ := url.Parse(u); p.Scheme == "http" && !isLoopbackHost(p.Hostname()) {
				t.Fatalf("accepted non-loopback http %q", u)
			}
		}
		for _, g := range m.GrantTypes {
			if g != "authorization_code" && g != "refresh_token" {
				t.Fatalf("accepted grant %q", g)
			}
		}
	})
}

// TestRegisterRate: registration is open, so the relay bounds it.
// TestRegisterRate: DCR is bounded per client address and for the whole
// relay; a refused address takes nothing from the relay-wide budget.
// Linux routes all of 127/8 to loopback, so each client dials from its
// own source address.
func TestRegisterRate(t *testing.T) {
	o := newOAuthRelay(t, OAuthConfig{})
	o.frozen.Store(time.Now().UnixNano()) // no refill while the loop runs
	body := `{"client_name":"flood","redirect_uris":["https://a.example/cb"]}`
	from := func(last byte) (int, string) {
		t.Helper()
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, last)}}
		hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
		defer hc.CloseIdleConnections()
		resp, err := hc.Post(o.ts.URL+"/oauth/register", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		out := readAll(t, resp)
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
			t.Fatalf("429 without Retry-After: %s", out)
		}
		return resp.StatusCode, out
	}
	codes := map[int]int{}
	for range registerAddrBurst + 3 {
		st, _ := from(1)
		codes[st]++
	}
	if codes[http.StatusCreated] != registerAddrBurst || codes[http.StatusTooManyRequests] != 3 {
		t.Fatalf("one address: %v, want %d created then 3 refused", codes, registerAddrBurst)
	}
	// Other addresses share the rest of the relay's budget.
	clear(codes)
	addrs := registerBurst/registerAddrBurst + 1 // one more than the budget holds
	for a := range addrs {
		for range registerAddrBurst {
			st, _ := from(byte(2 + a))
			codes[st]++
		}
	}
	if left := registerBurst - registerAddrBurst; codes[http.StatusCreated] != left || codes[http.StatusTooManyRequests] != addrs*registerAddrBurst-left {
		t.Fatalf("many addresses: %v, want %d created in all", codes, left)
	}
	fresh := byte(2 + addrs)
	if st, out := from(fresh); st != http.StatusTooManyRequests || !strings.Contains(out, "too many registrations") {
		t.Fatalf("a new address past the relay's budget: %d %s", st, out)
	}
	// A second later the relay has room again, but not the address that
	// spent its own budget.
	o.frozen.Add(int64(time.Second))
	if st, out := from(fresh); st != http.StatusCreated {
		t.Fatalf("a new address after a second: %d %s", st, out)
	}
	if st, out := from(1); st != http.StatusTooManyRequests || !strings.Contains(out, "this address") {
		t.Fatalf("the flooding address after a second: %d %s", st, out)
	}
	o.frozen.Add(int64(registerAddrEvery))
	if st, out := from(1); st != http.StatusCreated {
		t.Fatalf("the flooding address after %v: %d %s", registerAddrEvery, st, out)
	}
}

// TestCIMDTimeLimit: a metadata server that answers too slowly — no
// headers, or headers and then a stalled body — is given up on within the
// fetch's time limit.
func TestCIMDTimeLimit(t *testing.T) {
	release := make(chan struct{})
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stalled-body.json" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			w.Write([]byte(`{"client_id":`))
			w.(http.Flusher).Flush()
		}
		// Held until the test ends, not until the client gives up: an
		// answer sent on the client's cancel could race its deadline.
		<-release
	}))
	defer ts.Close()
	defer close(release) // before Close, which waits for the handlers
	f := newCIMDFetcher(true, ts.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs)
	f.timeout = 300 * time.Millisecond
	for _, path := range []string{"/no-headers.json", "/stalled-body.json"} {
		start := time.Now()
		_, _, err := f.fetch(t.Context(), ts.URL+path)
		took := time.Since(start)
		if err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
			t.Fatalf("%s: err %v, want the time limit", path, err)
		}
		// The limit, plus room for a loaded machine; far below the 5 s
		// the transport's own timeouts would take.
		if took < f.timeout || took > f.timeout+2*time.Second {
			t.Fatalf("%s: gave up after %v, limit %v", path, took, f.timeout)
		}
	}
}

// TestCIMDRedirectRefused: a metadata URL that redirects is refused, and
// the redirect's target is not fetched (it could point anywhere, past the
// address guard's view of the first host).
func TestCIMDRedirectRefused(t *testing.T) {
	var targetHits atomic.Int32
	var ts *httptest.Server
	ts = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved.json" {
			http.Redirect(w, r, ts.URL+"/client.json", http.StatusFound)
			return
		}
		targetHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(cimdDoc(ts.URL+"/client.json", "target", "https://a.example/cb")))
	}))
	defer ts.Close()
	f := newCIMDFetcher(true, ts.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs)
	if _, _, err := f.fetch(t.Context(), ts.URL+"/moved.json"); err == nil || !strings.Contains(err.Error(), "status 302") {
		t.Fatalf("err %v, want a refusal of the redirect", err)
	}
	if n := targetHits.Load(); n != 0 {
		t.Fatalf("the redirect's target was fetched %d times", n)
	}
}

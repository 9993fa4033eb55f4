package server

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestMetricsAreNotPublic: the relay's public listener never gives metrics
// to an anonymous client — 404 when no metrics token is set (they are on
// their own listener), 401 without the right token when one is — while
// the metrics listener and the right token get them.
func TestMetricsAreNotPublic(t *testing.T) {
	get := func(url, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, readAll(t, resp)
	}
	const metric = "tether_relay_bridges_connected "

	t.Run("no token", func(t *testing.T) {
		r := newTestRelay(t, 5*time.Second)
		for _, tok := range []string{"", mustToken(t, "alice", ScopeClient), mustToken(t, "alice", ScopeBridge)} {
			if code, body := get(r.ts.URL+"/metrics", tok); code != http.StatusNotFound || strings.Contains(body, metric) {
				t.Errorf("main listener, token %t: %d %s", tok != "", code, body)
			}
		}
		if !strings.Contains(r.metrics(t), metric) {
			t.Error("the metrics listener has no metrics")
		}
	})

	t.Run("metrics token", func(t *testing.T) {
		const secret = "metrics-0123456789abcdef0123456789abcdef"
		r := startRelay(t, &Server{Verifier: &Verifier{Secret: testSecret}, MetricsToken: secret})
		for _, tc := range []struct {
			name, token string
		}{
			{"anonymous", ""},
			{"wrong token", secret[:len(secret)-1] + "X"},
			{"prefix of the token", secret[:8]},
			{"a client token", mustToken(t, "alice", ScopeClient)},
		} {
			code, body := get(r.ts.URL+"/metrics", tc.token)
			if code != http.StatusUnauthorized || strings.Contains(body, metric) {
				t.Errorf("%s: %d %s", tc.name, code, body)
			}
		}
		if code, body := get(r.ts.URL+"/metrics", secret); code != http.StatusOK || !strings.Contains(body, metric) {
			t.Errorf("with the metrics token: %d %s", code, body)
		}
	})
}

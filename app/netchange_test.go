package app

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tether-dev/tether/relay/server"
)

// TestEngineNetworkChangeRedials: a link waiting out a long backoff dials
// at once when the network changes, instead of sleeping on.
func TestEngineNetworkChangeRedials(t *testing.T) {
	// A front door that turns the bridge away (503) until told otherwise,
	// then passes everything to the real relay.
	var target atomic.Pointer[url.URL]
	var refuse atomic.Bool
	refuse.Store(true)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuse.Load() {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		httputil.NewSingleHostReverseProxy(target.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	bridgeTok, err := server.Issue([]byte(testRelaySecret), "alice", server.ScopeBridge, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	changes := make(chan struct{}, 1)
	f := startEngine(t, oneServer, func(o *EngineOptions) {
		o.Relay = front.URL
		o.Getenv = func(k string) string {
			if k == "TETHER_TOKEN" {
				return bridgeTok
			}
			return ""
		}
		// A backoff this long never ends within the test by itself.
		o.Tuning.BackoffBase, o.Tuning.BackoffCap = time.Hour, time.Hour
		o.netChanges = changes
	})
	u, err := url.Parse(f.relay.url)
	if err != nil {
		t.Fatal(err)
	}
	target.Store(u)
	f.waitState(t, "turned away and waiting", func(st State) bool {
		return st.Relay.Attempt > 0 && st.Relay.Phase != RelayConnected && time.Until(st.Relay.NextRetry) > 10*time.Second
	})
	refuse.Store(false)
	changed := time.Now()
	changes <- struct{}{}
	f.waitState(t, "connected after the network change", func(st State) bool { return st.Relay.Phase == RelayConnected })
	t.Logf("network change → connected: %v", time.Since(changed).Round(time.Millisecond))
}

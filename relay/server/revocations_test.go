package server

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/testpg"
	"github.com/tether-dev/tether/relay"
	"github.com/tether-dev/tether/relay/store"
)

// storeBackends are the relay's two stores; the revocation tests run on both.
var storeBackends = []struct {
	name     string
	location func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "relay.db") }},
	{"postgres", func(t *testing.T) string { return testpg.Start(t).DB(t) }},
}

func openStore(t *testing.T, loc string) *store.Store {
	t.Helper()
	st, err := store.Open(t.Context(), loc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// issueStored issues a token and records it in st, as `tether-relay token` does.
func issueStored(t *testing.T, st *store.Store, dev, scope string) (string, string) {
	t.Helper()
	tok, rec, err := IssueToken(testSecret, TokenSpec{Dev: dev, Scope: scope, TTL: time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddToken(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	return tok, rec.JTI
}

func awaitChange(t *testing.T, changed <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: the relay never saw the revocation", what)
	}
}

func awaitGone(t *testing.T, fb *fakeBridge) {
	t.Helper()
	select {
	case <-fb.Gone:
	case <-time.After(10 * time.Second):
		t.Fatal("revoked bridge still connected")
	}
	if fb.closeCode != relay.CloseUnauthorized {
		t.Fatalf("close code %d, want %d", fb.closeCode, relay.CloseUnauthorized)
	}
}

// TestRevocation: a token revoked by another process (the `token revoke`
// command writes the store while the relay runs) is refused once the
// relay polls: a client token gets 401, a bridge's socket is closed with
// 4003. One revoked through the relay itself is refused at once.
func TestRevocation(t *testing.T) {
	for _, b := range storeBackends {
		t.Run(b.name, func(t *testing.T) {
			loc := b.location(t)
			st, cli := openStore(t, loc), openStore(t, loc)
			client, clientJTI := issueStored(t, st, "alice", ScopeClient)
			bridge, bridgeJTI := issueStored(t, st, "alice", ScopeBridge)
			other, otherJTI := issueStored(t, st, "alice", ScopeClient)
			rv, err := NewRevocations(t.Context(), st, 50*time.Millisecond, nil)
			if err != nil {
				t.Fatal(err)
			}
			r := startRelay(t, &Server{Verifier: &Verifier{Secret: testSecret, Revocations: rv}})
			fb, _, err := tryDialFakeBridge(r, bridge, "alice")
			if err != nil {
				t.Fatal(err)
			}
			fb.t = t
			defer fb.ws.Close()
			fb.waitOnline(t, r, "alice")

			hc := authClient(client)
			url := r.mcpURL("alice", "everything")
			sid := openRaw(t, hc, url)

			changed := rv.Changed()
			if err := cli.Revoke(t.Context(), clientJTI, time.Now()); err != nil {
				t.Fatal(err)
			}
			awaitChange(t, changed, "client token")
			resp, body := rawPost(t, hc, url, sid, listBody)
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "revoked") {
				t.Fatalf("revoked client token: %d %s", resp.StatusCode, body)
			}

			// Through the relay's own Revocations: no poll to wait for.
			ho := authClient(other)
			osid := openRaw(t, ho, url)
			if err := rv.Revoke(t.Context(), otherJTI, time.Now()); err != nil {
				t.Fatal(err)
			}
			if resp, body := rawPost(t, ho, url, osid, listBody); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("token revoked through the relay: %d %s", resp.StatusCode, body)
			}

			if err := cli.Revoke(t.Context(), bridgeJTI, time.Now()); err != nil {
				t.Fatal(err)
			}
			awaitGone(t, fb)

			// The relay writes down when the tokens were used on its next
			// tick; no event tells the test, so it reads the store until then.
			deadline := time.After(10 * time.Second)
			for {
				rec, err := st.Token(t.Context(), bridgeJTI)
				if err != nil {
					t.Fatal(err)
				}
				if !rec.LastUsed.IsZero() {
					break
				}
				select {
				case <-deadline:
					t.Fatal("last use of the bridge token never recorded")
				case <-time.After(50 * time.Millisecond):
				}
			}
		})
	}
}

// TestTwoRelaysShareRevocations: two relays on one PostgreSQL; a token
// revoked through one is refused by the other within its poll interval.
func TestTwoRelaysShareRevocations(t *testing.T) {
	loc := testpg.Start(t).DB(t)
	stA, stB := openStore(t, loc), openStore(t, loc)
	client, clientJTI := issueStored(t, stA, "alice", ScopeClient)
	bridge, bridgeJTI := issueStored(t, stA, "alice", ScopeBridge)
	rvA, err := NewRevocations(t.Context(), stA, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	rvB, err := NewRevocations(t.Context(), stB, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := startRelay(t, &Server{Verifier: &Verifier{Secret: testSecret, Revocations: rvA}})
	b := startRelay(t, &Server{Verifier: &Verifier{Secret: testSecret, Revocations: rvB}})

	fb, _, err := tryDialFakeBridge(b, bridge, "alice")
	if err != nil {
		t.Fatal(err)
	}
	fb.t = t
	defer fb.ws.Close()
	fb.waitOnline(t, b, "alice")
	hc := authClient(client)
	url := b.mcpURL("alice", "everything")
	sid := openRaw(t, hc, url)

	changed := rvB.Changed()
	start := time.Now()
	if err := rvA.Revoke(t.Context(), clientJTI, time.Now()); err != nil {
		t.Fatal(err)
	}
	if resp, _ := rawPost(t, authClient(client), a.mcpURL("alice", "everything"), "", listBody); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("relay A, revoked token: %d", resp.StatusCode)
	}
	awaitChange(t, changed, "relay B")
	if took := time.Since(start); took > 2*DefaultRevocationPoll+time.Second {
		t.Errorf("relay B saw the revocation after %v; poll interval %v", took, DefaultRevocationPoll)
	}
	if resp, body := rawPost(t, hc, url, sid, listBody); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("relay B, revoked token: %d %s", resp.StatusCode, body)
	}

	if err := rvA.Revoke(t.Context(), bridgeJTI, time.Now()); err != nil {
		t.Fatal(err)
	}
	awaitGone(t, fb)
}

package server

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/tether-dev/tether/relay/store"
)

// TestJanitorSweep: one sweep deletes the store's expired rows (past the
// grace where it applies) and forgets the revocations of tokens expired
// past the margin, keeping the revocation of a token still live and the
// store's revocation rows.
func TestJanitorSweep(t *testing.T) {
	st := openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "relay.db"))
	ctx := t.Context()
	now := time.Now()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.AddUser(ctx, store.User{ID: "alice", Created: now}))
	must(st.AddOAuthClient(ctx, store.OAuthClient{ID: ClientTetherd, Name: "Tether", Created: now}))
	for h, exp := range map[string]time.Time{"old": now.Add(-expiryGrace - time.Minute), "recent": now.Add(-time.Minute)} {
		must(st.AddDeviceCode(ctx, store.DeviceCode{DeviceHash: h, UserCode: h, ClientID: ClientTetherd, State: store.DevicePending, Created: now, Expires: exp}))
		must(st.AddWebSession(ctx, store.WebSession{Hash: h, UserID: "alice", CSRF: "c", Created: now, Expires: exp}))
	}
	// Registered clients: one old and unused, one old with a live grant,
	// one recent (tetherd's own row is kept by its id: see the store test).
	for id, created := range map[string]time.Time{"tc_unused": now.Add(-unusedClientAge - time.Hour),
		"tc_granted": now.Add(-unusedClientAge - time.Hour), "tc_recent": now.Add(-time.Hour)} {
		must(st.AddOAuthClient(ctx, store.OAuthClient{ID: id, Name: id, RedirectURIs: []string{"https://a.example/cb"}, Created: created}))
	}
	must(st.AddOAuthGrant(ctx, store.OAuthGrant{ID: "g", UserID: "alice", ClientID: "tc_granted", ClientName: "A", Created: now}))
	// Two revoked tokens: one expired past the margin, one live.
	for jti, exp := range map[string]time.Time{"gone": now.Add(-pruneMargin - time.Minute), "live": now.Add(time.Hour)} {
		must(st.AddToken(ctx, store.Token{JTI: jti, Kind: store.KindClient, Dev: "alice", Scopes: []string{"client"}, Created: now.Add(-2 * time.Hour), Expires: exp}))
		must(st.Revoke(ctx, jti, now))
	}
	rv, err := NewRevocations(ctx, st, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rv.Has("j:gone") || !rv.Has("j:live") {
		t.Fatal("revocations not loaded")
	}

	(&Janitor{Store: st, Revocations: rv, now: func() time.Time { return now }}).Sweep(ctx)

	// A device code just expired stays through the grace (a poll hears
	// "expired"); one past it is gone. Sessions go at expiry.
	if _, err := st.DeviceCode(ctx, "old"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("old device code: %v", err)
	}
	if _, err := st.DeviceCode(ctx, "recent"); err != nil {
		t.Fatalf("recent device code: %v", err)
	}
	n, err := st.DeleteExpiredWebSessions(ctx, now, 100)
	if err != nil || n != 0 {
		t.Fatalf("sessions left expired by the sweep: %d %v", n, err)
	}
	if _, err := st.OAuthClient(ctx, "tc_unused"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unused registered client: %v", err)
	}
	for _, id := range []string{"tc_granted", "tc_recent", ClientTetherd} {
		if _, err := st.OAuthClient(ctx, id); err != nil {
			t.Fatalf("client %s: %v", id, err)
		}
	}
	if rv.Has("j:gone") || !rv.Has("j:live") {
		t.Fatalf("after the sweep: gone %v live %v, want false true", rv.Has("j:gone"), rv.Has("j:live"))
	}
	if rs, err := st.RevocationsAfter(ctx, 0); err != nil || len(rs) != 2 {
		t.Fatalf("revocation rows: %+v %v (kept as the audit record)", rs, err)
	}
}

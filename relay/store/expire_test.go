package store

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// testExpiry: each table's expiry deletes the rows ended before the
// cutoff and no others, at most limit rows a call; a dead grant goes with
// its codes, refresh tokens and token links, and its tokens' revocation
// rows stay.
func testExpiry(t *testing.T, loc string) {
	s := openStore(t, loc)
	ctx := t.Context()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.AddUser(ctx, User{ID: "alice", Created: t0}))
	must(s.AddOAuthClient(ctx, OAuthClient{ID: "tetherd", Name: "Tether", Created: t0}))
	cut := t0.Add(time.Hour)
	old, live := cut.Add(-time.Minute), cut.Add(time.Minute)
	for i, exp := range []time.Time{old, old, old, live} {
		h := fmt.Sprint("h", i)
		must(s.AddDeviceCode(ctx, DeviceCode{DeviceHash: h, UserCode: h, ClientID: "tetherd", State: DevicePending, Created: t0, Expires: exp}))
		must(s.AddSignInLink(ctx, SignInLink{Hash: h, UserID: "alice", Created: t0, Expires: exp}))
		must(s.AddWebSession(ctx, WebSession{Hash: h, UserID: "alice", CSRF: "c", Created: t0, Expires: exp}))
		must(s.AddCeremony(ctx, Ceremony{Hash: h, Kind: CeremonyLogin, Data: []byte("{}"), Expires: exp}, t0))
	}
	must(s.AddOAuthGrant(ctx, OAuthGrant{ID: "live", UserID: "alice", ClientID: "c", ClientName: "A", Created: t0}))
	must(s.AddOAuthGrant(ctx, OAuthGrant{ID: "revoked", UserID: "alice", ClientID: "c", ClientName: "A", Created: t0}))
	must(s.AddOAuthGrant(ctx, OAuthGrant{ID: "ancient", UserID: "alice", ClientID: "c", ClientName: "A", Created: t0.Add(-100 * 24 * time.Hour)}))
	for _, g := range []string{"live", "revoked", "ancient"} {
		must(s.AddOAuthCode(ctx, OAuthCode{Hash: g + "-old", GrantID: g, CodeChallenge: "x", Created: t0, Expires: old}))
		must(s.AddOAuthCode(ctx, OAuthCode{Hash: g + "-live", GrantID: g, CodeChallenge: "x", Created: t0, Expires: live}))
		must(s.AddOAuthRefresh(ctx, OAuthRefresh{Hash: g + "-old", GrantID: g, Created: t0, Expires: old}))
		must(s.AddOAuthRefresh(ctx, OAuthRefresh{Hash: g + "-live", GrantID: g, Created: t0, Expires: live}))
		must(s.AddGrantToken(ctx, g, Token{JTI: g, Kind: KindClient, Dev: "alice", Scopes: []string{"client"}, Created: t0, Expires: old}))
	}
	must(s.RevokeOAuthGrant(ctx, "revoked", t0))

	for _, c := range []struct {
		name string
		del  func(limit int) (int, error)
	}{
		{"device codes", func(l int) (int, error) { return s.DeleteExpiredDeviceCodes(ctx, cut, l) }},
		{"sign-in links", func(l int) (int, error) { return s.DeleteExpiredSignInLinks(ctx, cut, l) }},
		{"web sessions", func(l int) (int, error) { return s.DeleteExpiredWebSessions(ctx, cut, l) }},
		{"ceremonies", func(l int) (int, error) { return s.DeleteExpiredCeremonies(ctx, cut, l) }},
	} {
		// Three expired rows, a limit of two: two, then one, then none.
		for _, want := range []int{2, 1, 0} {
			if n, err := c.del(2); err != nil || n != want {
				t.Fatalf("%s: deleted %d (%v), want %d", c.name, n, err, want)
			}
		}
	}
	// What is left is the live row.
	if dc, err := s.DeviceCode(ctx, "h3"); err != nil || dc.UserCode != "h3" {
		t.Fatalf("live device code: %+v %v", dc, err)
	}
	if _, err := s.DeviceCode(ctx, "h0"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired device code: %v", err)
	}
	if _, err := s.SignInLink(ctx, "h3", t0); err != nil {
		t.Fatalf("live link: %v", err)
	}
	if _, err := s.WebSession(ctx, "h3", t0); err != nil {
		t.Fatalf("live session: %v", err)
	}
	if _, err := s.TakeCeremony(ctx, "h3", t0); err != nil {
		t.Fatalf("live ceremony: %v", err)
	}

	if n, err := s.DeleteExpiredOAuthCodes(ctx, cut, 100); err != nil || n != 3 {
		t.Fatalf("oauth codes: %d %v", n, err)
	}
	if n, err := s.DeleteExpiredOAuthRefresh(ctx, cut, 100); err != nil || n != 3 {
		t.Fatalf("oauth refresh: %d %v", n, err)
	}
	// Revoked (at t0) before cut, or created before cut minus 90 days.
	if n, err := s.DeleteDeadOAuthGrants(ctx, cut, cut.Add(-90*24*time.Hour), 100); err != nil || n != 2 {
		t.Fatalf("dead grants: %d %v", n, err)
	}
	if n, err := s.DeleteDeadOAuthGrants(ctx, cut, cut.Add(-90*24*time.Hour), 100); err != nil || n != 0 {
		t.Fatalf("dead grants again: %d %v", n, err)
	}
	if _, err := s.OAuthGrant(ctx, "live"); err != nil {
		t.Fatalf("live grant: %v", err)
	}
	for _, g := range []string{"revoked", "ancient"} {
		if _, err := s.OAuthGrant(ctx, g); !errors.Is(err, ErrNotFound) {
			t.Fatalf("grant %s: %v", g, err)
		}
		if _, err := s.RedeemOAuthCode(ctx, g+"-live", t0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("code of grant %s: %v", g, err)
		}
		if _, err := s.SpendOAuthRefresh(ctx, g+"-live", t0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("refresh token of grant %s: %v", g, err)
		}
	}
	if _, err := s.RedeemOAuthCode(ctx, "live-live", t0); err != nil {
		t.Fatalf("live grant's code: %v", err)
	}
	// The revoked grant's token: its revocation row (the audit record)
	// stays, with the token's expiry for relays to forget it by.
	rs, err := s.RevocationsAfter(ctx, 0)
	if err != nil || len(rs) != 1 || rs[0].JTI != "revoked" || !rs[0].Expires.Equal(old) {
		t.Fatalf("revocations: %+v %v", rs, err)
	}
	// Registered clients: deleted when old, of the prefix, with no grant
	// and no device code; at most limit a call.
	ancient := cut.Add(-31 * 24 * time.Hour)
	for _, id := range []string{"tc_old1", "tc_old2", "tc_granted", "tc_device", "tc_new", "old_other"} {
		created := ancient
		if id == "tc_new" {
			created = cut
		}
		must(s.AddOAuthClient(ctx, OAuthClient{ID: id, Name: id, RedirectURIs: []string{"https://a.example/cb"}, Created: created}))
	}
	must(s.AddOAuthGrant(ctx, OAuthGrant{ID: "g-of-client", UserID: "alice", ClientID: "tc_granted", ClientName: "A", Created: t0}))
	must(s.AddDeviceCode(ctx, DeviceCode{DeviceHash: "dc", UserCode: "dc", ClientID: "tc_device", State: DevicePending, Created: t0, Expires: live}))
	if _, err := s.DeleteUnusedOAuthClients(ctx, "", cut, 100); err == nil {
		t.Fatal("an empty prefix would delete every client")
	}
	for _, want := range []int{1, 1, 0} {
		if n, err := s.DeleteUnusedOAuthClients(ctx, "tc_", cut.Add(-30*24*time.Hour), 1); err != nil || n != want {
			t.Fatalf("unused clients: deleted %d (%v), want %d", n, err, want)
		}
	}
	for _, id := range []string{"tc_old1", "tc_old2"} {
		if _, err := s.OAuthClient(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unused client %s: %v", id, err)
		}
	}
	for _, id := range []string{"tc_granted", "tc_device", "tc_new", "old_other", "tetherd"} {
		if _, err := s.OAuthClient(ctx, id); err != nil {
			t.Fatalf("client %s: %v", id, err)
		}
	}

}

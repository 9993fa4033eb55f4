package store

import (
	"errors"
	"testing"
	"time"
)

// TestOAuthGrants: a grant's codes and refresh tokens are spent once (a
// second use is ErrSpent, and names the grant); revoking the grant
// revokes its access tokens (revocation rows a relay polls) and drops it
// from the user's list, which shows the last use of its tokens.
func testOAuthGrants(t *testing.T, loc string) {
	{
		s := openStore(t, loc)
		ctx := t.Context()
		g := OAuthGrant{ID: "g1", UserID: "alice", ClientID: "c1", ClientName: "Agent", RedirectURI: "https://a.example/cb",
			Resource: "https://r.example/mcp/alice/a", Scope: "mcp", Created: t0}
		if err := s.AddOAuthGrant(ctx, g); err != nil {
			t.Fatal(err)
		}
		if err := s.AddOAuthGrant(ctx, OAuthGrant{ID: "g2", UserID: "bob", ClientID: "c1", ClientName: "Agent", Created: t0}); err != nil {
			t.Fatal(err)
		}

		if err := s.AddOAuthCode(ctx, OAuthCode{Hash: "code", GrantID: "g1", CodeChallenge: "ch", Created: t0, Expires: t0.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		c, err := s.RedeemOAuthCode(ctx, "code", t0)
		if err != nil || c.GrantID != "g1" || c.CodeChallenge != "ch" || !c.Expires.Equal(t0.Add(time.Minute)) {
			t.Fatalf("redeem: %+v %v", c, err)
		}
		if c, err := s.RedeemOAuthCode(ctx, "code", t0); !errors.Is(err, ErrSpent) || c.GrantID != "g1" {
			t.Fatalf("second redeem: %+v %v, want ErrSpent naming g1", c, err)
		}
		if _, err := s.RedeemOAuthCode(ctx, "nope", t0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown code: %v", err)
		}

		if err := s.AddOAuthRefresh(ctx, OAuthRefresh{Hash: "r1", GrantID: "g1", Created: t0, Expires: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if r, err := s.SpendOAuthRefresh(ctx, "r1", t0); err != nil || r.GrantID != "g1" {
			t.Fatalf("spend refresh: %+v %v", r, err)
		}
		if _, err := s.SpendOAuthRefresh(ctx, "r1", t0); !errors.Is(err, ErrSpent) {
			t.Fatalf("second spend: %v", err)
		}

		for _, jti := range []string{"a1", "a2"} {
			if err := s.AddGrantToken(ctx, "g1", Token{JTI: jti, Kind: KindClient, Dev: "alice", Scopes: []string{"client"},
				Audience: g.Resource, Created: t0, Expires: t0.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.TouchTokens(ctx, map[string]time.Time{"a2": t0.Add(5 * time.Minute)}); err != nil {
			t.Fatal(err)
		}
		gs, err := s.OAuthGrants(ctx, "alice")
		if err != nil || len(gs) != 1 || gs[0].ID != "g1" || !gs[0].LastUsed.Equal(t0.Add(5*time.Minute)) || gs[0].ClientName != "Agent" {
			t.Fatalf("grants: %+v %v", gs, err)
		}
		// One token already revoked on its own: the grant's revocation adds
		// a row only for the other.
		if err := s.Revoke(ctx, "a1", t0); err != nil {
			t.Fatal(err)
		}
		before, err := s.RevocationsAfter(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // twice: no error, no second row
			if err := s.RevokeOAuthGrant(ctx, "g1", t0.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		after, err := s.RevocationsAfter(ctx, before[len(before)-1].ID)
		if err != nil || len(after) != 1 || after[0].JTI != "a2" {
			t.Fatalf("revocations added by the grant: %+v %v", after, err)
		}
		if got, err := s.OAuthGrant(ctx, "g1"); err != nil || !got.Revoked.Equal(t0.Add(time.Minute)) {
			t.Fatalf("revoked grant: %+v %v", got, err)
		}
		if gs, err := s.OAuthGrants(ctx, "alice"); err != nil || len(gs) != 0 {
			t.Fatalf("grants after revoke: %+v %v", gs, err)
		}
		if gs, err := s.OAuthGrants(ctx, "bob"); err != nil || len(gs) != 1 || !gs[0].LastUsed.IsZero() {
			t.Fatalf("bob's grants: %+v %v", gs, err)
		}
	}
}

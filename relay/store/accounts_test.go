package store

import (
	"errors"
	"testing"
	"time"
)

func testAccounts(t *testing.T, loc string) {
	{
		s := openStore(t, loc)
		ctx := t.Context()
		if err := s.AddUser(ctx, User{ID: "alice", Created: t0}); err != nil {
			t.Fatal(err)
		}
		if _, h, err := s.PasswordHash(ctx, "alice"); err != nil || h != "" {
			t.Fatalf("new user's hash %q, %v", h, err)
		}
		if err := s.SetPassword(ctx, "alice", "$argon2id$x"); err != nil {
			t.Fatal(err)
		}
		if _, h, err := s.PasswordHash(ctx, "alice"); err != nil || h != "$argon2id$x" {
			t.Fatalf("hash %q, %v", h, err)
		}
		if err := s.SetPassword(ctx, "bob", "x"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("password of an unknown user: %v", err)
		}

		// A link works once, and not after its expiry.
		if err := s.AddSignInLink(ctx, SignInLink{Hash: "h1", UserID: "alice", Created: t0, Expires: t0.Add(15 * time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UseSignInLink(ctx, "h1", t0.Add(15*time.Minute)); !errors.Is(err, ErrUsed) {
			t.Fatalf("expired link: %v", err)
		}
		if u, err := s.UseSignInLink(ctx, "h1", t0.Add(time.Minute)); err != nil || u != "alice" {
			t.Fatalf("first use: %q, %v", u, err)
		}
		if _, err := s.UseSignInLink(ctx, "h1", t0.Add(time.Minute)); !errors.Is(err, ErrUsed) {
			t.Fatalf("second use: %v", err)
		}
		if _, err := s.UseSignInLink(ctx, "nope", t0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown link: %v", err)
		}

		ws := WebSession{Hash: "s1", UserID: "alice", CSRF: "c", Created: t0, Expires: t0.Add(time.Hour)}
		if err := s.AddWebSession(ctx, ws); err != nil {
			t.Fatal(err)
		}
		if got, err := s.WebSession(ctx, "s1", t0.Add(time.Minute)); err != nil || got != ws {
			t.Fatalf("session %+v, %v", got, err)
		}
		if _, err := s.WebSession(ctx, "s1", t0.Add(time.Hour)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expired session: %v", err)
		}
		if err := s.DeleteWebSession(ctx, "s1"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.WebSession(ctx, "s1", t0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deleted session: %v", err)
		}

		// A token's name round-trips.
		tok := Token{JTI: "j", Kind: KindClient, Dev: "alice", Scopes: []string{"client"}, Created: t0, Expires: t0.Add(time.Hour), Name: "laptop agent"}
		if err := s.AddToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Token(ctx, "j"); err != nil || got.Name != "laptop agent" {
			t.Fatalf("token %+v, %v", got, err)
		}
	}
}

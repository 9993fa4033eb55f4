package store

import (
	"errors"
	"testing"
	"time"
)

func testPasskeys(t *testing.T, loc string) {
	s := openStore(t, loc)
	ctx := t.Context()
	for _, u := range []string{"alice", "bob"} {
		if err := s.AddUser(ctx, User{ID: u, Created: t0}); err != nil {
			t.Fatal(err)
		}
	}

	// The handle is set once: a second call keeps the first.
	h, err := s.WebAuthnHandle(ctx, "alice", "h-alice")
	if err != nil || h != "h-alice" {
		t.Fatalf("handle %q, %v", h, err)
	}
	if h, err := s.WebAuthnHandle(ctx, "alice", "other"); err != nil || h != "h-alice" {
		t.Fatalf("second handle %q, %v", h, err)
	}
	if _, err := s.WebAuthnHandle(ctx, "nobody", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("handle of an unknown user: %v", err)
	}
	if id, err := s.UserByWebAuthnHandle(ctx, "h-alice"); err != nil || id != "alice" {
		t.Fatalf("user by handle %q, %v", id, err)
	}
	if _, err := s.UserByWebAuthnHandle(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown handle: %v", err)
	}

	p1 := Passkey{ID: "c1", UserID: "alice", Name: "laptop", Credential: []byte(`{"a":1}`), Created: t0}
	p2 := Passkey{ID: "c2", UserID: "alice", Name: "phone", Credential: []byte(`{"a":2}`), Created: t0.Add(time.Minute)}
	for _, p := range []Passkey{p1, p2} {
		if err := s.AddPasskey(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddPasskey(ctx, p1); !errors.Is(err, ErrExists) {
		t.Fatalf("the same credential twice: %v", err)
	}
	if err := s.UsedPasskey(ctx, "c1", []byte(`{"a":3}`), t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.UsedPasskey(ctx, "nope", nil, t0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("use of an unknown passkey: %v", err)
	}
	got, err := s.Passkeys(ctx, "alice")
	if err != nil || len(got) != 2 || got[0].ID != "c1" || string(got[0].Credential) != `{"a":3}` ||
		!got[0].LastUsed.Equal(t0.Add(time.Hour)) || !got[1].LastUsed.IsZero() || got[1].Name != "phone" {
		t.Fatalf("passkeys %+v, %v", got, err)
	}
	if got, err := s.Passkeys(ctx, "bob"); err != nil || len(got) != 0 {
		t.Fatalf("bob's passkeys %+v, %v", got, err)
	}

	// Never the last way in: alice has no password, so one passkey stays.
	if err := s.DeletePasskey(ctx, "bob", "c1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removing another user's passkey: %v", err)
	}
	if err := s.DeletePasskey(ctx, "alice", "c1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePasskey(ctx, "alice", "c2"); !errors.Is(err, ErrLastWayIn) {
		t.Fatalf("removing the last passkey without a password: %v", err)
	}
	if err := s.SetPassword(ctx, "alice", "$argon2id$x"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePasskey(ctx, "alice", "c2"); err != nil {
		t.Fatalf("removing the last passkey beside a password: %v", err)
	}
	if err := s.DeletePasskey(ctx, "alice", "c2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removing it again: %v", err)
	}

	// A ceremony is taken once, and not after its expiry.
	c := Ceremony{Hash: "k1", Kind: CeremonyRegister, UserID: "alice", LinkHash: "l", Data: []byte(`{"challenge":"x"}`), Expires: t0.Add(5 * time.Minute)}
	if err := s.AddCeremony(ctx, c, t0); err != nil {
		t.Fatal(err)
	}
	if got, err := s.TakeCeremony(ctx, "k1", t0.Add(time.Minute)); err != nil || got.Kind != c.Kind || got.UserID != "alice" ||
		got.LinkHash != "l" || string(got.Data) != string(c.Data) || !got.Expires.Equal(c.Expires) {
		t.Fatalf("ceremony %+v, %v", got, err)
	}
	if _, err := s.TakeCeremony(ctx, "k1", t0.Add(time.Minute)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second take: %v", err)
	}
	c.Hash = "k2"
	if err := s.AddCeremony(ctx, c, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TakeCeremony(ctx, "k2", t0.Add(5*time.Minute)); !errors.Is(err, ErrUsed) {
		t.Fatalf("expired ceremony: %v", err)
	}
	// Adding one drops the expired ones.
	c.Hash = "k3"
	if err := s.AddCeremony(ctx, c, t0); err != nil {
		t.Fatal(err)
	}
	c.Hash = "k4"
	if err := s.AddCeremony(ctx, c, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TakeCeremony(ctx, "k3", t0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an expired ceremony outlived a later add: %v", err)
	}
}

package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/testpg"
)

// backends are the two the relay supports. Each one's start readies the
// backend once (PostgreSQL: a server for the whole suite) and returns how
// to make a new, empty database in it, as a --db value.
var backends = []struct {
	name  string
	start func(t *testing.T) func(t *testing.T) string
}{
	{"sqlite", func(*testing.T) func(t *testing.T) string {
		return func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "relay.db") }
	}},
	{"postgres", func(t *testing.T) func(t *testing.T) string {
		pg := testpg.Start(t)
		return func(t *testing.T) string { return pg.DB(t) }
	}},
}

// TestStore runs the whole suite on both backends, each test on a fresh database.
func TestStore(t *testing.T) {
	suite := []struct {
		name string
		f    func(t *testing.T, loc string)
	}{
		{"MigrationsIdempotent", testMigrationsIdempotent},
		{"TokensAndRevocations", testTokensAndRevocations},
		{"TwoWriters", testTwoWriters},
		{"Records", testRecords},
		{"ImportLegacyTokenFile", testImportLegacyTokenFile},
		{"Accounts", testAccounts},
		{"OAuthGrants", testOAuthGrants},
		{"Passkeys", testPasskeys},
		{"Expiry", testExpiry},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			newDB := b.start(t)
			for _, c := range suite {
				t.Run(c.name, func(t *testing.T) { c.f(t, newDB(t)) })
			}
		})
	}
}

func openStore(t *testing.T, loc string) *Store {
	t.Helper()
	s, err := Open(t.Context(), loc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var t0 = time.Date(2026, 12, 3, 20, 0, 0, 0, time.UTC)

func testMigrationsIdempotent(t *testing.T, loc string) {
	{
		// Two relays starting at once on an empty database: one creates
		// the schema, the other waits for it and applies nothing.
		errc := make(chan error, 2)
		for range 2 {
			go func() {
				s, err := Open(t.Context(), loc)
				if err == nil {
					s.Close()
				}
				errc <- err
			}()
		}
		for range 2 {
			if err := <-errc; err != nil {
				t.Fatalf("concurrent first open: %v", err)
			}
		}
		s := openStore(t, loc)
		v, err := s.SchemaVersion(t.Context())
		if err != nil || v < 1 {
			t.Fatalf("schema version %d, %v", v, err)
		}
		if err := s.AddToken(t.Context(), Token{JTI: "a", Kind: KindBridge, Dev: "alice", Scopes: []string{"bridge"}, Created: t0, Expires: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		s.Close()
		// Restarted twice: nothing applied again, nothing lost.
		for range 2 {
			s2 := openStore(t, loc)
			if v2, err := s2.SchemaVersion(t.Context()); err != nil || v2 != v {
				t.Fatalf("after restart: schema version %d, %v; want %d", v2, err, v)
			}
			if _, err := s2.Token(t.Context(), "a"); err != nil {
				t.Fatalf("after restart: %v", err)
			}
			s2.Close()
		}
		var n int
		s3 := openStore(t, loc)
		if err := s3.db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if want, _ := s3.migrations(); n != len(want) {
			t.Fatalf("%d rows in schema_migrations, want %d", n, len(want))
		}
	}
}

func testTokensAndRevocations(t *testing.T, loc string) {
	{
		ctx := t.Context()
		s := openStore(t, loc)
		b := Token{JTI: "b1", Kind: KindBridge, Dev: "alice", Scopes: []string{"bridge"}, Audience: "https://r.example.com", Created: t0, Expires: t0.Add(time.Hour)}
		c := Token{JTI: "c1", Kind: KindClient, Dev: "bob", Scopes: []string{"client"}, Audience: "tether-relay", Created: t0.Add(time.Second), Expires: t0.Add(2 * time.Hour)}
		for _, tok := range []Token{b, c} {
			if err := s.AddToken(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.AddToken(ctx, b); !errors.Is(err, ErrExists) {
			t.Fatalf("same jti twice: %v", err)
		}
		if err := s.AddToken(ctx, Token{JTI: "x", Kind: "admin"}); err == nil {
			t.Fatal("accepted kind admin")
		}
		got, err := s.Token(ctx, "b1")
		if err != nil || !tokensEqual(got, b) {
			t.Fatalf("token b1: %+v, %v; want %+v", got, err, b)
		}
		if _, err := s.Token(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown jti: %v", err)
		}
		all, err := s.Tokens(ctx, "")
		if err != nil || len(all) != 2 || all[0].JTI != "b1" || all[1].JTI != "c1" {
			t.Fatalf("tokens: %+v, %v", all, err)
		}
		bobs, err := s.Tokens(ctx, "bob")
		if err != nil || len(bobs) != 1 || bobs[0].JTI != "c1" {
			t.Fatalf("bob's tokens: %+v, %v", bobs, err)
		}

		if err := s.TouchTokens(ctx, map[string]time.Time{"c1": t0.Add(time.Minute), "legacy": t0}); err != nil {
			t.Fatal(err)
		}
		if err := s.TouchTokens(ctx, map[string]time.Time{"c1": t0}); err != nil { // older: ignored
			t.Fatal(err)
		}
		if got, _ := s.Token(ctx, "c1"); !got.LastUsed.Equal(t0.Add(time.Minute)) {
			t.Fatalf("last used %v", got.LastUsed)
		}

		if err := s.Revoke(ctx, "nope", t0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("revoke unknown: %v", err)
		}
		rs, err := s.RevocationsAfter(ctx, 0)
		if err != nil || len(rs) != 0 {
			t.Fatalf("revocations before any: %v, %v", rs, err)
		}
		if err := s.Revoke(ctx, "c1", t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.Revoke(ctx, "c1", t0.Add(2*time.Hour)); err != nil { // again: no change
			t.Fatal(err)
		}
		if err := s.Revoke(ctx, "b1", t0.Add(3*time.Hour)); err != nil {
			t.Fatal(err)
		}
		rs, err = s.RevocationsAfter(ctx, 0)
		if err != nil || len(rs) != 2 || rs[0].JTI != "c1" || rs[1].JTI != "b1" || rs[0].ID >= rs[1].ID || !rs[0].At.Equal(t0.Add(time.Hour)) {
			t.Fatalf("revocations: %+v, %v", rs, err)
		}
		after, err := s.RevocationsAfter(ctx, rs[0].ID)
		if err != nil || len(after) != 1 || after[0].JTI != "b1" {
			t.Fatalf("revocations after the first: %+v, %v", after, err)
		}
		if got, _ := s.Token(ctx, "c1"); !got.Revoked.Equal(t0.Add(time.Hour)) {
			t.Fatalf("c1 revoked at %v", got.Revoked)
		}
	}
}

func tokensEqual(a, b Token) bool {
	return a.JTI == b.JTI && a.Kind == b.Kind && a.Dev == b.Dev && slices.Equal(a.Scopes, b.Scopes) && a.Audience == b.Audience &&
		a.Created.Equal(b.Created) && a.Expires.Equal(b.Expires) && a.LastUsed.Equal(b.LastUsed) && a.Revoked.Equal(b.Revoked) && a.Name == b.Name
}

// TestTwoWriters: two stores on one database (the `token` command while
// `serve` runs) both write, and each sees the other's revocations.
func testTwoWriters(t *testing.T, loc string) {
	{
		ctx := t.Context()
		a, b := openStore(t, loc), openStore(t, loc)
		errc := make(chan error, 2)
		for i, s := range []*Store{a, b} {
			go func() {
				for j := range 20 {
					jti := string(rune('a'+i)) + string(rune('A'+j))
					if err := s.AddToken(ctx, Token{JTI: jti, Kind: KindClient, Dev: "d", Created: t0, Expires: t0.Add(time.Hour)}); err != nil {
						errc <- err
						return
					}
					if err := s.Revoke(ctx, jti, t0); err != nil {
						errc <- err
						return
					}
				}
				errc <- nil
			}()
		}
		for range 2 {
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		}
		for _, s := range []*Store{a, b} {
			rs, err := s.RevocationsAfter(ctx, 0)
			if err != nil || len(rs) != 40 {
				t.Fatalf("%d revocations, %v; want 40", len(rs), err)
			}
		}
	}
}

func testRecords(t *testing.T, loc string) {
	{
		ctx := t.Context()
		s := openStore(t, loc)
		if err := s.AddUser(ctx, User{ID: "alice", Created: t0}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddUser(ctx, User{ID: "alice", Created: t0}); !errors.Is(err, ErrExists) {
			t.Fatalf("user twice: %v", err)
		}
		if u, err := s.User(ctx, "alice"); err != nil || !u.Created.Equal(t0) || !u.Disabled.IsZero() {
			t.Fatalf("user: %+v, %v", u, err)
		}
		if _, err := s.User(ctx, "bob"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown user: %v", err)
		}

		cl := OAuthClient{ID: "tetherd", Name: "Tether", RedirectURIs: []string{"http://127.0.0.1/cb", "tether://cb"}, Created: t0}
		if err := s.AddOAuthClient(ctx, cl); err != nil {
			t.Fatal(err)
		}
		if got, err := s.OAuthClient(ctx, "tetherd"); err != nil || got.Name != cl.Name || !slices.Equal(got.RedirectURIs, cl.RedirectURIs) {
			t.Fatalf("client: %+v, %v", got, err)
		}
		if _, err := s.OAuthClient(ctx, "x"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown client: %v", err)
		}

		dc := DeviceCode{DeviceHash: "h1", UserCode: "WDJB-MJHT", ClientID: "tetherd", Created: t0, Expires: t0.Add(10 * time.Minute)}
		if err := s.AddDeviceCode(ctx, dc); err != nil {
			t.Fatal(err)
		}
		if err := s.AddDeviceCode(ctx, DeviceCode{DeviceHash: "h2", UserCode: "X", ClientID: "nobody", Created: t0, Expires: t0}); err == nil {
			t.Fatal("device code for an unregistered client: foreign keys are off")
		}
		if err := s.SetDeviceState(ctx, "h1", DevicePending, DeviceApproved, "alice"); err != nil {
			t.Fatal(err)
		}
		// Approved once only; redeemed once only.
		if err := s.SetDeviceState(ctx, "h1", DevicePending, DeviceDenied, "alice"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second decision: %v", err)
		}
		if err := s.SetDeviceState(ctx, "h1", DeviceApproved, DeviceRedeemed, ""); err != nil {
			t.Fatal(err)
		}
		if err := s.SetDeviceState(ctx, "h1", DeviceApproved, DeviceRedeemed, ""); !errors.Is(err, ErrNotFound) {
			t.Fatalf("redeemed twice: %v", err)
		}
		if got, err := s.DeviceCode(ctx, "h1"); err != nil || got.State != DeviceRedeemed || got.UserID != "alice" || got.UserCode != dc.UserCode || !got.Expires.Equal(dc.Expires) {
			t.Fatalf("device code: %+v, %v", got, err)
		}

		for i, a := range []string{"token.issue", "token.revoke"} {
			if id, err := s.AddAudit(ctx, AuditEvent{At: t0.Add(time.Duration(i) * time.Second), Actor: "cli", Action: a, Subject: "j1"}); err != nil || id <= 0 {
				t.Fatalf("audit: %d, %v", id, err)
			}
		}
		es, err := s.AuditEvents(ctx, 10)
		if err != nil || len(es) != 2 || es[0].Action != "token.revoke" || es[1].Action != "token.issue" || !es[1].At.Equal(t0) {
			t.Fatalf("audit events: %+v, %v", es, err)
		}
	}
}

func testImportLegacyTokenFile(t *testing.T, loc string) {
	{
		ctx := t.Context()
		s := openStore(t, loc)
		path := filepath.Join(t.TempDir(), "secret.tokens")
		if ok, err := s.ImportLegacyTokenFile(ctx, path); ok || err != nil {
			t.Fatalf("no file: %v, %v", ok, err)
		}
		legacy := `{"issued":[{"jti":"j1","dev":"alice","scope":"bridge","aud":"tether-relay","iat":"2026-01-01T00:00:00Z","exp":"2026-02-01T00:00:00Z"},
			{"jti":"j2","dev":"alice","scope":"client","iat":"2026-01-01T00:00:00Z","exp":"2026-02-01T00:00:00Z"}],
			"revoked":[{"jti":"j2","at":"2026-01-02T00:00:00Z"}]}`
		if err := os.WriteFile(path, []byte(legacy), 0o600); err != nil {
			t.Fatal(err)
		}
		for range 2 { // a second file with the same records: nothing doubled
			if ok, err := s.ImportLegacyTokenFile(ctx, path); !ok || err != nil {
				t.Fatalf("import: %v, %v", ok, err)
			}
			if _, err := os.Stat(path + ".imported"); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("legacy file still there: %v", err)
			}
			os.Rename(path+".imported", path)
		}
		ts, err := s.Tokens(ctx, "")
		if err != nil || len(ts) != 2 || ts[0].Kind != KindBridge || ts[1].Kind != KindClient {
			t.Fatalf("imported tokens: %+v, %v", ts, err)
		}
		rs, err := s.RevocationsAfter(ctx, 0)
		if err != nil || len(rs) != 1 || rs[0].JTI != "j2" || !rs[0].At.Equal(time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("imported revocations: %+v, %v", rs, err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	for _, loc := range []string{"", "mysql://x", "sqlite:", "sqlite:/tmp/x.db?mode=ro"} {
		if _, err := Open(context.Background(), loc); err == nil {
			t.Errorf("Open(%q) succeeded", loc)
		}
	}
	_, err := Open(context.Background(), "mysql://u:hunter2@h/db")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error shows the password: %v", err)
	}
}

func TestSQLiteFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay.db")
	openStore(t, "sqlite:"+path)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		t.Fatalf("store file mode %v, want no access for others", st.Mode().Perm())
	}
}

package server

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func seedIDs(t testing.TB, s *sessionSigner) []string {
	t.Helper()
	now := time.Now()
	c := Claims{Dev: "alice", ID: "j:abc", Expiry: now.Add(time.Hour)}
	var ids []string
	for _, body := range []string{
		initBody,
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`,
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities":{"x":"` + strings.Repeat("a", maxResumeParams) + `"}}}`,
		`not json`,
	} {
		id, err := s.sign(sessionClaimsFor("alice", "files", c, []byte(body), now, time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// TestSessionIDRoundTrip: an id carries what the replay needs, is visible
// ASCII (0x21–0x7E, as the spec requires of Mcp-Session-Id), and expires
// with the token when the token expires first.
func TestSessionIDRoundTrip(t *testing.T) {
	s := newSessionSigner(testSecret)
	ids := seedIDs(t, s)
	for _, id := range ids {
		for i := 0; i < len(id); i++ {
			if id[i] < 0x21 || id[i] > 0x7e {
				t.Fatalf("id %q has byte %#x at %d", id, id[i], i)
			}
		}
	}
	sc, err := s.parse(ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if sc.Dev != "alice" || sc.Server != "files" || sc.Token != "j:abc" || sc.Version != "2025-06-18" || sc.NoResume ||
		string(sc.Caps) != `{"roots":{"listChanged":true}}` || string(sc.Info) != `{"name":"raw","version":"1"}` {
		t.Fatalf("claims %+v", sc)
	}
	var replay struct {
		ID     string     `json:"id"`
		Method string     `json:"method"`
		Params initParams `json:"params"`
	}
	if err := json.Unmarshal(sc.replayInitialize(), &replay); err != nil {
		t.Fatal(err)
	}
	if replay.ID != resumeRequestID || replay.Method != "initialize" || replay.Params.ProtocolVersion != "2025-06-18" ||
		string(replay.Params.Capabilities) != string(sc.Caps) || string(replay.Params.ClientInfo) != string(sc.Info) {
		t.Fatalf("replay %+v", replay)
	}
	cl := Claims{ID: "j:abc"}
	if !sc.valid("alice", "files", cl, time.Now()) || sc.valid("alice", "files", cl, time.Now().Add(2*time.Hour)) {
		t.Fatal("expiry not applied")
	}
	big, err := s.parse(ids[2])
	if err != nil || !big.NoResume || big.Caps != nil {
		t.Fatalf("oversized params: %+v %v", big, err)
	}
	if id := ids[0]; newSessionSigner(testSecret).mustParse(t, id) == nil {
		t.Fatal("another signer with the same secret refused the id")
	}
	if _, err := newSessionSigner([]byte("another secret")).parse(ids[0]); err == nil {
		t.Fatal("a signer with another secret accepted the id")
	}
	// The session key is not the token key: an id's MAC is not what the
	// secret itself would give.
	if string(s.key) == string(testSecret) {
		t.Fatal("session key equals the secret")
	}
}

func (s *sessionSigner) mustParse(t *testing.T, id string) *sessionClaims {
	t.Helper()
	sc, err := s.parse(id)
	if err != nil {
		t.Fatalf("parse %q: %v", id, err)
	}
	return sc
}

// FuzzParseSessionID: the parser never panics; an id it accepts carries a
// valid signature and is spelled canonically (a respelled id would get past
// the session book, which knows ids by their hash).
func FuzzParseSessionID(f *testing.F) {
	s := newSessionSigner(testSecret)
	for _, id := range seedIDs(f, s) {
		f.Add(id)
		f.Add(id[:len(id)-1] + "B")
		f.Add(strings.Replace(id, ".", "..", 1))
	}
	f.Add("")
	f.Add(sessionIDPrefix)
	f.Add(sessionIDPrefix + ".")
	f.Add("s1.e30.AAAA")
	f.Add(newSessionID())
	f.Fuzz(func(t *testing.T, id string) {
		sc, err := s.parse(id)
		if err != nil {
			return
		}
		dot := strings.LastIndexByte(id, '.')
		payload, err1 := base64.RawURLEncoding.DecodeString(id[len(sessionIDPrefix):dot])
		mac, err2 := base64.RawURLEncoding.DecodeString(id[dot+1:])
		if err1 != nil || err2 != nil {
			t.Fatalf("accepted %q with undecodable parts", id)
		}
		canon := sessionIDPrefix + base64.RawURLEncoding.EncodeToString(payload)
		canon += "." + base64.RawURLEncoding.EncodeToString(mac)
		if canon != id {
			t.Fatalf("accepted %q, spelled canonically %q (%+v)", id, canon, sc)
		}
		if !hmac.Equal(mac, s.mac(id[:dot])) {
			t.Fatalf("accepted %q without its signature", id)
		}
	})
}

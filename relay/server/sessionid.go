package server

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// A 2025-era Mcp-Session-Id describes itself and is signed by the relay:
//
//	s1.<base64url(JSON payload)>.<base64url(HMAC-SHA256(key, "s1." + payload part))>
//
// Any relay process with the same secret accepts it, so a session outlives
// the bridge socket it was opened on, a relay restart and a tetherd restart:
// when a request names a valid id that the current bridge socket has never
// seen, the relay re-creates the session under the same id and replays the
// client's initialize to the bridge from the payload (see resumeSession).
//
// The id holds no secret: the payload is readable by whoever holds the id,
// which is the client that created it. It holds the client's capabilities
// and clientInfo, nothing of the token but its id.

// sessionIDPrefix names the format; a new format gets a new prefix.
const sessionIDPrefix = "s1."

// maxSessionIDLen bounds what the parser looks at. An id made here stays
// far below it: the initialize params it carries are bounded by
// maxResumeParams.
const maxSessionIDLen = 8 << 10

// maxResumeParams bounds the client capabilities and clientInfo carried in
// an id (compact JSON, together). A client whose initialize params are
// larger gets an id that cannot be resumed on another socket.
const maxResumeParams = 3 << 10

// sessionKeyLabel separates the session-id key from the JWT signing key,
// which is the secret itself.
const sessionKeyLabel = "tether-relay session id v1"

// sessionClaims is the signed payload of a session id.
type sessionClaims struct {
	Dev    string `json:"d"`
	Server string `json:"s"`
	// Token is the principal of the client token (Claims.Principal): its
	// id, or for an OAuth access token its grant, so the session outlives
	// the hourly refresh. The session works only for that principal.
	Token string `json:"t"`
	// Version is the protocolVersion the client asked for in initialize;
	// replaying it negotiates the same version again.
	Version string          `json:"p,omitempty"`
	Caps    json.RawMessage `json:"c,omitempty"`
	Info    json.RawMessage `json:"i,omitempty"`
	// NoResume marks an id whose initialize params were too large to
	// carry: it works only on the socket it was opened on.
	NoResume bool  `json:"x,omitempty"`
	Issued   int64 `json:"at"`
	// Expires (unix seconds) is the earlier of the token's expiry and the
	// relay's maximum session age at issue time; for an OAuth access token
	// the maximum session age alone (each request still needs a live
	// token of the grant, and a revoked grant's tokens are refused).
	Expires int64 `json:"e"`
	// Nonce keeps two sessions of one token opened in the same second apart.
	Nonce string `json:"n"`
}

func (c *sessionClaims) expiry() time.Time { return time.Unix(c.Expires, 0) }

// sessionSigner makes and checks session ids.
type sessionSigner struct{ key []byte }

// newSessionSigner derives the id key from the relay secret. With no
// secret (a relay that cannot verify tokens anyway) it uses a random key:
// ids then work only in this process.
func newSessionSigner(secret []byte) *sessionSigner {
	if len(secret) == 0 {
		k := make([]byte, 32)
		rand.Read(k)
		return &sessionSigner{key: k}
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(sessionKeyLabel))
	return &sessionSigner{key: m.Sum(nil)}
}

func (s *sessionSigner) mac(signed string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(signed))
	return m.Sum(nil)
}

// sign returns the id for c. It fills Nonce.
func (s *sessionSigner) sign(c sessionClaims) (string, error) {
	var n [9]byte
	rand.Read(n[:])
	c.Nonce = base64.RawURLEncoding.EncodeToString(n[:])
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("session id: %w", err)
	}
	signed := sessionIDPrefix + base64.RawURLEncoding.EncodeToString(payload)
	return signed + "." + base64.RawURLEncoding.EncodeToString(s.mac(signed)), nil
}

var strictB64 = base64.RawURLEncoding.Strict()

var errBadSessionID = errors.New("not a session id of this relay")

// parse checks id's form and signature and returns its claims. It does
// not check expiry, binding or revocation: see sessionClaims.valid.
func (s *sessionSigner) parse(id string) (*sessionClaims, error) {
	// encoding/base64 skips \r and \n even when Strict, so an id with one
	// inside would be a second spelling of the same session (found by
	// FuzzParseSessionID).
	if len(id) > maxSessionIDLen || !strings.HasPrefix(id, sessionIDPrefix) || strings.ContainsAny(id, "\r\n") {
		return nil, errBadSessionID
	}
	dot := strings.LastIndexByte(id, '.')
	if dot < len(sessionIDPrefix) {
		return nil, errBadSessionID
	}
	signed, sig := id[:dot], id[dot+1:]
	// Strict: one signature, one spelling. Lax decoding accepts other last
	// characters for the same bytes, and a respelled id would slip past
	// the session book, which knows ids by their hash.
	got, err := strictB64.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac(signed)) {
		return nil, errBadSessionID
	}
	payload, err := strictB64.DecodeString(signed[len(sessionIDPrefix):])
	if err != nil {
		return nil, errBadSessionID
	}
	var c sessionClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		// Only this relay signs; a payload it cannot read is a bug, but
		// still just an unknown session to the client.
		return nil, errBadSessionID
	}
	if c.Dev == "" || c.Server == "" || c.Token == "" || c.Expires == 0 {
		return nil, errBadSessionID
	}
	return &c, nil
}

// valid reports whether the claims let this request use the session: same
// dev, same server, same principal (token or OAuth grant), not expired.
func (c *sessionClaims) valid(dev, server string, cl Claims, now time.Time) bool {
	return c.Dev == dev && c.Server == server && cl.owns(c.Token) && now.Before(c.expiry())
}

// initParams is what the relay keeps of a client's initialize request.
type initParams struct {
	ProtocolVersion string          `json:"protocolVersion"`
	Capabilities    json.RawMessage `json:"capabilities"`
	ClientInfo      json.RawMessage `json:"clientInfo"`
}

// sessionClaimsFor builds the payload for a session opened by body (an
// initialize request). Params that do not fit make a non-resumable id.
func sessionClaimsFor(dev, server string, c Claims, body []byte, now time.Time, maxAge time.Duration) sessionClaims {
	sc := sessionClaims{Dev: dev, Server: server, Token: c.Principal(), Issued: now.Unix()}
	exp := now.Add(maxAge)
	if c.Grant == "" && !c.Expiry.IsZero() && c.Expiry.Before(exp) {
		exp = c.Expiry
	}
	sc.Expires = exp.Unix()
	var req struct {
		Params initParams `json:"params"`
	}
	if json.Unmarshal(body, &req) != nil {
		sc.NoResume = true
		return sc
	}
	p := req.Params
	caps, info := compactJSON(p.Capabilities), compactJSON(p.ClientInfo)
	if len(caps)+len(info)+len(p.ProtocolVersion) > maxResumeParams {
		sc.NoResume = true
		return sc
	}
	sc.Version, sc.Caps, sc.Info = p.ProtocolVersion, caps, info
	return sc
}

func compactJSON(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return nil
	}
	return buf.Bytes()
}

// replayInitialize is the initialize request the relay sends for a resumed
// session, under a request id of its own (the client's requests wait until
// it is answered, so the ids cannot meet).
func (c *sessionClaims) replayInitialize() []byte {
	caps, info := c.Caps, c.Info
	if caps == nil {
		caps = json.RawMessage("{}")
	}
	if info == nil {
		info = json.RawMessage(`{"name":"unknown","version":"0"}`)
	}
	msg, _ := json.Marshal(map[string]any{
		"jsonrpc": "2.0",
		"id":      resumeRequestID,
		"method":  "initialize",
		"params":  initParams{ProtocolVersion: c.Version, Capabilities: caps, ClientInfo: info},
	})
	return msg
}

// resumeRequestID is the id of a replayed initialize.
const resumeRequestID = "tether-relay:resume"

var initializedNotification = []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)

// sessionHash keys the relay's records of ids without keeping the ids.
func sessionHash(id string) [32]byte { return sha256.Sum256([]byte(id)) }

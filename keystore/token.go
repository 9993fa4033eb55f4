package keystore

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"unicode/utf8"
)

// Token is a secret string that redacts itself everywhere it could leak:
// fmt (every verb, including %#v), log/slog, encoding/json, encoding.TextMarshaler
// users and panic messages. Reveal is the only way to read the secret.
type Token string

// redactMinLen is the shortest token whose last 4 characters are shown. On a
// shorter one, 4 characters would be too large a share of the secret.
const redactMinLen = 16

// String returns the redacted form: "…abcd" (the last 4 characters), "…" for
// a token too short to show any of it, and "" for the empty token.
func (t Token) String() string {
	if t == "" {
		return ""
	}
	if utf8.RuneCountInString(string(t)) < redactMinLen {
		return "…"
	}
	s := string(t)
	for range 4 {
		_, n := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-n]
	}
	return "…" + string(t)[len(s):]
}

// Reveal returns the secret itself. Use it only where the secret must go out,
// such as the Authorization header or the keychain.
func (t Token) Reveal() string { return string(t) }

// GoString keeps %#v from printing the secret.
func (t Token) GoString() string { return fmt.Sprintf("keystore.Token(%q)", t.String()) }

// Format makes every fmt verb (%v %s %q %x %d …) print the redacted form, so
// no verb falls through to the underlying string.
func (t Token) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = fmt.Fprint(f, t.GoString())
		return
	}
	_, _ = fmt.Fprint(f, t.String())
}

// LogValue redacts the token in log/slog output.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.String()) }

// MarshalJSON encodes the redacted form: a Token inside a struct written to a
// status file or API answer shows only its last 4 characters.
func (t Token) MarshalJSON() ([]byte, error) { return json.Marshal(t.String()) }

// MarshalText redacts for text encoders (and slog's text handler on structs).
func (t Token) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

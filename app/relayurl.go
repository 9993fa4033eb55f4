package app

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/tether-dev/tether/keystore"
	"github.com/tether-dev/tether/relay"
)

// ErrInsecureRelay is wrapped by CheckRelayTransport's error, and is the
// error of a link that refused an http:// relay off loopback.
var ErrInsecureRelay = relay.ErrInsecureRelay

// CheckRelayTransport refuses an http:// (ws://) relay URL whose host is not
// this machine, with a message saying what to do (use https, or allow it
// with --insecure / "insecure": true). The engine applies the same rule when
// it connects; UIs call this to say so before anything is saved.
func CheckRelayTransport(url string) error { return relay.CheckTransport(url) }

// IsLoopbackHost reports whether host (without port) names this machine.
func IsLoopbackHost(host string) bool { return relay.IsLoopbackHost(host) }

// ErrTokenOtherRelay is wrapped by CheckTokenAudience's error.
var ErrTokenOtherRelay = errors.New("the token was issued for another relay")

// ErrTokenUnbound is wrapped by CheckLinkRelay's error when the token that
// would go to a link's relay names no relay at all: only the user can say
// it may go there.
var ErrTokenUnbound = errors.New("the token names no relay")

// AudienceMatch says how a token's aud relates to one relay URL.
type AudienceMatch int

const (
	// AudienceUnbound: aud names no relay URL (no aud, or only a name such
	// as tether-relay's default "tether-relay", which means "any relay that
	// shares the secret").
	AudienceUnbound AudienceMatch = iota
	// AudienceThisRelay: one of aud's URLs is this relay.
	AudienceThisRelay
	// AudienceOtherRelay: aud names relay URLs, none of them this one.
	AudienceOtherRelay
)

// MatchAudience compares a token's aud values with relayURL. URLs compare
// by scheme (ws/wss as http/https), lower-case host and port with default
// ports dropped, and path without a trailing slash: the same relay written
// two ways matches, another scheme, host, port or path does not.
func MatchAudience(aud []string, relayURL string) AudienceMatch {
	want := normRelayURL(relayURL)
	m := AudienceUnbound
	for _, a := range aud {
		if !isRelayURL(a) {
			continue // a name says no place
		}
		if normRelayURL(a) == want {
			return AudienceThisRelay
		}
		m = AudienceOtherRelay
	}
	return m
}

// CheckTokenAudience refuses to send tok to relayURL when the token's aud
// claim names other relays: a tether:// link (or a settings edit) that only
// changes the relay must not hand this user's token to a relay that did not
// issue it. A token without an aud that is a URL (issued before relays set
// it, or with tether-relay's default audience, a name) passes: the engine
// sends it to the relay the user configured. The message never contains the
// token.
func CheckTokenAudience(tok keystore.Token, relayURL string) error {
	c, err := keystore.ParseClaims(tok)
	if err != nil {
		return nil // not ours to judge; the relay checks the token itself
	}
	if MatchAudience(c.Audience, relayURL) != AudienceOtherRelay {
		return nil
	}
	return fmt.Errorf("%w: it is for %s, not %s, so it was not sent; get a token from %s (tether-relay token, or a tether:// link that carries one)",
		ErrTokenOtherRelay, strings.Join(c.Audience, ", "), redactRelayURL(relayURL), redactRelayURL(relayURL))
}

// TokenSourceName is src in words, for messages: "$TETHER_TOKEN", "a token
// file", "a systemd credential", "the OS keychain".
func TokenSourceName(src keystore.Source) string {
	switch src {
	case keystore.SourceEnv:
		return "$" + keystore.EnvToken
	case keystore.SourceTokenFile:
		return "a token file"
	case keystore.SourceSystemd:
		return "a systemd credential"
	case keystore.SourceKeychain:
		return "the OS keychain"
	}
	return string(src)
}

// CheckLinkRelay decides whether a relay named by a tether:// link may
// receive the token the engine would send it: aud and src are that token's
// claims and source. A keychain token is stored per relay (the entry for
// relayURL was saved for it), and dialToken refuses one whose aud names
// another relay, so only tokens that follow every relay (a token file,
// $TETHER_TOKEN, a systemd credential) are judged here:
//   - aud names relayURL: allowed;
//   - aud names other relays: refused (ErrTokenOtherRelay);
//   - aud names no relay: refused (ErrTokenUnbound) unless unboundOK, which
//     a UI sets only after the user accepted a question naming that risk.
func CheckLinkRelay(aud []string, src keystore.Source, relayURL string, unboundOK bool) error {
	switch src {
	case "", keystore.SourceKeychain:
		return nil
	}
	switch MatchAudience(aud, relayURL) {
	case AudienceThisRelay:
		return nil
	case AudienceOtherRelay:
		return fmt.Errorf("%w: the token from %s is for %s, so a link to %s cannot use it",
			ErrTokenOtherRelay, TokenSourceName(src), strings.Join(aud, ", "), redactRelayURL(relayURL))
	}
	if unboundOK {
		return nil
	}
	return fmt.Errorf("%w: the token from %s is not bound to a relay, and connecting to %s would send it there; confirm that relay is yours",
		ErrTokenUnbound, TokenSourceName(src), redactRelayURL(relayURL))
}

// isRelayURL reports whether an aud value is a relay's URL (it can then be
// compared with the relay the engine is about to dial).
func isRelayURL(a string) bool {
	u, err := url.Parse(strings.TrimSpace(a))
	if err != nil || u.Host == "" {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https", "ws", "wss":
		return true
	}
	return false
}

// normRelayURL is a relay URL in the form aud compares by: http(s) scheme
// (ws and wss map to them), lower-case host, no default port, no trailing
// slash, no user, query or fragment.
func normRelayURL(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return raw
	}
	scheme := strings.ToLower(u.Scheme)
	switch scheme {
	case "ws":
		scheme = "http"
	case "wss":
		scheme = "https"
	}
	host := strings.ToLower(u.Hostname())
	if p := u.Port(); p != "" && !(scheme == "http" && p == "80") && !(scheme == "https" && p == "443") {
		host = net.JoinHostPort(host, p)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return scheme + "://" + host + strings.TrimRight(u.EscapedPath(), "/")
}

// redactRelayURL drops user info, query and fragment, for messages.
func redactRelayURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

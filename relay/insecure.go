package relay

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ErrInsecureRelay is wrapped by Run's error (and CheckTransport's) when the
// relay URL is plain ws:// or http:// to a host that is not this machine and
// ClientOptions.Insecure is not set. The bridge token and every tool call
// and answer would cross the network unencrypted, readable and changeable
// by anyone on the path.
var ErrInsecureRelay = errors.New("refusing an unencrypted relay connection")

// CheckTransport returns an error wrapping ErrInsecureRelay when rawURL is
// http:// or ws:// to a host other than a loopback address or localhost.
// The message says what to do. Other URLs, and URLs that do not parse
// (Run reports those itself), pass.
func CheckTransport(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "ws" {
		return nil
	}
	if IsLoopbackHost(u.Hostname()) {
		return nil
	}
	return fmt.Errorf("%w to %s: %s:// to a host that is not this machine sends the bridge token and every tool call in clear; "+
		"use the relay's https:// URL, or, if the network is trusted, pass --insecure (\"insecure\": true in settings.json)",
		ErrInsecureRelay, redactURL(rawURL), scheme)
}

// IsLoopbackHost reports whether host (no port) names this machine:
// localhost, a name under .localhost (RFC 6761 keeps it on loopback), or a
// loopback IP address.
func IsLoopbackHost(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && ip.IsLoopback()
}

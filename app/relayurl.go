package app

import "github.com/tether-dev/tether/relay"

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

// Package netwatch tells when the machine's network changes: an address
// appears or goes, a route is added or removed. The bridge uses it to dial
// the relay at once when the network comes back instead of waiting out a
// backoff that climbed while there was no network (a laptop joining Wi-Fi,
// a VPN coming up, a cable plugged in).
//
// Each platform uses the OS's own notifications: netlink on Linux, a routing
// socket on macOS and the BSDs, NotifyIpInterfaceChange on Windows.
// Elsewhere Watch returns ErrUnsupported and the caller keeps its other
// signals (the relay keepalive, the wake check).
package netwatch

import (
	"context"
	"errors"
)

// ErrUnsupported is returned by Watch where the platform gives no network
// notifications that this package knows.
var ErrUnsupported = errors.New("netwatch: no network change notifications on this platform")

// Watch reports network changes until ctx ends, when the channel closes. A
// value means "something changed since the last value was received": a burst
// of OS messages (an interface coming up brings links, addresses and routes
// at once) is coalesced into one pending value, so a slow reader never
// falls behind.
func Watch(ctx context.Context) (<-chan struct{}, error) { return watch(ctx) }

// notify leaves one pending value on ch, dropping the signal if one is
// already waiting.
func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

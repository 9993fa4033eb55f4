// Package keystore is where Tether's bridge token lives.
//
// The OS keychain (macOS Keychain, Windows Credential Manager, the freedesktop
// Secret Service on Linux, all through github.com/zalando/go-keyring) is the
// default home of the token. Machines without one (servers, containers, CI)
// name an explicit headless source instead: a token file, an environment
// variable or a systemd credential. There is no silent fallback from the
// keychain to a plain file: when the keychain is unreachable the caller gets
// ErrUnavailable, whose message says which headless sources exist.
//
// A Token redacts itself in every formatter, logger and encoder it can reach,
// so the secret leaves the process only through Token.Reveal. Claims are read
// from the JWT payload for display; they are never trusted (the relay verifies
// the signature).
package keystore

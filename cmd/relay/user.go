package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/tether-dev/tether/relay/server"
	"github.com/tether-dev/tether/relay/store"
	"github.com/tether-dev/tether/relay/web"
)

// defaultUserURL is `user add`'s --public-url: serve's default --listen
// (127.0.0.1:8080) by its name, because a passkey cannot belong to an IP
// address (its relying-party id is a host name) and browsers allow
// passkeys over plain http only on localhost.
const defaultUserURL = "http://localhost:8080"

// user runs `user add ID`: the account (if new) and a one-time sign-in link.
func user(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "add" {
		return errors.New("usage: tether-relay user add ID --secret-file FILE [--db LOCATION] [--public-url URL]")
	}
	args = args[1:]
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	fs := newFlags("user add", stderr)
	secretFile := fs.String("secret-file", "", "HMAC secret file (its folder holds the default database)")
	db := registerDBFlags(fs)
	publicURL := fs.String("public-url", defaultUserURL, "the relay's URL as the user's browser reaches it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if id == "" && fs.NArg() > 0 {
		id = fs.Arg(0)
	}
	if id == "" || *secretFile == "" {
		return errors.New("user add: an ID and --secret-file are required")
	}
	if err := server.ValidDevID(id); err != nil {
		return fmt.Errorf("user add: %w", err)
	}
	st, err := openStore(ctx, db, *secretFile, slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		return fmt.Errorf("user add: %w", err)
	}
	defer st.Close()
	now := time.Now()
	switch err := st.AddUser(ctx, store.User{ID: id, Created: now}); {
	case errors.Is(err, store.ErrExists):
		fmt.Fprintf(stderr, "user %s exists; here is a new sign-in link (it lets them set a new password)\n", id)
	case err != nil:
		return fmt.Errorf("user add: %w", err)
	default:
		audit(ctx, st, stderr, "user.add", id, "")
	}
	link, err := web.NewSignInLink(ctx, st, *publicURL, id, now)
	if err != nil {
		return fmt.Errorf("user add: %w", err)
	}
	audit(ctx, st, stderr, "user.link", id, "")
	fmt.Fprintln(stdout, link)
	fmt.Fprintf(stderr, "valid for %v, once\n", web.LinkTTL)
	return nil
}

// firstOr returns the first element of l, or def.
func firstOr(l []string, def string) string {
	if len(l) > 0 {
		return l[0]
	}
	return def
}

// stripAuthHeader removes the --auth-header header from every request
// that did not come from a trusted proxy, before anything reads it: a
// client talking to the relay directly must not name its own user.
func stripAuthHeader(name string, proxies trustedProxies, h http.Handler) http.Handler {
	if name == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, err := netip.ParseAddrPort(r.RemoteAddr)
		if r.Header.Get(name) != "" && (err != nil || !proxies.trusts(peer.Addr())) {
			r = r.Clone(r.Context())
			r.Header.Del(name)
		}
		h.ServeHTTP(w, r)
	})
}

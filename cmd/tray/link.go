package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/tether-dev/tether/app"
	"github.com/tether-dev/tether/keystore"
)

// tether://connect?relay=URL&token=TOKEN links. A web page can open such a
// link without asking, and it would point this user's bridge (and so their
// local MCP servers) at any relay. So a link is never applied on arrival:
// the tray shows "Connect to <relay> as <dev>?" with Accept and Dismiss,
// and only Accept writes the relay into settings.json and stores the token.
//
// tether://connect?relay=URL&code=CODE is the relay page's "Connect this
// computer": the code is short-lived and single-use, never the token. Only
// Accept redeems it, at the relay the question names, over HTTPS (http
// only to this machine), and stores the token that comes back.

type connectLink struct {
	raw   string
	relay string
	token keystore.Token
	code  string // a connect code to redeem at relay for the token
	dev   string // from the token's claims, for the question
}

// maxConnectCode bounds a link's connect code (the relay's are 43 characters).
const maxConnectCode = 128

func isLink(s string) bool { return strings.HasPrefix(strings.ToLower(s), "tether:") }

// parseLink reads a tether://connect link. The relay must be an http(s)
// URL; the token, when present, must look like a bridge token. Errors never
// contain the token.
func parseLink(raw string) (connectLink, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return connectLink{}, errors.New("the tether:// link is not a valid URL")
	}
	what := u.Host
	if what == "" {
		what = strings.TrimPrefix(u.Opaque, "//")
	}
	if !strings.EqualFold(u.Scheme, "tether") || !strings.EqualFold(strings.Trim(what, "/"), "connect") {
		return connectLink{}, fmt.Errorf("unknown link %q: want tether://connect?relay=…", u.Scheme+"://"+what)
	}
	q := u.Query()
	l := connectLink{raw: raw, relay: q.Get("relay"), token: keystore.Token(strings.TrimSpace(q.Get("token"))), code: strings.TrimSpace(q.Get("code"))}
	if l.relay == "" && l.token == "" {
		return connectLink{}, errors.New("the tether:// link has neither relay nor token")
	}
	if l.code != "" {
		switch {
		case l.relay == "":
			return connectLink{}, errors.New("the tether:// link has a connect code but no relay to redeem it at")
		case l.token != "":
			return connectLink{}, errors.New("the tether:// link has both a token and a connect code")
		case len(l.code) > maxConnectCode || strings.ContainsFunc(l.code, notCodeChar):
			return connectLink{}, errors.New("the tether:// link's connect code is malformed")
		}
	}
	if l.relay != "" {
		r, err := url.Parse(l.relay)
		if err != nil || (r.Scheme != "https" && r.Scheme != "http") || r.Host == "" {
			return connectLink{}, fmt.Errorf("the link's relay %q is not an http(s) URL", l.relay)
		}
		// A page must not point the bridge at a relay in clear text; a
		// trusted-network setup is made by hand in settings.json.
		if err := app.CheckRelayTransport(l.relay); err != nil {
			return connectLink{}, fmt.Errorf("the link's relay %s is http:// to another machine; links must use https://", displayURL(l.relay))
		}
	}
	if l.token != "" {
		c, err := app.CheckBridgeToken(l.token, time.Now())
		if err != nil {
			return connectLink{}, fmt.Errorf("the link's token: %w", err)
		}
		l.dev = c.Dev
		if l.relay != "" {
			if err := app.CheckTokenAudience(l.token, l.relay); err != nil {
				return connectLink{}, fmt.Errorf("the link's token: %w", err)
			}
		}
	}
	return l, nil
}

// notCodeChar reports a character a connect code (base64url) never holds.
func notCodeChar(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
}

// displayURL is the relay URL as the question shows it: all of it (scheme,
// host, port, path: a look-alike host or an odd port must be visible),
// without user info, query or fragment.
func displayURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// question is the menu line asking to accept the link.
func (l connectLink) question() string {
	q := "Link: connect"
	if l.relay != "" {
		q += " to " + displayURL(l.relay)
	}
	if l.dev != "" {
		q += " as " + l.dev
	}
	return q + "?"
}

// apply makes the engine use the link: the engine saves the relay in its
// settings.json (the service's when attached) and reloads, and once it reports the new relay the token is stored
// for it (SetToken connects). Without a token it just connects.
func (l connectLink) apply(ctx context.Context, ctl app.Control) error {
	st, err := ctl.State(ctx)
	if err != nil {
		return err
	}
	if l.code != "" {
		// Redeemed before the relay changes: a spent or expired code
		// leaves the engine as it was.
		tok, err := app.RedeemConnectCode(ctx, nil, l.relay, l.code)
		if err != nil {
			return err
		}
		l.token = tok
	}
	if l.relay != "" && st.Relay.URL != l.relay {
		if err := ctl.SetRelay(ctx, l.relay); err != nil {
			return err
		}
		if err := waitRelay(ctx, ctl, l.relay); err != nil {
			return err
		}
	}
	if l.token != "" {
		return ctl.SetToken(ctx, l.token.Reveal())
	}
	return ctl.Connect(ctx)
}

// waitRelay follows the engine's state until it uses relay: Reload only
// asks for a reload, and the token must be stored for the new relay.
func waitRelay(ctx context.Context, ctl app.Control, relay string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	states, err := ctl.Subscribe(ctx)
	if err != nil {
		return err
	}
	for st := range states {
		if st.Relay.URL == relay {
			return nil
		}
	}
	return fmt.Errorf("the engine did not switch to relay %s (is --relay set on its command line?)", relayHost(relay))
}

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

// maxLinkRelay bounds a link's relay URL (as displayURL shows it).
const maxLinkRelay = 120

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
		// The menu shows the whole URL, unclipped: refuse one too long to
		// read at a glance rather than show part of it.
		if n := len([]rune(displayURL(l.relay))); n > maxLinkRelay {
			return connectLink{}, fmt.Errorf("the link's relay URL is %d characters long, over the %d the menu shows in full", n, maxLinkRelay)
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

// linkRisk says what accepting l would do to the token the engine holds
// now (st.Token). A token from the keychain is stored per relay, so it
// never follows a link to another relay; one from a token file,
// $TETHER_TOKEN or a systemd credential does. Such a token bound to another
// relay (aud) refuses the link (err); one bound to no relay (aud absent,
// or tether-relay's default "tether-relay", which means any relay that
// shares the secret) makes risk a sentence the menu shows beside the
// question, and Accept is then the user's confirmation. The engine checks
// again when the link is applied (app.Control.SetLinkRelay).
func linkRisk(l connectLink, st app.State) (risk string, err error) {
	if l.relay == "" || !st.Token.Present || keystore.AccountFor(l.relay) == keystore.AccountFor(st.Relay.URL) {
		return "", nil // no relay change: the token goes where it went before
	}
	err = app.CheckLinkRelay(st.Token.Audience, st.Token.Source, l.relay, false)
	if errors.Is(err, app.ErrTokenUnbound) {
		return fmt.Sprintf("Warning: your token (from %s) is not bound to one relay; accepting sends it to %s", app.TokenSourceName(st.Token.Source), displayURL(l.relay)), nil
	}
	if err != nil {
		return "", fmt.Errorf("the link's relay cannot be used: %w", err)
	}
	return "", nil
}

// apply makes the engine use the link: the engine checks the token it
// would send to the link's relay (unboundOK: the user accepted the risk
// linkRisk named), saves the relay in its settings.json (the service's
// when attached) and reloads, and once it reports the new relay the token
// is stored for it (SetToken connects). Without a token it just connects.
func (l connectLink) apply(ctx context.Context, ctl app.Control, unboundOK bool) error {
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
		if err := ctl.SetLinkRelay(ctx, l.relay, unboundOK); err != nil {
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

package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/app"
	"github.com/tether-dev/tether/keystore"
)

// jwt makes an unsigned-looking but well-formed token (the tray only reads
// claims; the relay verifies signatures).
func jwt(sub, scope string, exp time.Time) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." +
		enc([]byte(fmt.Sprintf(`{"sub":%q,"scope":%q,"exp":%d}`, sub, scope, exp.Unix()))) + "." + enc([]byte("signature-bytes"))
}

// fakeControl records commands; only what the tests use does anything.
type fakeControl struct {
	app.Control
	token string
	err   error
}

func (f *fakeControl) SetToken(_ context.Context, tok string) error { f.token = tok; return f.err }

func TestPasteToken(t *testing.T) {
	good := jwt("dev:alice", "bridge", time.Now().Add(72*time.Hour+time.Minute))
	cases := []struct {
		name, clip string
		clipErr    error
		setErr     error
		want       string // message prefix, or error substring when wantErr
		wantErr    bool
	}{
		{name: "good token with spaces", clip: "  " + good + "\n", want: "Token for alice saved (expires in 3 days); connecting"},
		{name: "empty clipboard", clip: " \n", want: "the clipboard is empty", wantErr: true},
		{name: "not a token", clip: "hello world", want: "not a Tether bridge token", wantErr: true},
		{name: "client token", clip: jwt("dev:alice", "client", time.Now().Add(time.Hour)), want: "for MCP clients", wantErr: true},
		{name: "expired", clip: jwt("dev:alice", "bridge", time.Now().Add(-time.Hour)), want: "expired", wantErr: true},
		{name: "huge", clip: strings.Repeat("x", maxClipboard+1), want: "too much text", wantErr: true},
		{name: "no clipboard tool", clipErr: errNoClipboardTool, want: "install wl-clipboard", wantErr: true},
		{name: "engine refuses", clip: good, setErr: errors.New("no relay configured"), want: "no relay configured", wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctl := &fakeControl{err: c.setErr}
			msg, err := pasteToken(context.Background(), ctl, func(context.Context) (string, error) { return c.clip, c.clipErr })
			if c.wantErr {
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("err = %v, want it to mention %q", err, c.want)
				}
				if strings.Contains(err.Error(), "signature") || (len(c.clip) > 20 && strings.Contains(err.Error(), c.clip)) {
					t.Errorf("error repeats the clipboard: %v", err)
				}
				return
			}
			if err != nil || msg != c.want {
				t.Fatalf("msg %q err %v, want %q", msg, err, c.want)
			}
			if ctl.token != good {
				t.Errorf("SetToken got a different token")
			}
		})
	}
}

func TestParseLink(t *testing.T) {
	tok := jwt("dev:bob", "bridge", time.Now().Add(time.Hour))
	l, err := parseLink("tether://connect?relay=https%3A%2F%2Frelay.example.com&token=" + tok)
	if err != nil {
		t.Fatal(err)
	}
	if l.relay != "https://relay.example.com" || l.token.Reveal() != tok || l.dev != "bob" {
		t.Errorf("parsed %+v", l)
	}
	if q := l.question(); q != "Link: connect to https://relay.example.com as bob?" {
		t.Errorf("question %q", q)
	}
	if _, err := parseLink("tether:connect?relay=http://127.0.0.1:8080"); err != nil {
		t.Errorf("opaque form: %v", err)
	}
	for _, bad := range []string{
		"tether://disconnect?relay=https://x",
		"tether://connect",
		"tether://connect?relay=file:///etc/passwd",
		"tether://connect?relay=https://x&token=not-a-jwt",
		"https://connect?relay=https://x",
		"tether://connect?relay=http://relay.example.com",
		"tether://connect?relay=http://192.168.1.9:8080",
	} {
		if _, err := parseLink(bad); err == nil {
			t.Errorf("%s: accepted", bad)
		} else if strings.Contains(err.Error(), "not-a-jwt") {
			t.Errorf("%s: error shows the token: %v", bad, err)
		}
	}
}

// The question shows the whole relay URL: a look-alike port or path is
// visible, user info and query are not.
func TestLinkQuestionShowsFullURL(t *testing.T) {
	l, err := parseLink("tether://connect?relay=" + url.QueryEscape("https://user:pw@relay.example.com:8443/team?x=1"))
	if err != nil {
		t.Fatal(err)
	}
	if q := l.question(); q != "Link: connect to https://relay.example.com:8443/team?" {
		t.Errorf("question %q", q)
	}
	if _, err := parseLink("tether://connect?relay=http://localhost:8080"); err != nil {
		t.Errorf("http to loopback refused: %v", err)
	}
}

// A link whose token names another relay in aud is refused: applying it
// would send that token to the link's relay.
func TestLinkTokenForAnotherRelay(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	tok := enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." +
		enc([]byte(fmt.Sprintf(`{"sub":"dev:bob","scope":"bridge","aud":"https://relay.example.com","exp":%d}`, time.Now().Add(time.Hour).Unix()))) + "." + enc([]byte("sig"))
	if _, err := parseLink("tether://connect?relay=https://relay.example.com/&token=" + tok); err != nil {
		t.Fatalf("matching aud refused: %v", err)
	}
	_, err := parseLink("tether://connect?relay=https://evil.example&token=" + tok)
	if !errors.Is(err, app.ErrTokenOtherRelay) {
		t.Fatalf("foreign relay: %v, want ErrTokenOtherRelay", err)
	}
	if strings.Contains(err.Error(), tok) {
		t.Error("error shows the token")
	}
}

// A second link queues behind the pending one instead of replacing it
// ("1 more link waiting"); accepting or dismissing takes the oldest; the
// queue is bounded.
func TestLinksQueue(t *testing.T) {
	tr := &tray{wake: make(chan struct{}, 1)}
	a, _ := parseLink("tether://connect?relay=https://a.example.com")
	b, _ := parseLink("tether://connect?relay=https://b.example.com")
	c, _ := parseLink("tether://connect?relay=https://c.example.com")
	tr.haveState, tr.st = true, app.State{}
	label := func() string {
		t.Helper()
		m := tr.model(time.Now())
		it := m.find("link")
		if it == nil {
			return ""
		}
		return it.Label
	}
	if err := tr.offerLink(a); err != nil {
		t.Fatal(err)
	}
	if got := label(); got != "Link: connect to https://a.example.com?" {
		t.Fatalf("one link: menu shows %q", got)
	}
	// A newer link (and a repeat of the pending one) never replaces it.
	for _, l := range []connectLink{b, a} {
		if err := tr.offerLink(l); err != nil {
			t.Fatal(err)
		}
	}
	if got := label(); got != "Link: connect to https://a.example.com? (1 more link waiting)" {
		t.Fatalf("two links: menu shows %q", got)
	}
	if err := tr.offerLink(c); err != nil {
		t.Fatal(err)
	}
	if got := label(); got != "Link: connect to https://a.example.com? (2 more links waiting)" {
		t.Fatalf("three links: menu shows %q", got)
	}
	for _, want := range []connectLink{a, b, c} {
		l, ok := tr.takeLink()
		if !ok || l.link.relay != want.relay {
			t.Fatalf("taken %+v, want %s", l, want.relay)
		}
	}
	if _, ok := tr.takeLink(); ok {
		t.Fatal("queue not empty")
	}
	if got := label(); got != "" {
		t.Fatalf("empty queue: menu shows %q", got)
	}
	for i := range maxLinks {
		l, _ := parseLink(fmt.Sprintf("tether://connect?relay=https://r%d.example.com", i))
		if err := tr.offerLink(l); err != nil {
			t.Fatal(err)
		}
	}
	l, _ := parseLink("tether://connect?relay=https://one-too-many.example.com")
	if err := tr.offerLink(l); err == nil {
		t.Fatal("queue grew past maxLinks")
	}
}

// linkControl is an engine that records the link relay it was asked for
// and refuses it (so apply stops there).
type linkControl struct {
	app.Control
	st        app.State
	relay     string
	unboundOK bool
}

var errRefusedHere = errors.New("refused by the test engine")

func (f *linkControl) State(context.Context) (app.State, error) { return f.st, nil }
func (f *linkControl) SetLinkRelay(_ context.Context, url string, unboundOK bool) error {
	f.relay, f.unboundOK = url, unboundOK
	return errRefusedHere
}

// A link with only a relay address, while the engine holds a token that
// follows every relay ($TETHER_TOKEN, a token file): bound to another relay
// the link is refused before it is shown; bound to none, the menu names the
// risk and only then does Accept pass the confirmation on to the engine; a
// keychain token (stored per relay) or the same relay ask nothing more.
func TestLinkRelayAndStoredToken(t *testing.T) {
	link, err := parseLink("tether://connect?relay=" + url.QueryEscape("https://evil.example:8443"))
	if err != nil {
		t.Fatal(err)
	}
	state := func(src keystore.Source, aud ...string) app.State {
		return app.State{
			Relay: app.RelayState{URL: "https://relay.example.com"},
			Token: app.TokenState{Present: true, Status: app.TokenPresent, Source: src, Audience: aud},
		}
	}
	for _, tc := range []struct {
		name      string
		st        app.State
		refused   bool
		risk      bool
		link      connectLink
		unboundOK bool
	}{
		{name: "env token for another relay", st: state(keystore.SourceEnv, "https://relay.example.com"), refused: true, link: link},
		{name: "env token with the default audience", st: state(keystore.SourceEnv, "tether-relay"), risk: true, link: link, unboundOK: true},
		{name: "token file without aud", st: state(keystore.SourceTokenFile), risk: true, link: link, unboundOK: true},
		{name: "env token for the link's relay", st: state(keystore.SourceEnv, "https://EVIL.example:8443/"), link: link},
		{name: "keychain token", st: state(keystore.SourceKeychain, "tether-relay"), link: link},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctl := &linkControl{st: tc.st}
			tr := &tray{wake: make(chan struct{}, 1), ctx: context.Background(), log: slog.New(slog.DiscardHandler),
				haveState: true, st: tc.st, ctl: ctl}
			err := tr.offerLink(tc.link)
			if tc.refused {
				if !errors.Is(err, app.ErrTokenOtherRelay) {
					t.Fatalf("offer: %v, want ErrTokenOtherRelay", err)
				}
				if len(tr.links) != 0 {
					t.Fatal("a refused link was queued")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			m := tr.model(time.Now())
			risk := m.find("link-risk")
			if tc.risk != (risk != nil) {
				t.Fatalf("risk line %+v, want shown=%v", risk, tc.risk)
			}
			if tc.risk && !strings.Contains(risk.Tooltip, "sends it to https://evil.example:8443") {
				t.Errorf("risk line does not name the relay: %+v", risk)
			}
			tr.do("link-accept")
			if ctl.relay != tc.link.relay || ctl.unboundOK != tc.unboundOK {
				t.Errorf("engine asked for %q unboundOK=%v, want %q %v", ctl.relay, ctl.unboundOK, tc.link.relay, tc.unboundOK)
			}
			if !strings.Contains(tr.notice, errRefusedHere.Error()) {
				t.Errorf("notice %q", tr.notice)
			}
		})
	}

	// A risk not yet shown (the state changed after the menu was drawn) is
	// not confirmed by Accept: the engine is asked without unboundOK.
	ctl := &linkControl{st: state(keystore.SourceEnv, "tether-relay")}
	tr := &tray{wake: make(chan struct{}, 1), ctx: context.Background(), log: slog.New(slog.DiscardHandler),
		haveState: true, st: state(keystore.SourceKeychain), ctl: ctl}
	if err := tr.offerLink(link); err != nil {
		t.Fatal(err)
	}
	tr.model(time.Now())
	tr.st = ctl.st
	tr.do("link-accept")
	if ctl.relay != link.relay || ctl.unboundOK {
		t.Errorf("engine asked for %q unboundOK=%v, want no confirmation", ctl.relay, ctl.unboundOK)
	}
}

func TestSingleInstance(t *testing.T) {
	dir, err := os.MkdirTemp("", "tt")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	p := app.PathsIn(dir)

	// A stale socket file (a crashed tray) does not block the first claim.
	stale := filepath.Join(dir, instanceSocket)
	if err := os.WriteFile(stale, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	first, err := claimInstance(p, nil)
	if err != nil {
		t.Fatalf("first claim: %v", err)
	}
	defer first.Close()
	got := make(chan handOverRequest, 1)
	first.serve(func(r handOverRequest) (string, error) { got <- r; return "seen", nil })

	_, err = claimInstance(p, nil)
	var running *runningTray
	if !errors.As(err, &running) {
		t.Fatalf("second claim: %v, want *runningTray", err)
	}
	link, _ := parseLink("tether://connect?relay=https://r.example.com")
	msg, err := running.handOver(&link)
	if err != nil || msg != "seen" {
		t.Fatalf("hand over: %q %v", msg, err)
	}
	if r := <-got; r.Link != link.raw {
		t.Errorf("running tray got %q", r.Link)
	}
}

// A look-alike relay differs at the end of its host: the menu shows the
// question unclipped, and a URL too long for that is refused.
func TestLinkLongRelayShownWhole(t *testing.T) {
	relay := "https://relay.example.com.attacker-controlled-domain.example.net:8443/team/with/a/long/path"
	l, err := parseLink("tether://connect?relay=" + url.QueryEscape(relay))
	if err != nil {
		t.Fatal(err)
	}
	tr := &tray{wake: make(chan struct{}, 1), haveState: true}
	if err := tr.offerLink(l); err != nil {
		t.Fatal(err)
	}
	m := tr.model(time.Now())
	if it := m.find("link"); it == nil || it.Label != "Link: connect to "+relay+"?" {
		t.Fatalf("menu shows %+v", it)
	}
	if _, err := parseLink("tether://connect?relay=" + url.QueryEscape("https://r.example.com/"+strings.Repeat("a", maxLinkRelay))); err == nil {
		t.Fatal("a relay URL too long to show was accepted")
	}
}

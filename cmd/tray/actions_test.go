package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/app"
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

// A second link queues behind the pending one instead of replacing it;
// accepting or dismissing takes the oldest; the queue is bounded.
func TestLinksQueue(t *testing.T) {
	tr := &tray{wake: make(chan struct{}, 1)}
	a, _ := parseLink("tether://connect?relay=https://a.example.com")
	b, _ := parseLink("tether://connect?relay=https://b.example.com")
	for _, l := range []connectLink{a, b, a} {
		if err := tr.offerLink(l); err != nil {
			t.Fatal(err)
		}
	}
	tr.haveState, tr.st = true, app.State{}
	m := tr.model(time.Now())
	if it := m.find("link"); it == nil || it.Label != "Link: connect to https://a.example.com? (1 more waiting)" {
		t.Fatalf("menu shows %+v", it)
	}
	if l, ok := tr.takeLink(); !ok || l.relay != a.relay {
		t.Fatalf("first taken %+v, want a", l)
	}
	if l, ok := tr.takeLink(); !ok || l.relay != b.relay {
		t.Fatalf("second taken %+v, want b", l)
	}
	if _, ok := tr.takeLink(); ok {
		t.Fatal("queue not empty")
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
	first, err := claimInstance(p)
	if err != nil {
		t.Fatalf("first claim: %v", err)
	}
	defer first.Close()
	got := make(chan handOverRequest, 1)
	go first.serve(func(r handOverRequest) string { got <- r; return "seen" })

	_, err = claimInstance(p)
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

package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
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
	if q := l.question(); q != "Link: connect to relay.example.com as bob?" {
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
	} {
		if _, err := parseLink(bad); err == nil {
			t.Errorf("%s: accepted", bad)
		} else if strings.Contains(err.Error(), "not-a-jwt") {
			t.Errorf("%s: error shows the token: %v", bad, err)
		}
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

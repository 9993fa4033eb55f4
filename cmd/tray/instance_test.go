package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/app"
)

// The hand-over API on tray.sock with a real socket: an owner-only socket
// file, a link in the request body reaches the running tray, its refusal
// reaches the second launch as an error, a plain launch activates, and a
// bad body is refused without being quoted.
func TestHandOverEndpoint(t *testing.T) {
	dir, err := os.MkdirTemp("", "tt")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	first, err := claimInstance(app.PathsIn(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	got := make(chan handOverRequest, 4)
	first.serve(func(r handOverRequest) (string, error) {
		got <- r
		if strings.Contains(r.Link, "refuse.example") {
			return "", errors.New("no thanks")
		}
		return "queued", nil
	})
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(filepath.Join(dir, instanceSocket))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("tray.sock: %v %v, want mode 0600", fi, err)
		}
	}
	_, err = claimInstance(app.PathsIn(dir), nil)
	var running *runningTray
	if !errors.As(err, &running) {
		t.Fatalf("second claim: %v", err)
	}

	tok := jwt("dev:bob", "bridge", time.Now().Add(time.Hour))
	link, err := parseLink("tether://connect?relay=https://r.example.com&token=" + tok)
	if err != nil {
		t.Fatal(err)
	}
	if msg, err := running.handOver(&link); err != nil || msg != "queued" {
		t.Fatalf("hand over: %q %v", msg, err)
	}
	if r := <-got; r.Link != link.raw {
		t.Errorf("running tray got %q", r.Link)
	}
	bad, _ := parseLink("tether://connect?relay=https://refuse.example")
	if _, err := running.handOver(&bad); err == nil || err.Error() != "no thanks" {
		t.Errorf("refused link: %v, want the running tray's refusal", err)
	}
	<-got
	if msg, err := running.handOver(nil); err != nil || msg != "queued" {
		t.Errorf("activate: %q %v", msg, err)
	}
	if r := <-got; r.Link != "" {
		t.Errorf("activate handed over %q", r.Link)
	}

	// Raw requests: a body that is not a link is refused unquoted; only
	// POST is served.
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", filepath.Join(dir, instanceSocket))
	}}}
	resp, err := hc.Post("http://tray/v1/links", "application/json", strings.NewReader(`{"link": 1, "x": "`+tok+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity || strings.Contains(string(body), tok) {
		t.Errorf("bad body: %s %s", resp.Status, body)
	}
	resp, err = hc.Get("http://tray/v1/links")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/links: %s", resp.Status)
	}
	select {
	case r := <-got:
		t.Errorf("a bad request reached the tray: %+v", r)
	default:
	}
}

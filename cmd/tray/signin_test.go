package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tether-dev/tether/app"
)

type loginControl struct {
	app.Control
	state app.LoginState
	err   error
	calls int
}

func (c *loginControl) Login(context.Context) (app.LoginState, error) {
	c.calls++
	return c.state, c.err
}

func TestSignIn(t *testing.T) {
	waiting := app.LoginState{Phase: app.LoginWaiting, UserCode: "BCDF-GHJK", VerificationURI: "https://r.example/device",
		VerificationURIComplete: "https://r.example/device?user_code=BCDF-GHJK"}
	var opened []string
	open := func(_ context.Context, u string) error { opened = append(opened, u); return nil }

	ctl := &loginControl{state: waiting}
	msg, err := signIn(t.Context(), ctl, open)
	if err != nil || msg != "Approve code BCDF-GHJK in your browser" || len(opened) != 1 || opened[0] != waiting.VerificationURIComplete {
		t.Fatalf("signIn: %q %v, opened %q", msg, err, opened)
	}

	// No browser: the message says where to go and which code to enter.
	_, err = signIn(t.Context(), ctl, func(context.Context, string) error { return errors.New("xdg-open is not installed") })
	if err == nil || !strings.Contains(err.Error(), "https://r.example/device and enter code BCDF-GHJK") {
		t.Fatalf("signIn without a browser: %v", err)
	}

	// The engine refuses (no relay): its reason, and no browser.
	opened = nil
	ctl = &loginControl{err: errors.New("no relay configured")}
	if _, err := signIn(t.Context(), ctl, open); err == nil || !strings.Contains(err.Error(), "no relay") || len(opened) != 0 {
		t.Fatalf("signIn refused: %v, opened %q", err, opened)
	}
}

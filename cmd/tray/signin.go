package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tether-dev/tether/app"
)

// "Sign in with browser…": the engine runs the relay's device flow and
// shows its code in State.Login; the tray renders it, opens the page in
// the browser and notifies. Nothing here speaks to the relay.

const (
	actSignIn      = "sign-in"
	actSignInOpen  = "sign-in-open"
	actSignInAbort = "sign-in-cancel"
)

// loginWaiting reports whether a sign-in waits for approval at now.
func loginWaiting(st app.State, now time.Time) bool {
	return st.Login.Phase == app.LoginWaiting && now.Before(st.Login.Expires)
}

// signInItems are the lines of a sign-in waiting for approval: the code,
// the page to open again, and Cancel.
func signInItems(st app.State, now time.Time) []Item {
	if !loginWaiting(st, now) {
		return nil
	}
	l := st.Login
	return []Item{
		info("sign-in-code", fmt.Sprintf("Enter code %s on %s", l.UserCode, relayHost(l.Relay)),
			fmt.Sprintf("Approve this computer at %s (the code works %s).", l.VerificationURI, until(l.Expires, now))),
		{Key: actSignInOpen, ID: actSignInOpen, Label: "Open the sign-in page", Enabled: true, Tooltip: l.VerificationURIComplete},
		{Key: actSignInAbort, ID: actSignInAbort, Label: "Cancel sign-in", Enabled: true},
	}
}

// signInItem is the setup entry: present always, the way in when there is
// no token, and the way to a new token when it expired or was refused.
func signInItem(st app.State, now time.Time) Item {
	it := Item{Key: actSignIn, ID: actSignIn, Label: "Sign in with browser…", Enabled: st.Relay.URL != "",
		Tooltip: "Opens the relay's page in your browser; approve this computer there and Tether connects."}
	switch {
	case st.Relay.URL == "":
		it.Tooltip = "No relay is set."
	case loginWaiting(st, now):
		it.Enabled, it.Tooltip = false, "A sign-in waits for approval in the browser."
	}
	return it
}

// signInAlerts are the notifications of a sign-in: the code to enter
// while it waits, and how it ended when it did not succeed.
func signInAlerts(st app.State, now time.Time) []alert {
	l := st.Login
	switch {
	case loginWaiting(st, now):
		return []alert{{"sign-in:" + l.UserCode, "Tether: approve this computer",
			fmt.Sprintf("Enter code %s on %s (your browser opened the page).", l.UserCode, relayHost(l.Relay))}}
	case l.Phase == app.LoginDenied || l.Phase == app.LoginExpired || l.Phase == app.LoginFailed:
		return []alert{{"sign-in-ended:" + l.UserCode, "Tether: sign-in did not finish", l.Error}}
	}
	return nil
}

// signIn starts the sign-in through the engine and opens the page.
func signIn(ctx context.Context, ctl app.Control, open func(context.Context, string) error) (string, error) {
	l, err := ctl.Login(ctx)
	if err != nil {
		return "", err
	}
	msg := fmt.Sprintf("Approve code %s in your browser", l.UserCode)
	if err := open(ctx, l.VerificationURIComplete); err != nil {
		return "", fmt.Errorf("open %s and enter code %s (%w)", l.VerificationURI, l.UserCode, err)
	}
	return msg, nil
}

// openSignInPage opens the waiting sign-in's page again.
func openSignInPage(ctx context.Context, st app.State, open func(context.Context, string) error) error {
	if !loginWaiting(st, time.Now()) {
		return errors.New("no sign-in is waiting; choose Sign in with browser… again")
	}
	return open(ctx, st.Login.VerificationURIComplete)
}

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/app"
)

func TestNotifierOncePerCause(t *testing.T) {
	t.Parallel()
	var sent []string
	n := newNotifier(func(title, body string) { sent = append(sent, title) })
	st := base()
	steps := []struct {
		name string
		edit func(*app.State)
		want []string // titles sent by this step
	}{
		{"healthy", func(*app.State) {}, nil},
		{"expiring soon", func(s *app.State) { s.Token.ExpiringSoon = true }, []string{"Tether: token expires soon"}},
		{"still expiring: quiet", func(*app.State) {}, nil},
		{"crash loop", func(s *app.State) { s.Servers[1].Phase, s.Servers[1].Restarts = "crashloop", 5 }, []string{"Tether: files keeps crashing"}},
		{"republished: quiet", func(s *app.State) { s.Seq++ }, nil},
		{"recovered", func(s *app.State) { s.Servers[1].Phase = "ready" }, nil},
		{"crash loop again: news again", func(s *app.State) { s.Servers[1].Phase = "crashloop" }, []string{"Tether: files keeps crashing"}},
		{"rejected", func(s *app.State) { s.Relay.Phase, s.Relay.Unauthorized = "rejected", true }, []string{"Tether: token rejected"}},
		{"expired: the expiry says it, not a second rejection", func(s *app.State) {
			s.Token.Expired, s.Token.ExpiringSoon = true, false
		}, []string{"Tether: token expired"}},
		{"replaced", func(s *app.State) {
			s.Token.Expired, s.Relay.Unauthorized, s.Relay.Replaced = false, false, true
		}, []string{"Tether: another bridge took over"}},
		{"sign-in waits", func(s *app.State) {
			s.Login = app.LoginState{Phase: app.LoginWaiting, Relay: "https://r.example", UserCode: "BCDF-GHJK", Expires: now.Add(time.Minute)}
		}, []string{"Tether: approve this computer"}},
		{"still waiting: quiet", func(s *app.State) { s.Seq++ }, nil},
		{"denied", func(s *app.State) { s.Login.Phase, s.Login.Error = app.LoginDenied, "denied" }, []string{"Tether: sign-in did not finish"}},
		{"a new code: news again", func(s *app.State) {
			s.Login = app.LoginState{Phase: app.LoginWaiting, Relay: "https://r.example", UserCode: "CDFG-HJKL", Expires: now.Add(time.Minute)}
		}, []string{"Tether: approve this computer"}},
		{"done: nothing to say", func(s *app.State) { s.Login.Phase = app.LoginDone }, nil},
	}
	for _, s := range steps {
		sent = nil
		s.edit(&st)
		n.update(st, now)
		if strings.Join(sent, "|") != strings.Join(s.want, "|") {
			t.Errorf("%s: sent %q, want %q", s.name, sent, s.want)
		}
	}
}

func TestAlertBodiesHaveNoToken(t *testing.T) {
	t.Parallel()
	st := base()
	st.Token.ExpiringSoon, st.Token.Expires = true, now.Add(30*time.Hour)
	for _, a := range alerts(st, now) {
		if strings.Contains(a.body, st.Token.Last4) {
			t.Errorf("%s mentions the token", a.cause)
		}
		if !strings.Contains(a.body, "in 30 hours") {
			t.Errorf("%s: body %q lacks when", a.cause, a.body)
		}
	}
}

package main

import (
	"fmt"
	"time"

	"github.com/tether-dev/tether/app"
)

// Desktop notifications are for what a person must act on, at most one per
// cause: a cause notifies when it appears, stays quiet while it lasts, and
// may notify again only after it has cleared (a server that recovers and
// later crash-loops again is news again).

type alert struct {
	cause       string // "token-expiring", "token-expired", "token-rejected", "replaced", "crashloop:<server>"
	title, body string
}

// alerts lists the causes present in st.
func alerts(st app.State, now time.Time) []alert {
	var out []alert
	t := st.Token
	switch {
	case t.Present && t.Expired:
		out = append(out, alert{"token-expired", "Tether: token expired", "Your bridge token has expired. Copy a new one and choose Paste token from clipboard."})
	case t.Present && t.ExpiringSoon:
		out = append(out, alert{"token-expiring", "Tether: token expires soon",
			fmt.Sprintf("Your bridge token expires %s. Copy a new one and choose Paste token from clipboard.", until(t.Expires, now))})
	}
	if st.Relay.Phase == app.RelayRejected {
		switch {
		case st.Relay.Replaced:
			out = append(out, alert{"replaced", "Tether: another bridge took over",
				"Another computer or Tether connected with the same token. Choose Connect to take the bridge back."})
		case st.Relay.Unauthorized && !t.Expired:
			out = append(out, alert{"token-rejected", "Tether: token rejected", "The relay rejected your bridge token. Paste a new one to connect."})
		}
	}
	out = append(out, signInAlerts(st, now)...)
	for _, s := range st.Servers {
		if s.Phase == app.ServerCrashLoop {
			out = append(out, alert{"crashloop:" + s.Name, "Tether: " + s.Name + " keeps crashing",
				fmt.Sprintf("%s crashed %d times and was stopped. See its log, then choose Restart.", s.Name, s.Restarts)})
		}
	}
	return out
}

// notifier remembers which causes were shown.
type notifier struct {
	shown map[string]bool
	send  func(title, body string)
}

func newNotifier(send func(title, body string)) *notifier {
	return &notifier{shown: map[string]bool{}, send: send}
}

// update sends the new causes of st and forgets the cleared ones.
func (n *notifier) update(st app.State, now time.Time) {
	present := map[string]bool{}
	for _, a := range alerts(st, now) {
		present[a.cause] = true
		if !n.shown[a.cause] {
			n.shown[a.cause] = true
			n.send(a.title, a.body)
		}
	}
	for c := range n.shown {
		if !present[c] {
			delete(n.shown, c)
		}
	}
}

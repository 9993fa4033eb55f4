package mcpchild

import (
	"os"
	"testing"

	"github.com/tether-dev/tether/internal/mcpwire"
)

const testURI = "test://static"

func (cl *client) subscribe(method string) {
	cl.t.Helper()
	if res := cl.mustCall(method, map[string]any{"uri": testURI}); string(res) != "{}" {
		cl.t.Fatalf("%s = %s", method, res)
	}
}

func updateOf(uri string) func(d delivered) bool {
	return func(d delivered) bool {
		m, _ := parseMessage(d.msg)
		return m.method == "notifications/resources/updated" && unquote(field(m.params, "uri")) == uri
	}
}

// Two 2025 clients subscribed to one resource of a 2025-era child (one
// subscription per connection at the child): one unsubscribing leaves the
// other subscribed, and a 2026 client's listen for it hears the update on
// its stream.
func TestSubscriptionsAreCountedPerClient(t *testing.T) {
	c := startTestServer(t, testOptions(t), "-era", "legacy")
	a, b := newClient(t, c, "a"), newClient(t, c, "b")
	a.initialize("2025-06-18")
	b.initialize("2025-11-25")
	a.subscribe("resources/subscribe")
	b.subscribe("resources/subscribe")
	a.subscribe("resources/unsubscribe")

	m := newClient(t, c, "modern")
	listenID, _ := m.request("subscriptions/listen", map[string]any{"_meta": capsMeta("m", allInputCaps),
		"notifications": map[string]any{"resourceSubscriptions": []string{testURI}}})
	ack := m.waitOther("the listen's acknowledgement", methodIs("notifications/subscriptions/acknowledged"))
	if string(ack.related) != listenID {
		t.Fatalf("acknowledged on %s, want the listen %s", ack.related, listenID)
	}

	if got := b.toolText("touch", map[string]any{"uri": testURI}); got != "touched" {
		t.Fatalf("touch = %q", got)
	}
	b.waitOther("the update for the client still subscribed", updateOf(testURI))
	upd := m.waitOther("the update on the listen", updateOf(testURI))
	if string(upd.related) != listenID || !contains(upd.msg, `"`+mcpwire.MetaSubscriptionID+`":`+listenID) {
		t.Fatalf("update on the listen = %s (related %s), want it on %s", upd.msg, upd.related, listenID)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, d := range a.other {
		if updateOf(testURI)(d) {
			t.Fatalf("the client that unsubscribed got %s", d.msg)
		}
	}
}

// A 2025 client on a 2026-only child (which has no resources/subscribe):
// the bridge subscribes with a listen of its own, and the client hears the
// update as a 2025 notification.
func TestSubscribeOnModernOnlyChild(t *testing.T) {
	c := startTestServer(t, testOptions(t), "-era", "modern")
	a := newClient(t, c, "a")
	a.initialize("2025-03-26")
	a.subscribe("resources/subscribe")
	if got := a.toolText("touch", map[string]any{"uri": testURI}); got != "touched" {
		t.Fatalf("touch = %q", got)
	}
	upd := a.waitOther("the update", updateOf(testURI))
	if upd.related != nil || contains(upd.msg, "subscriptionId") {
		t.Fatalf("update = %s (related %s), want a plain 2025 notification", upd.msg, upd.related)
	}
	a.subscribe("resources/unsubscribe")
	c.subs.mu.Lock()
	n := len(c.subs.childListen)
	c.subs.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d listens of the bridge left at the child after the last unsubscribe", n)
	}
}

// A child killed (-9) and restarted is subscribed again, and every
// subscriber is told its resource may have changed (the new process may
// have changed it; nothing was sent while it was down): a 2025 client by a
// plain notifications/resources/updated, a 2026 listen held by the bridge
// on its stream. A client that is not subscribed hears nothing, and the
// renewed subscription carries later updates.
func TestRestartTellsSubscribersToReread(t *testing.T) {
	for _, era := range []string{"legacy", "modern"} {
		t.Run(era, func(t *testing.T) {
			statuses := make(chan Status, 100)
			opts := testOptions(t)
			opts.OnStatus = func(s Status) { statuses <- s }
			c := startTestServer(t, opts, "-era", era)
			a, idle := newClient(t, c, "a"), newClient(t, c, "idle")
			a.initialize("2024-11-05")
			idle.initialize("2025-11-25")
			a.subscribe("resources/subscribe")
			var m *client
			var listenID string
			if era == "legacy" { // a listen the bridge holds (on a 2026 child it goes to the child)
				m = newClient(t, c, "modern")
				listenID, _ = m.request("subscriptions/listen", map[string]any{"_meta": capsMeta("m", allInputCaps),
					"notifications": map[string]any{"resourceSubscriptions": []string{testURI}}})
				m.waitOther("the listen's acknowledgement", methodIs("notifications/subscriptions/acknowledged"))
			}

			p, err := os.FindProcess(c.Status().Pid)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Kill(); err != nil {
				t.Fatal(err)
			}
			waitStatus(t, statuses, func(s Status) bool { return s.Phase == PhaseReady && s.Restarts == 1 })

			upd := a.waitOther("the update after the restart", updateOf(testURI))
			if upd.related != nil || contains(upd.msg, "subscriptionId") {
				t.Fatalf("update = %s (related %s), want a plain 2025 notification", upd.msg, upd.related)
			}
			if m != nil {
				upd := m.waitOther("the update on the listen after the restart", updateOf(testURI))
				if string(upd.related) != listenID || !contains(upd.msg, `"`+mcpwire.MetaSubscriptionID+`":`+listenID) {
					t.Fatalf("update on the listen = %s (related %s), want it on %s", upd.msg, upd.related, listenID)
				}
			}
			// The renewed subscription carries a later update: a second one.
			if got := idle.toolText("touch", map[string]any{"uri": testURI}); got != "touched" {
				t.Fatalf("touch = %q", got)
			}
			n := 0 // waitOther matches each message once, in order
			a.waitOther("the update of a touch after the restart", func(d delivered) bool {
				if updateOf(testURI)(d) {
					n++
				}
				return n == 2
			})
			idle.mu.Lock()
			defer idle.mu.Unlock()
			for _, d := range idle.other {
				if updateOf(testURI)(d) {
					t.Fatalf("a client that is not subscribed got %s", d.msg)
				}
			}
		})
	}
}

package mcpchild

import (
	"github.com/tether-dev/tether/internal/mcpwire"
	"testing"
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

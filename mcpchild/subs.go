package mcpchild

import (
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/tether-dev/tether/internal/mcpwire"
)

// Resource subscriptions, across eras. A 2025 client subscribes with
// resources/subscribe and hears notifications/resources/updated on its
// session; a 2026 client lists the URIs in its subscriptions/listen and
// hears the updates on that stream. A 2025-era child keeps one subscription
// per URI for its one connection (the bridge), a 2026 child one per listen.
// So the bridge keeps the subscribers itself: the child is subscribed to a
// URI while anyone is (resources/subscribe to a 2025 child, a listen of the
// bridge's own on a 2026 child), and each update goes to exactly the
// sessions and listens that asked for that URI.

// subKey is one subscriber: a 2025 session's resources/subscribe (listen
// "") or one 2026 listen of a session.
type subKey struct {
	s      *Session
	listen string // idKey of the listen, "" for resources/subscribe
}

type resourceSubs struct {
	mu          sync.Mutex
	byURI       map[string]map[subKey][]byte // the listen's raw id, nil for resources/subscribe
	childListen map[string]int64             // URI → the bridge's listen at a 2026 child
	ready       map[string]bool              // the child confirmed the subscription
	waiting     map[string][]func(errObj []byte)
}

func newResourceSubs() *resourceSubs {
	return &resourceSubs{byURI: map[string]map[subKey][]byte{}, childListen: map[string]int64{},
		ready: map[string]bool{}, waiting: map[string][]func([]byte){}}
}

// whenSubscribed runs fn once the child confirmed the subscription to uri
// (at once when it has), so a client is told it is subscribed only when an
// update can no longer be missed. errObj is the child's refusal, or nil.
func (c *Child) whenSubscribed(uri string, fn func(errObj []byte)) {
	r := c.subs
	r.mu.Lock()
	if !r.ready[uri] {
		r.waiting[uri] = append(r.waiting[uri], fn)
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	fn(nil)
}

// subscribed is the child's answer to the subscription of uri.
func (c *Child) subscribed(uri string, errObj []byte) {
	r := c.subs
	r.mu.Lock()
	if errObj == nil {
		r.ready[uri] = true
	}
	fns := r.waiting[uri]
	delete(r.waiting, uri)
	r.mu.Unlock()
	for _, fn := range fns {
		fn(errObj)
	}
}

// add records k's interest in uri and reports whether it is the first.
func (r *resourceSubs) add(uri string, k subKey, id []byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.byURI[uri]
	if m == nil {
		m = map[subKey][]byte{}
		r.byURI[uri] = m
	}
	m[k] = id
	return len(m) == 1
}

// removeWhere forgets the subscribers match selects and returns the URIs
// nobody is subscribed to any more.
func (r *resourceSubs) removeWhere(uri string, match func(subKey) bool) (emptied []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for u, m := range r.byURI {
		if uri != "" && u != uri {
			continue
		}
		n := len(m)
		for k := range m {
			if match(k) {
				delete(m, k)
			}
		}
		if len(m) == 0 {
			delete(r.byURI, u)
			delete(r.ready, u)
			if n > 0 {
				emptied = append(emptied, u)
			}
		}
	}
	return emptied
}

// targets is who hears an update of uri.
func (r *resourceSubs) targets(uri string) map[subKey][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[subKey][]byte, len(r.byURI[uri]))
	for k, id := range r.byURI[uri] {
		out[k] = id
	}
	return out
}

// subscribeAtChild subscribes the child to uri: resources/subscribe for a
// 2025-era child, a listen of the bridge's for a 2026 one. The answer is
// not waited for (Handle must not block); a refusal shows in the log.
func (c *Child) subscribeAtChild(in *instance, hs handshake, uri string) {
	quoted, _ := json.Marshal(uri)
	then := func(errObj []byte) { c.subscribed(uri, errObj) }
	method, params := "resources/subscribe", []byte(`{"uri":`+string(quoted)+`}`)
	if hs.era == Era2026 {
		// Confirmed by the listen's notifications/subscriptions/acknowledged.
		method = "subscriptions/listen"
		params = addProtocolMeta([]byte(`{"notifications":{"resourceSubscriptions":[`+string(quoted)+`]}}`), c.clientInfo(), []byte(bridgeCapabilities))
	}
	p := &pending{method: method, uri: uri, then: then}
	id, err := c.send(in, p, func(_ int64, id []byte) []byte { return buildRequest(id, method, params) })
	if err != nil {
		c.log.Warn("subscribing the mcp server to a resource", "uri", uri, "err", err)
		c.subscribed(uri, errorObject(mcpwire.CodeUnavailable, err.Error()))
		return
	}
	if hs.era != Era2026 {
		return
	}
	c.subs.mu.Lock()
	c.subs.childListen[uri] = id
	c.subs.mu.Unlock()
}

// unsubscribeAtChild undoes subscribeAtChild.
func (c *Child) unsubscribeAtChild(in *instance, hs handshake, uri string) {
	if hs.era != Era2026 {
		quoted, _ := json.Marshal(uri)
		c.fireAndForget(in, "resources/unsubscribe", []byte(`{"uri":`+string(quoted)+`}`))
		return
	}
	c.subs.mu.Lock()
	id, ok := c.subs.childListen[uri]
	delete(c.subs.childListen, uri)
	c.subs.mu.Unlock()
	if !ok || c.route.take(id) == nil {
		return
	}
	_ = in.write(buildNotification("notifications/cancelled", []byte(`{"requestId":`+strconv.FormatInt(id, 10)+`,"reason":"no client is subscribed any more"}`)))
}

// fireAndForget sends a request of the bridge's own whose answer nobody
// waits for (it lands in a buffered channel).
func (c *Child) fireAndForget(in *instance, method string, params []byte) {
	p := &pending{method: method, internal: make(chan []byte, 1)}
	if _, err := c.send(in, p, func(_ int64, id []byte) []byte { return buildRequest(id, method, params) }); err != nil {
		c.log.Warn(method, "err", err)
	}
}

// unsubscribeEmptied tells the child about URIs nobody wants any more.
func (c *Child) unsubscribeEmptied(uris []string) {
	if len(uris) == 0 {
		return
	}
	c.mu.Lock()
	in, hs := c.inst, c.init
	c.mu.Unlock()
	if in == nil {
		return
	}
	for _, u := range uris {
		c.unsubscribeAtChild(in, hs, u)
	}
}

// deliverResourceUpdated sends notifications/resources/updated to the
// subscribers of its URI, each in its own era's form.
func (c *Child) deliverResourceUpdated(m *message) {
	uri := unquote(field(m.params, "uri"))
	plain := stripSubscription(m.params)
	for k, id := range c.subs.targets(uri) {
		if k.listen == "" {
			k.s.deliver(buildNotification(m.method, plain), nil)
			continue
		}
		meta := setField(field(plain, "_meta"), mcpwire.MetaSubscriptionID, id)
		k.s.deliver(buildNotification(m.method, setField(plain, "_meta", meta)), id)
	}
}

// subscribeRequest answers a 2025 client's resources/subscribe or
// resources/unsubscribe itself. It reports false when the request should
// go to the child as it is (the child does not offer subscriptions: let it
// say so).
func (s *Session) subscribeRequest(in *instance, hs handshake, m *message) bool {
	if field(field(hs.capabilities, "resources"), "subscribe") == nil {
		return false
	}
	uri := unquote(field(m.params, "uri"))
	if uri == "" {
		s.deliver(errorResponse(m.id, mcpwire.CodeInvalidParams, "uri is required"), nil)
		return true
	}
	c := s.c
	k := subKey{s: s}
	if m.method == "resources/unsubscribe" {
		c.unsubscribeEmptied(c.subs.removeWhere(uri, func(o subKey) bool { return o == k }))
		s.deliver(buildResponse(m.id, []byte(`{}`), nil), nil)
		return true
	}
	if c.subs.add(uri, k, nil) {
		c.subscribeAtChild(in, hs, uri)
	}
	id := clone(m.id)
	c.whenSubscribed(uri, func(errObj []byte) {
		if errObj != nil {
			c.subs.removeWhere(uri, func(o subKey) bool { return o == k })
		}
		s.deliver(buildResponse(id, []byte(`{}`), errObj), nil)
	})
	return true
}

// listenResources registers the resourceSubscriptions of a 2026 listen the
// bridge holds (a 2025-era child), and calls ack once the child is
// subscribed to all of them.
func (s *Session) listenResources(in *instance, hs handshake, m *message, ack func()) {
	var p struct {
		Notifications struct {
			ResourceSubscriptions []string `json:"resourceSubscriptions"`
		} `json:"notifications"`
	}
	_ = json.Unmarshal(m.params, &p)
	k := subKey{s: s, listen: idKey(m.id)}
	uris := p.Notifications.ResourceSubscriptions
	for _, uri := range uris {
		if s.c.subs.add(uri, k, clone(m.id)) {
			s.c.subscribeAtChild(in, hs, uri)
		}
	}
	var left atomic.Int32
	left.Store(int32(len(uris)) + 1)
	done := func([]byte) {
		if left.Add(-1) == 0 {
			ack()
		}
	}
	for _, uri := range uris {
		s.c.whenSubscribed(uri, done)
	}
	done(nil)
}

// forRestart returns the URIs someone is subscribed to, to renew at a new
// instance of the child (none on the first start), and forgets the old
// process's confirmations and listens. It runs before the new instance is
// published as ready: a client that subscribes after that subscribes the
// new process itself, so it must not be taken for a subscriber from before
// the restart (it would be told its resource may have changed just after
// subscribing — seen as a stray update in TestSubscriptionsAreCountedPerClient).
func (r *resourceSubs) forRestart() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.childListen = map[string]int64{}
	uris := make([]string, 0, len(r.byURI))
	for u := range r.byURI {
		uris = append(uris, u)
		delete(r.ready, u) // the old process's confirmation
	}
	return uris
}

// resubscribe subscribes a new instance of the child to uris (from
// forRestart), and then tells each subscriber the resource may have
// changed: the restarted child may have changed it, and no update was sent
// while it was down. A client re-reads on notifications/resources/updated,
// which every version has (a 2026 listen hears it on its stream, as any
// update). Sent once the new child confirmed the subscription, so an
// update after the re-read is not missed.
func (c *Child) resubscribe(in *instance, hs handshake, uris []string) {
	for _, u := range uris {
		// Waiting first: subscribeAtChild answers at once when it fails.
		c.whenSubscribed(u, func(errObj []byte) {
			if errObj != nil {
				c.log.Warn("resubscribing the restarted mcp server to a resource", "uri", u, "err", string(errObj))
				return
			}
			quoted, _ := json.Marshal(u)
			c.deliverResourceUpdated(&message{method: "notifications/resources/updated", params: []byte(`{"uri":` + string(quoted) + `}`)})
		})
		c.subscribeAtChild(in, hs, u)
	}
}

package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestParseEventID(t *testing.T) {
	key := strings.Repeat("0123456789abcdef", 2)
	good := map[string]int{
		key + ".0":         0,
		key + ".1":         1,
		key + ".64":        64,
		key + ".999999999": 999999999,
	}
	for id, want := range good {
		k, seq, ok := parseEventID(id)
		if !ok || k != key || seq != want {
			t.Errorf("parseEventID(%q) = %q, %d, %v; want %q, %d, true", id, k, seq, ok, key, want)
		}
	}
	bad := []string{
		"",
		key,                 // the standalone GET stream's priming id
		key + ".",           // no number
		key + ".01",         // a second spelling of 1
		key + ".-1",         // sign
		key + ".+1",         // sign
		key + ".1.2",        // two dots
		key + ".1000000000", // over nine digits
		key + ". 1",
		strings.ToUpper(key) + ".1", // one spelling: lowercase
		key[:31] + ".1",             // short key
		key + "0.1",                 // long key
		key[:31] + "g.1",            // not hex
		"s1.payload.mac",            // a session id
	}
	// A key may carry its request id (streamKey), in one spelling.
	for _, rid := range []string{`7`, `-3`, `"abc"`, `"a.b\u00e9"`, `1.5e3`} {
		k := streamKey(json.RawMessage(rid))
		got, seq, ok := parseEventID(eventID(k, 2))
		id, idOK := keyRequestID(got)
		if !ok || got != k || seq != 2 || !idOK || string(id) != rid {
			t.Errorf("key for id %s: parse %q %d %v, id %s %v", rid, got, seq, ok, id, idOK)
		}
	}
	if k := streamKey(json.RawMessage(`"` + strings.Repeat("x", maxKeyID) + `"`)); len(k) != streamKeyLen {
		t.Errorf("a long id was put in the key: %q", k)
	}
	bad = append(bad,
		key+"i.1",                   // an empty id
		key+"iNw==.1",               // padded
		key+"iNx.1",                 // not the one spelling of "7"
		key+"i"+b64(`{"a":1}`)+".1", // not a number or string
		key+"i"+b64(`[1]`)+".1",     // not a number or string
		key+"i"+b64(`7 `)+".1",      // trailing space
		key+"x"+b64(`7`)+".1",       // no "i"
		key+"i"+b64(`"a`)+".1",      // not JSON
	)
	for _, id := range bad {
		if k, seq, ok := parseEventID(id); ok {
			t.Errorf("parseEventID(%q) = %q, %d, true; want refused", id, k, seq)
		}
	}
	if k, seq, ok := parseEventID(eventID(key, 42)); !ok || k != key || seq != 42 {
		t.Errorf("eventID does not round-trip: %q %d %v", k, seq, ok)
	}
}

// manualTimers collects the book's timers so a test fires them itself.
type manualTimers struct{ pending []func() }

func (m *manualTimers) after(_ time.Duration, f func()) { m.pending = append(m.pending, f) }

// fire runs the timers set so far (not the ones they set).
func (m *manualTimers) fire() {
	now := m.pending
	m.pending = nil
	for _, f := range now {
		f()
	}
}

func seqs(evs []streamEvent) []int {
	out := []int{}
	for _, ev := range evs {
		out = append(out, ev.seq)
	}
	return out
}

func sameInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestStreamBookEventCap: a stream keeps its last 64 events; a resume from
// before them is refused, one from within them gets the rest.
func TestStreamBookEventCap(t *testing.T) {
	var k streamBook
	st := k.open("sess", "tok", false, nil)
	for i := 1; i <= 70; i++ {
		seq, lost := k.add(st, []byte("ev"))
		if seq != i {
			t.Fatalf("event %d got seq %d", i, seq)
		}
		if want := max(0, i-streamMaxEvents); lost != want {
			t.Fatalf("after %d events lost = %d, want %d", i, lost, want)
		}
	}
	if _, ok, _ := k.since(st, 5); ok {
		t.Fatal("resume from 5 allowed, but event 6 is gone")
	}
	evs, ok, _ := k.since(st, 6)
	if !ok || len(evs) != 64 || evs[0].seq != 7 || evs[63].seq != 70 {
		t.Fatalf("resume from 6: ok %v, %d events from %v", ok, len(evs), seqs(evs))
	}
	evs, ok, _ = k.since(st, 69)
	if !ok || !sameInts(seqs(evs), []int{70}) {
		t.Fatalf("resume from 69: ok %v, %v", ok, seqs(evs))
	}
	if evs, ok, _ := k.since(st, 70); !ok || len(evs) != 0 {
		t.Fatalf("resume from the newest id: ok %v, %v; want nothing to replay", ok, seqs(evs))
	}
	if _, ok, _ := k.since(st, 71); ok {
		t.Fatal("resume from an id never issued allowed")
	}
}

// TestStreamBookByteCaps: 1 MiB per stream (older events make room; a
// larger event is not kept and takes the older ones with it) and 4 MiB
// per session (finished streams give theirs up first).
func TestStreamBookByteCaps(t *testing.T) {
	var k streamBook
	tm := &manualTimers{}
	k.afterFunc = tm.after
	quarter := bytes.Repeat([]byte("x"), streamMaxBytes/4)

	st := k.open("sess", "tok", false, nil)
	for range 4 {
		k.add(st, quarter)
	}
	if _, lost := k.add(st, []byte("small")); lost != 1 {
		t.Fatalf("a fifth event over 1 MiB: lost = %d, want 1 (the oldest made room)", lost)
	}
	if evs, ok, _ := k.since(st, 1); !ok || !sameInts(seqs(evs), []int{2, 3, 4, 5}) {
		t.Fatalf("resume from 1: %v %v", ok, seqs(evs))
	}
	big := bytes.Repeat([]byte("y"), streamMaxBytes+1)
	if seq, lost := k.add(st, big); seq != 6 || lost != 6 {
		t.Fatalf("an event over 1 MiB: seq %d lost %d, want 6 and 6", seq, lost)
	}
	if _, ok, _ := k.since(st, 5); ok {
		t.Fatal("resume from before an event that was not kept allowed")
	}
	if evs, ok, _ := k.since(st, 6); !ok || len(evs) != 0 {
		t.Fatalf("resume from the big event itself: %v %v", ok, seqs(evs))
	}
	k.mu.Lock()
	if ss := k.bySession["sess"]; ss.bytes != 0 || st.bytes != 0 {
		t.Fatalf("accounting after dropping everything: session %d stream %d", ss.bytes, st.bytes)
	}
	k.mu.Unlock()

	// The session's budget: a finished stream's events go before a live
	// stream's own.
	done := k.open("sess", "tok", false, nil)
	for range 4 {
		k.add(done, quarter) // 1 MiB
	}
	k.add(done, []byte(`{"final":true}`)) // the oldest quarter makes room
	fallback := []byte(`{"fallback":true}`)
	k.finish(done, fallback, time.Minute)
	live := []*postStream{k.open("sess", "tok", false, nil), k.open("sess", "tok", false, nil), k.open("sess", "tok", false, nil)}
	for _, l := range live {
		for range 4 {
			k.add(l, quarter)
		}
	}
	// 3 MiB live + ~0.75 MiB finished: one more quarter evicts the finished one.
	if _, lost := k.add(st, quarter); lost != 6 {
		t.Fatalf("the live stream lost its own events (lost %d) while a finished one had some", lost)
	}
	evs, ok, fb := k.since(done, 1)
	if ok || !bytes.Equal(fb, fallback) {
		t.Fatalf("finished stream after eviction: ok %v (%v), fallback %s", ok, seqs(evs), fb)
	}
	// Nothing finished left: 3 MiB live elsewhere, st at 0.75 MiB after
	// two more; a stream that grows past the budget trims itself, never
	// another live stream.
	k.add(st, quarter)
	k.add(st, quarter)
	grow := k.open("sess", "tok", false, nil)
	k.add(grow, quarter) // the session at exactly 4 MiB
	if _, lost := k.add(grow, quarter); lost != 1 {
		t.Fatalf("the growing stream: lost %d, want 1 (its own oldest)", lost)
	}
	fresh := k.open("sess", "tok", false, nil)
	if seq, lost := k.add(fresh, quarter); lost != seq {
		t.Fatalf("a stream with nothing to trim and no room: seq %d lost %d, want it not kept", seq, lost)
	}
	k.mu.Lock()
	total := k.bySession["sess"].bytes
	k.mu.Unlock()
	if total != sessionStreamBytes {
		t.Fatalf("session holds %d bytes, want %d", total, sessionStreamBytes)
	}
	if evs, ok, _ := k.since(st, 6); !ok || !sameInts(seqs(evs), []int{7, 8, 9}) {
		t.Fatalf("st lost events to another stream: %v %v", ok, seqs(evs))
	}
	for i, l := range live {
		if evs, ok, _ := k.since(l, 0); !ok || len(evs) != 4 {
			t.Fatalf("live stream %d lost events to another stream: %v %v", i, ok, seqs(evs))
		}
	}
}

// TestStreamBookFinished: a finished stream replays for the grace, then
// only answers with its fallback, then is forgotten; a session keeps at
// most finishedPerSession of them; discard forgets at once.
func TestStreamBookFinished(t *testing.T) {
	var k streamBook
	tm := &manualTimers{}
	k.afterFunc = tm.after
	st := k.open("sess", "tok", true, nil)
	k.prime(st) // a resumed connection's priming: 1
	k.add(st, []byte("progress"))
	k.add(st, []byte("response"))
	fallback := []byte("fallback")
	k.finish(st, fallback, time.Minute)
	select {
	case <-st.ended:
	default:
		t.Fatal("finish did not close ended")
	}
	if k.lookup(st.key, "sess", "other-token") != nil || k.lookup(st.key, "other-session", "tok") != nil {
		t.Fatal("a stream was found for another session or token")
	}
	if k.lookup(st.key, "sess", "tok") != st {
		t.Fatal("finished stream not found")
	}
	evs, ok, _ := k.since(st, 1)
	if !ok || !sameInts(seqs(evs), []int{2, 3}) {
		t.Fatalf("replay within the grace: %v %v", ok, seqs(evs))
	}
	tm.fire() // the grace ends
	if _, ok, fb := k.since(st, 1); ok || !bytes.Equal(fb, fallback) {
		t.Fatalf("after the grace: ok %v fallback %q", ok, fb)
	}
	if k.lookup(st.key, "sess", "tok") != st {
		t.Fatal("tombstone gone with the events")
	}
	tm.fire() // the tombstone's time ends
	if k.lookup(st.key, "sess", "tok") != nil {
		t.Fatal("tombstone never forgotten")
	}
	k.mu.Lock()
	if len(k.byKey) != 0 || len(k.bySession) != 0 {
		t.Fatalf("book not empty: %d streams, %d sessions", len(k.byKey), len(k.bySession))
	}
	k.mu.Unlock()

	// At most finishedPerSession finished streams per session, oldest out.
	var all []*postStream
	for range finishedPerSession + 3 {
		s := k.open("sess", "tok", false, nil)
		k.add(s, []byte("response"))
		k.finish(s, fallback, time.Minute)
		all = append(all, s)
	}
	for i, s := range all {
		if found := k.lookup(s.key, "sess", "tok") != nil; found != (i >= 3) {
			t.Fatalf("finished stream %d found = %v", i, found)
		}
	}

	d := k.open("sess2", "tok", false, nil)
	k.add(d, []byte("x"))
	k.discard(d)
	if k.lookup(d.key, "sess2", "tok") != nil {
		t.Fatal("discarded stream still found")
	}
	k.mu.Lock()
	_, left := k.bySession["sess2"]
	k.mu.Unlock()
	if left {
		t.Fatal("discarding the session's only stream left its entry")
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

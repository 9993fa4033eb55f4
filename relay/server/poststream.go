package server

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tether-dev/tether/internal/mcpwire"
	"github.com/tether-dev/tether/relay"
)

// Resumable POST streams (MCP Streamable HTTP, "Resumability and
// Redelivery", 2025-03-26 onward; docs/protocol.md, "Resumable streams").
//
// A 2025-era POST whose answer is an SSE stream (progress, a server→client
// request before the response) gets event ids: `<key>.<n>`, key 32 random
// hex characters per stream, n counting from 1 (0 is the priming event
// that 2025-11-25 sessions get first: an id and empty data). The relay
// keeps the stream's recent events. When the client's connection drops
// before the response, the call is not cancelled at once: the stream is
// held for Server.ResumeGrace, further events from the bridge are kept,
// and a GET on the same MCP URL with the same session id, the same client
// token and `Last-Event-ID: <key>.<n>` gets the events after n and then the
// rest of the stream live, up to and including the response. A grace that
// ends without such a GET cancels the call as before (notifications/
// cancelled to the bridge); a client that comes back later gets a
// JSON-RPC error for its request from the stream's tombstone. After the
// response, the stream's events stay for the grace as well, so a response
// lost in the cut is replayed.
//
// One goroutine owns a live stream: the POST's handler (await, the
// "pump"), which stays up while the stream is held — so a held stream
// keeps counting against the token's in-flight POSTs — and writes to
// whichever connection carries the stream now: the POST's, or the
// resuming GET's, whose handler hands its ResponseWriter over and waits.
// The buffer itself is in streamBook, under its own mutex, never held
// across a write.
//
// What is kept is bounded: the last streamMaxEvents events and
// streamMaxBytes per stream, sessionStreamBytes per session. An event
// that falls out of the buffer is lost for a resume: a Last-Event-ID older
// than it is refused, and a held stream that lost an event its client
// never got is given up at once. Past the caps a stream is simply not
// resumable any more from before that point.

// DefaultResumeGrace is how long a POST stream whose client went away
// before the response is held for a resume, when Server.ResumeGrace is zero.
const DefaultResumeGrace = 60 * time.Second

const (
	// resumeVersion is the first revision with resumable streams; 2024-11-05
	// had no Streamable HTTP, and the 2026 era (SEP-2575) has no resumption.
	resumeVersion = "2025-03-26"
	// streamMaxEvents and streamMaxBytes cap the events kept per stream:
	// the oldest go first, a larger single event is not kept at all.
	streamMaxEvents = 64
	streamMaxBytes  = 1 << 20
	// sessionStreamBytes caps the events kept for all streams of a session:
	// finished streams give theirs up first, then the stream that grows.
	sessionStreamBytes = 4 << 20
	// finishedPerSession bounds the finished streams a session remembers.
	finishedPerSession = 64
	// tombstoneTTL is how long a finished stream is remembered, without its
	// events once its grace is over: a client that comes back late gets a
	// JSON-RPC error for its call instead of a 400 (which ends a go-sdk
	// client's whole session).
	tombstoneTTL = 10 * time.Minute
	streamKeyLen = 32
)

func (s *Server) resumeGrace() time.Duration { return offOrDefault(s.ResumeGrace, DefaultResumeGrace) }

// resumable reports whether sess's POST streams get event ids and may be
// resumed.
func (s *Server) resumable(sess *session) bool {
	return s.resumeGrace() > 0 && !sess.ephemeral && sess.version >= resumeVersion && !mcpwire.IsModern(sess.version)
}

// hook tells a test what a stream did: "held", "buffered", "resumed",
// "abandoned".
func (s *Server) hook(event string) {
	if s.onStream != nil {
		s.onStream(event)
	}
}

func eventID(key string, seq int) string { return key + "." + strconv.Itoa(seq) }

// parseEventID reads a Last-Event-ID of a POST stream; ok is false for
// anything else, such as the standalone GET stream's priming id (32 hex
// characters, no dot). One spelling per id: lowercase hex, no sign, no
// leading zero. A key may carry its request's JSON-RPC id after the 32
// hex characters (streamKey), in the one spelling streamKey gives.
func parseEventID(id string) (key string, seq int, ok bool) {
	key, n, found := strings.Cut(id, ".")
	if !found || len(key) < streamKeyLen || len(n) == 0 || len(n) > 9 || (n[0] == '0' && len(n) > 1) {
		return "", 0, false
	}
	for i := 0; i < streamKeyLen; i++ {
		if c := key[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", 0, false
		}
	}
	if len(key) > streamKeyLen {
		if _, ok := keyRequestID(key); !ok {
			return "", 0, false
		}
	}
	for i := 0; i < len(n); i++ {
		if n[i] < '0' || n[i] > '9' {
			return "", 0, false
		}
	}
	seq, _ = strconv.Atoi(n)
	return key, seq, true
}

// maxKeyID is the longest request id (raw JSON) a stream key carries.
const maxKeyID = 96

// streamKey is a new stream's key: 32 random hex characters, then "i" and
// the request's JSON-RPC id in unpadded base64url when it is short. The id
// lets any relay process answer a resume of a stream it does not hold (it
// restarted, or another replica held it) with an error for that one call:
// a 400 there ends a go-sdk client's whole session — every call in flight
// when the relay restarted would take its session down with it. A client
// that forges the id only gets an error for the id it sent itself.
func streamKey(reqID json.RawMessage) string {
	k := newSessionID()
	if len(reqID) > 0 && len(reqID) <= maxKeyID {
		k += "i" + base64.RawURLEncoding.EncodeToString(reqID)
	}
	return k
}

// keyRequestID returns the request id a stream key carries, if it carries
// one in streamKey's spelling: a JSON number or string.
func keyRequestID(key string) (json.RawMessage, bool) {
	if len(key) <= streamKeyLen+1 || key[streamKeyLen] != 'i' {
		return nil, false
	}
	enc := key[streamKeyLen+1:]
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(raw) > maxKeyID || base64.RawURLEncoding.EncodeToString(raw) != enc || !json.Valid(raw) {
		return nil, false
	}
	if c := raw[0]; c != '"' && c != '-' && (c < '0' || c > '9') {
		return nil, false
	}
	if c := raw[len(raw)-1]; c != '"' && (c < '0' || c > '9') {
		return nil, false // no whitespace around it: one spelling
	}
	return raw, true
}

// ---- the buffer ----

type streamEvent struct {
	seq int
	msg []byte
}

// postStream is one resumable POST stream.
type postStream struct {
	key     string
	sid     string // the session it belongs to
	token   string // the client token id of that session
	priming bool   // 2025-11-25 or later: every connection starts with a priming event
	attach  chan *resumer
	ended   chan struct{} // closed once the pump is done with the stream

	// guarded by streamBook.mu
	events   []streamEvent // oldest first, seqs increasing (primings leave gaps)
	bytes    int
	next     int  // the seq of the next event
	lost     int  // the newest seq no longer in events: a resume needs Last-Event-ID >= lost
	finished bool // the pump is done: events end with the response, or are gone
	// fallback is the error response a resume gets once the events it
	// needs are gone (after the grace, or evicted).
	fallback []byte
	removed  bool
}

type sessionStreams struct {
	bytes int
	list  []*postStream // oldest first
}

// streamBook holds every resumable stream of this relay process, by key
// and by session. A mutex guards data only.
type streamBook struct {
	mu        sync.Mutex
	byKey     map[string]*postStream
	bySession map[string]*sessionStreams
	// afterFunc, when set (tests), replaces time.AfterFunc.
	afterFunc func(time.Duration, func())
}

func (k *streamBook) after(d time.Duration, f func()) {
	if k.afterFunc != nil {
		k.afterFunc(d, f)
		return
	}
	time.AfterFunc(d, f)
}

func (k *streamBook) open(sid, token string, priming bool, reqID json.RawMessage) *postStream {
	st := &postStream{key: streamKey(reqID), sid: sid, token: token, priming: priming,
		attach: make(chan *resumer), ended: make(chan struct{}), next: 1}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.byKey == nil {
		k.byKey = make(map[string]*postStream)
		k.bySession = make(map[string]*sessionStreams)
	}
	ss := k.bySession[sid]
	if ss == nil {
		ss = &sessionStreams{}
		k.bySession[sid] = ss
	}
	ss.list = append(ss.list, st)
	k.byKey[st.key] = st
	return st
}

// lookup returns the stream key names if it belongs to session sid of the
// client token: a stream of another session is as unknown as no stream.
func (k *streamBook) lookup(key, sid, token string) *postStream {
	k.mu.Lock()
	defer k.mu.Unlock()
	st := k.byKey[key]
	if st == nil || st.sid != sid || st.token != token {
		return nil
	}
	return st
}

// add keeps msg as st's next event, within the caps, and returns its seq
// and st's lost mark after it. Only st's pump adds to st, and only an add
// to st trims a live st, so the pump can follow lost from what add returns.
func (k *streamBook) add(st *postStream, msg []byte) (seq, lost int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	seq = st.next
	st.next++
	ss := k.bySession[st.sid]
	n := len(msg)
	if st.removed || n > streamMaxBytes {
		// Not kept; the events before it are of no use to a resume.
		k.trimLocked(ss, st, len(st.events))
		st.lost = seq
		return seq, st.lost
	}
	for len(st.events) > 0 && (len(st.events) >= streamMaxEvents || st.bytes+n > streamMaxBytes) {
		k.trimLocked(ss, st, 1)
	}
	for ss.bytes+n > sessionStreamBytes {
		if v := ss.oldestFinished(); v != nil {
			k.trimLocked(ss, v, len(v.events))
			continue
		}
		if len(st.events) == 0 {
			// The session's other live streams hold the budget.
			st.lost = seq
			return seq, st.lost
		}
		k.trimLocked(ss, st, 1)
	}
	st.events = append(st.events, streamEvent{seq, msg})
	st.bytes += n
	ss.bytes += n
	return seq, st.lost
}

// prime takes a seq for a priming event: an id, no data, nothing kept.
func (k *streamBook) prime(st *postStream) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	seq := st.next
	st.next++
	return seq
}

// oldestFinished is the session's oldest finished stream that still has
// events.
func (ss *sessionStreams) oldestFinished() *postStream {
	for _, st := range ss.list {
		if st.finished && len(st.events) > 0 {
			return st
		}
	}
	return nil
}

// trimLocked drops st's n oldest events.
func (k *streamBook) trimLocked(ss *sessionStreams, st *postStream, n int) {
	for i := range n {
		ev := st.events[i]
		st.lost = max(st.lost, ev.seq)
		st.bytes -= len(ev.msg)
		if ss != nil {
			ss.bytes -= len(ev.msg)
		}
		st.events[i] = streamEvent{} // let the message go
	}
	st.events = st.events[n:]
	if len(st.events) == 0 {
		st.events = nil
	}
}

// since returns st's events after seq after; ok is false when a resume
// from after is impossible: an event after it is gone, or after is not an
// id st has issued. fallback is set for a finished stream.
func (k *streamBook) since(st *postStream, after int) (evs []streamEvent, ok bool, fallback []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if after < st.lost || after >= st.next {
		return nil, false, st.fallback
	}
	i := sort.Search(len(st.events), func(i int) bool { return st.events[i].seq > after })
	return append([]streamEvent(nil), st.events[i:]...), true, st.fallback
}

// finish marks st done: its events (ending with the response, if it was
// kept) stay for grace, then only the fallback answer stays, until
// tombstoneTTL. A session remembers at most finishedPerSession of them.
func (k *streamBook) finish(st *postStream, fallback []byte, grace time.Duration) {
	k.mu.Lock()
	st.finished = true
	st.fallback = fallback
	if ss := k.bySession[st.sid]; ss != nil {
		finished := 0
		for _, o := range ss.list {
			if o.finished {
				finished++
			}
		}
		for i := 0; finished > finishedPerSession && i < len(ss.list); {
			if o := ss.list[i]; o.finished && o != st {
				k.removeLocked(o)
				finished--
				continue
			}
			i++
		}
	}
	k.mu.Unlock()
	close(st.ended)
	k.after(grace, func() {
		k.mu.Lock()
		if !st.removed {
			k.trimLocked(k.bySession[st.sid], st, len(st.events))
		}
		k.mu.Unlock()
		k.after(max(tombstoneTTL-grace, 0), func() {
			k.mu.Lock()
			k.removeLocked(st)
			k.mu.Unlock()
		})
	})
}

// discard forgets a stream whose client never got an id (the answer went
// out as plain JSON, or the client left before anything was streamed).
func (k *streamBook) discard(st *postStream) {
	k.mu.Lock()
	st.finished = true
	k.removeLocked(st)
	k.mu.Unlock()
	close(st.ended)
}

func (k *streamBook) removeLocked(st *postStream) {
	if st.removed {
		return
	}
	st.removed = true
	ss := k.bySession[st.sid]
	k.trimLocked(ss, st, len(st.events))
	delete(k.byKey, st.key)
	if ss == nil {
		return
	}
	for i, o := range ss.list {
		if o == st {
			ss.list = append(ss.list[:i], ss.list[i+1:]...)
			break
		}
	}
	if len(ss.list) == 0 {
		delete(k.bySession, st.sid)
	}
}

// ---- the pump: the POST handler's side ----

// resumer is a GET taking over a live stream. Its handler waits on done;
// until then the pump alone writes to out.
type resumer struct {
	after int
	out   *responder
	gone  <-chan struct{} // the GET's request context
	done  chan struct{}   // closed by the pump when it stops writing to out
}

var (
	errStreamLost  = errors.New("the stream lost events its client never got")
	errStaleResume = errors.New("resumed from an event that is no longer kept")
	errClientGone  = errors.New("client disconnected")
	errAbandoned   = errors.New("the client cancelled the request")
)

// streamPump writes one POST's answer: as a resumable stream once st is
// set, else as before. st is opened when the answer turns into a stream,
// so a call answered with plain JSON costs nothing here.
type streamPump struct {
	s         *Server
	st        *postStream
	resumable bool
	sess      *session
	reqID     json.RawMessage // the client's request id, carried in the stream key
	post      *responder
	sink      *responder      // where the stream goes now; nil while held
	gone      <-chan struct{} // the sink's request context
	res       *resumer        // the GET whose out is sink

	idSent    bool // the client may hold an id of st
	written   int  // the newest seq written to a connection
	lost      int  // st.lost, as add reported it
	finished  bool
	abandoned bool        // the client cancelled the request: never held
	grace     *time.Timer // running while held
	prime     *time.Timer // begin's priming event waits for it or the first event
	keepalive *time.Ticker
}

func (s *Server) newPump(r *http.Request, out *responder, sess *session, resumable bool, reqID json.RawMessage) *streamPump {
	return &streamPump{s: s, resumable: resumable, sess: sess, post: out, sink: out, gone: r.Context().Done(), reqID: reqID}
}

// open registers the stream when the answer turns into one.
func (p *streamPump) open() {
	if p.st == nil && p.resumable {
		p.st = p.s.streams.open(p.sess.id, p.sess.token, p.sess.version >= primingVersion, p.reqID)
	}
}

// primeDelay is how long begin's priming event may wait to go out with
// the response: most calls answer sooner, and header, priming event and
// response then take one write, as a JSON answer does.
const primeDelay = 5 * time.Millisecond

// begin opens the stream before anything is to be streamed: the SSE
// header and the priming event, so that the client holds an id to resume
// from however long the call stays quiet. They go out with the first
// event, or on their own once primeDelay has passed (flushPrimed).
func (p *streamPump) begin() {
	p.open()
	o := p.sink
	o.header()
	o.primingUnflushed(eventID(p.st.key, 0))
	p.prime = time.NewTimer(primeDelay)
}

func (p *streamPump) primeC() <-chan time.Time {
	if p.prime == nil {
		return nil
	}
	return p.prime.C
}

// flushPrimed sends begin's header and priming event of a call that has
// not answered within primeDelay.
func (p *streamPump) flushPrimed() error {
	p.prime = nil
	if p.sink == nil {
		return nil
	}
	if err := p.sink.rc.Flush(); err != nil {
		return p.lose(err)
	}
	p.idSent = true
	p.startKeepalive()
	return nil
}

// event sends a message related to the call. An error means the stream
// cannot go on: its connection failed and it cannot be held.
func (p *streamPump) event(msg []byte) error {
	p.open()
	if p.st == nil {
		return p.post.event(msg)
	}
	seq, lost := p.s.streams.add(p.st, msg)
	p.lost = lost
	if p.sink == nil {
		if p.lost > p.written {
			return errStreamLost
		}
		p.s.hook("buffered")
		return nil
	}
	if err := p.write(seq, msg); err != nil {
		return p.lose(err)
	}
	return nil
}

// write sends one event to the sink, opening the SSE stream (with its
// priming event) first if needed.
func (p *streamPump) write(seq int, msg []byte) error {
	o := p.sink
	if !o.started {
		// The header goes out with the first event: one write, one flush.
		o.header()
		if p.st.priming {
			if err := o.primingUnflushed(eventID(p.st.key, 0)); err != nil {
				return err
			}
		}
		p.startKeepalive()
	}
	if p.prime != nil {
		// begin's header and priming event go out with this event.
		p.prime.Stop()
		p.prime = nil
		p.startKeepalive()
	}
	if err := o.eventID(eventID(p.st.key, seq), msg); err != nil {
		return err
	}
	p.idSent = true
	p.written = max(p.written, seq)
	return nil
}

func (p *streamPump) startKeepalive() {
	if p.keepalive == nil {
		p.keepalive = time.NewTicker(relay.PingInterval)
	}
}

// release stops writing to the sink; a GET there is let go.
func (p *streamPump) release() {
	if p.res != nil {
		close(p.res.done)
		p.res = nil
	}
	p.sink, p.gone = nil, nil
}

// lose handles a sink that failed or went away: the stream is held for a
// resume (nil) when its client may hold an id it can resume from, else err.
func (p *streamPump) lose(err error) error {
	p.release()
	if p.abandoned {
		return errAbandoned
	}
	if p.st == nil || p.finished || !p.idSent || p.lost > p.written {
		return err
	}
	if p.grace == nil {
		p.grace = time.NewTimer(p.s.resumeGrace())
	}
	p.s.hook("held")
	return nil
}

// abandon records that the client cancelled the request (its
// notifications/cancelled went to the bridge): a held stream has no one to
// wait for any more (errAbandoned), and a connected one is not held when
// its connection drops. A stream that is not resumable is left as it was.
func (p *streamPump) abandon() error {
	if p.st == nil {
		return nil
	}
	p.abandoned = true
	p.s.hook("abandoned")
	if p.sink == nil {
		return errAbandoned
	}
	return nil
}

func (p *streamPump) graceC() <-chan time.Time {
	if p.grace == nil {
		return nil
	}
	return p.grace.C
}

func (p *streamPump) attachC() <-chan *resumer {
	if p.st == nil {
		return nil
	}
	return p.st.attach
}

func (p *streamPump) keepaliveC() <-chan time.Time {
	if p.keepalive == nil || p.sink == nil {
		return nil
	}
	return p.keepalive.C
}

// ping writes a keepalive comment: idle load balancers drop quiet
// connections (often at 60 s), and a dead one is found sooner.
func (p *streamPump) ping() error {
	if err := p.sink.comment("keepalive"); err != nil {
		return p.lose(err)
	}
	return nil
}

// resume makes the GET res the stream's connection: the events after its
// Last-Event-ID, then the rest live. errStaleResume (res is the sink,
// ready for the error) when that is impossible; another error when res
// failed at once and the stream cannot be held.
func (p *streamPump) resume(res *resumer) error {
	evs, ok, _ := p.s.streams.since(p.st, res.after)
	// The connection before (a GET, or a POST whose client came back on a
	// new connection before this one saw the old one drop) is let go.
	p.release()
	if p.grace != nil {
		p.grace.Stop()
		p.grace = nil
	}
	p.sink, p.gone, p.res = res.out, res.gone, res
	if !ok {
		return errStaleResume
	}
	p.s.metrics.streamsResumed.Add(1)
	p.s.hook("resumed")
	o := res.out
	o.startSSE()
	p.startKeepalive()
	if p.st.priming && len(evs) == 0 {
		// A new id: the go-sdk client counts a reconnection that brought
		// no new id as a retry without progress and gives up after a few.
		// Not before replayed events: its seq is newer than theirs, and a
		// client cut right after it would resume past them.
		seq := p.s.streams.prime(p.st)
		if err := o.priming(eventID(p.st.key, seq)); err != nil {
			return p.lose(err)
		}
		p.written = max(p.written, seq)
	}
	for _, ev := range evs {
		if err := o.eventID(eventID(p.st.key, ev.seq), ev.msg); err != nil {
			return p.lose(err)
		}
		p.written = max(p.written, ev.seq)
	}
	return nil
}

// notKept is the fallback answer of a stream whose response was kept and
// then dropped.
func notKept(id json.RawMessage) []byte {
	return rpcErrorBody(id, mcpwire.CodeUnavailable, "tether-relay: the answer to this request is no longer kept for a resume")
}

// final writes the response (or the relay's error in its place) and ends
// the stream.
func (p *streamPump) final(id json.RawMessage, msg []byte) {
	if p.post.forceSSE {
		p.open()
	}
	if p.st == nil {
		// Nothing was streamed and the client takes JSON: a plain
		// answer, no id to resume from.
		p.post.final(msg)
		return
	}
	seq, lost := p.s.streams.add(p.st, msg)
	p.lost = lost
	switch {
	case p.sink != nil && p.prime != nil:
		// Nothing went out yet: header, priming event and response go
		// out together when the handler returns, as a JSON answer does.
		p.prime.Stop()
		p.prime = nil
		_ = p.sink.eventUnflushed(eventID(p.st.key, seq), msg)
	case p.sink != nil:
		_ = p.write(seq, msg) // a resume gets it from the buffer
	}
	p.end(notKept(id))
}

// cancelled ends a stream whose call the relay gave up on; failure is the
// error response a resume gets instead of the call's. The sink, if any (a
// resume that came too late), gets it now.
func (p *streamPump) cancelled(failure []byte) {
	if p.st == nil || p.finished {
		return
	}
	if !p.idSent {
		p.finished = true
		p.release()
		p.s.streams.discard(p.st)
		return
	}
	seq, lost := p.s.streams.add(p.st, failure)
	p.lost = lost
	if p.sink != nil {
		_ = p.sink.eventID(eventID(p.st.key, seq), failure)
	}
	p.end(failure)
}

func (p *streamPump) end(fallback []byte) {
	p.finished = true
	p.release()
	p.s.streams.finish(p.st, fallback, p.s.resumeGrace())
}

// close runs when await returns: a GET still attached is let go, and a
// stream not ended yet (a panic) is ended.
func (p *streamPump) close() {
	if p.grace != nil {
		p.grace.Stop()
	}
	if p.prime != nil {
		p.prime.Stop()
	}
	if p.keepalive != nil {
		p.keepalive.Stop()
	}
	if p.st != nil && !p.finished {
		p.end(nil)
	}
	p.release()
}

// ---- the GET side ----

// resumeGET serves a GET with a Last-Event-ID of a POST stream. It reports
// false, having written nothing, for any other GET (no such header, the
// standalone stream's own id, a session id that is not one this relay
// signed), which is served as before.
func (s *Server) resumeGET(w http.ResponseWriter, r *http.Request, dev, name string, claims Claims) bool {
	last := r.Header.Get("Last-Event-ID")
	sid := r.Header.Get(headerSession)
	if last == "" || sid == "" {
		return false
	}
	key, after, ok := parseEventID(last)
	if !ok {
		return false
	}
	sc, err := s.signer.parse(sid)
	if err != nil {
		return false
	}
	if !sc.valid(dev, name, claims, time.Now()) || s.book.ended(sid) {
		sessionNotFound(w)
		return true
	}
	if _, sseOK := accepts(r); !sseOK {
		writeJSON(w, http.StatusNotAcceptable, map[string]string{"error": "GET must accept text/event-stream"})
		return true
	}
	out := &responder{w: w, rc: http.NewResponseController(w), forceSSE: true}
	for {
		st := s.streams.lookup(key, sid, claims.Principal())
		if st == nil {
			if id, ok := keyRequestID(key); ok {
				// Not held here (a relay restart, another replica, or long
				// forgotten): an error for that one call, and the session
				// goes on. The id is the client's own, from its own header.
				out.startSSE()
				out.event(rpcErrorBody(id, mcpwire.CodeUnavailable,
					"tether-relay: this request's stream is no longer held (the relay restarted or the stream expired); it may not have completed — retry it"))
				return true
			}
			// Never issued, forgotten, or another session's: the same
			// answer, so nothing says which. 400 as the go-sdk server gives
			// for events it cannot replay; a 404 would say the session is
			// gone.
			writeJSON(w, http.StatusBadRequest, map[string]string{
				"error": "unknown stream",
				"hint":  "the Last-Event-ID names no stream of this session that can be resumed",
			})
			return true
		}
		select {
		case <-st.ended:
			s.replayFinished(out, st, after)
			return true
		default:
		}
		res := &resumer{after: after, out: out, gone: r.Context().Done(), done: make(chan struct{})}
		select {
		case st.attach <- res:
			<-res.done // the pump writes the stream; w is its until then
			return true
		case <-st.ended:
			// It ended meanwhile: replay it.
		case <-r.Context().Done():
			return true
		}
	}
}

// replayFinished answers a resume of a stream whose pump is done: its
// events after `after`, which end with the response; or, when they are
// gone, the stream's fallback error response.
func (s *Server) replayFinished(out *responder, st *postStream, after int) {
	evs, ok, fallback := s.streams.since(st, after)
	if !ok && fallback == nil {
		// A stream ended without a fallback (the pump panicked).
		writeJSON(out.w, http.StatusBadRequest, map[string]string{"error": "unknown stream"})
		return
	}
	out.startSSE()
	if !ok {
		out.event(fallback)
		return
	}
	s.metrics.streamsResumed.Add(1)
	for _, ev := range evs {
		if out.eventID(eventID(st.key, ev.seq), ev.msg) != nil {
			return
		}
	}
}

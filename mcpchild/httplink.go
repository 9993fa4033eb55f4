package mcpchild

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/tether-dev/tether/internal/mcpwire"
)

// HTTP servers (Spec.URL) are reached with the go-sdk's Streamable HTTP
// client transport, used below the MCP layer: its Connection moves
// jsonrpc.Messages over POST (and SSE responses), and httpLink turns them
// into the same newline-delimited stream a child's stdout is. Everything
// above the link — the era probe, the handshake, the multiplexer, sessions,
// progress, cancellation, list_changed — is shared with stdio children.
//
// What the transport does and does not do when used without mcp.Client
// (measured against go-sdk v1.8.0 servers):
//
//   - Eras. The probe works unchanged. A stateless server
//     (StreamableHTTPOptions.Stateless) answers server/discover listing
//     2026-07-28, so the child is spoken to in 2026; the transport sets
//     Mcp-Protocol-Version from each request's _meta protocolVersion, which
//     the server requires to match. A stateful server answers discover too
//     (it is exempt from the stateful rejection) but lists only 2025-era
//     versions and opens no session for it, so the probe falls back to
//     initialize on the same connection and the server's Mcp-Session-Id is
//     picked up from the initialize response.
//   - The transport learns the negotiated version and opens its standalone
//     GET event stream only through an unexported hook that mcp.Client
//     calls after initialize. Without mcp.Client neither happens, so the
//     link does both itself: headerTransport adds Mcp-Protocol-Version to
//     every request of a 2025 connection, and listen() holds the GET stream
//     that carries a 2025 server's list_changed and log notifications. A
//     2026 connection needs neither: there is no GET stream in 2026-07-28,
//     list changes arrive on the bridge's subscriptions/listen POST.
//   - Cancellation. A POST is cancelled with its context; a stateless server
//     cannot hear notifications/cancelled (every POST is its own session),
//     so the link cancels the POST of a request when the bridge cancels it.
//   - Liveness. There is no process to watch. The link is gone when a
//     request cannot reach the server (connection refused, DNS), the server
//     answers 401/403 or forgets the session (404), or a long-lived stream
//     ends: the 2025 GET stream (after one reconnect) or a 2026
//     subscriptions/listen. A 2025 server without a GET stream is noticed at
//     the next request.
type httpLink struct {
	name    string
	url     string // as configured, expanded; never logged (it may hold a key)
	display string // url without user info and query, for messages
	log     *slog.Logger
	maxMsg  int

	conn      mcp.Connection
	client    *http.Client
	transport *http.Transport

	ctx    context.Context // ends on stop or failure: cancels every POST and the GET stream
	cancel context.CancelFunc

	pr  *io.PipeReader
	pw  *io.PipeWriter
	pmu sync.Mutex // one message per pipe write, whole

	mu        sync.Mutex
	calls     map[jsonrpc.ID]*httpCall // requests whose answer has not come yet
	initID    jsonrpc.ID
	hasInit   bool
	version   string // negotiated 2025-era version, sent as Mcp-Protocol-Version
	listening bool
	failErr   error

	goneCh   chan struct{}
	failOnce sync.Once
	stopOnce sync.Once
	readDone chan struct{}
}

// httpCall is one request in flight over HTTP.
type httpCall struct {
	method string
	cancel context.CancelFunc
}

// connectHTTP makes the link to an HTTP server and starts the read loop.
// Nothing is sent yet: the handshake's first request is the first POST.
func (c *Child) connectHTTP(spec Spec) (*instance, error) {
	u, err := url.Parse(spec.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("mcp server %q: url is not an http:// or https:// URL", c.spec.Name)
	}
	l := newHTTPLink(c, spec, u)
	inst := newInstance(c, l)
	c.mu.Lock()
	c.inst = inst
	c.mu.Unlock()
	c.logLine("connecting to " + l.display)
	go inst.readLoop()
	return inst, nil
}

func newHTTPLink(c *Child, spec Spec, u *url.URL) *httpLink {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	l := &httpLink{
		name:     c.spec.Name,
		url:      spec.URL,
		display:  displayURL(u),
		log:      c.log,
		maxMsg:   c.opts.MaxMessageBytes,
		ctx:      ctx,
		cancel:   cancel,
		pr:       pr,
		pw:       pw,
		calls:    map[jsonrpc.ID]*httpCall{},
		goneCh:   make(chan struct{}),
		readDone: make(chan struct{}),
	}
	l.transport = http.DefaultTransport.(*http.Transport).Clone()
	l.client = &http.Client{Transport: &headerTransport{base: l.transport, headers: spec.Headers, l: l}}
	tr := &mcp.StreamableClientTransport{
		Endpoint:   spec.URL,
		HTTPClient: l.client,
		// The link runs its own GET stream (see above); the size cap is the
		// read loop's, which fails only the request concerned.
		DisableStandaloneSSE: true,
		MaxEventSize:         -1,
	}
	conn, err := tr.Connect(ctx) // only builds the connection; cannot fail in v1.8.0
	if err != nil {
		l.fail(fmt.Errorf("mcp server %q at %s: %w", l.name, l.display, err))
		close(l.readDone)
		return l
	}
	l.conn = conn
	go l.readConn()
	return l
}

// displayURL drops user info and the query, which may carry credentials.
func displayURL(u *url.URL) string {
	v := *u
	v.User = nil
	v.RawQuery, v.ForceQuery, v.Fragment = "", false, ""
	return v.String()
}

func (l *httpLink) messages() io.Reader   { return l.pr }
func (l *httpLink) gone() <-chan struct{} { return l.goneCh }
func (l *httpLink) pid() int              { return 0 }

// deathError says why the connection is gone; classified as unavailable,
// so a remote client is not told the server's address or its answers.
func (l *httpLink) deathError() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.failErr
	if err == nil {
		err = fmt.Errorf("connection to mcp server %q at %s closed", l.name, l.display)
	}
	return &ServerError{Server: l.name, Failure: Failure{Kind: FailUnavailable}, Err: err}
}

// fail marks the link gone for err (the first reason wins) and ends the
// message stream, so the read loop sees the server go.
func (l *httpLink) fail(err error) {
	l.failOnce.Do(func() {
		l.mu.Lock()
		l.failErr = err
		l.mu.Unlock()
		close(l.goneCh)
		l.cancel()
		l.pw.CloseWithError(io.EOF)
	})
}

// stop closes the connection: the transport sends DELETE for the session
// when there is one (bounded by grace), then every stream is cancelled.
func (l *httpLink) stop(grace time.Duration) error {
	l.stopOnce.Do(func() {
		l.fail(fmt.Errorf("connection to mcp server %q at %s closed", l.name, l.display))
		if l.conn != nil {
			closed := make(chan struct{})
			go func() {
				if err := l.conn.Close(); err != nil {
					l.log.Debug("closing the HTTP session", "err", err)
				}
				close(closed)
			}()
			t := time.NewTimer(grace)
			select {
			case <-closed:
			case <-t.C:
			}
			t.Stop()
		}
		<-l.readDone
		l.transport.CloseIdleConnections()
	})
	return nil
}

// readConn moves what the transport receives into the message stream.
func (l *httpLink) readConn() {
	defer close(l.readDone)
	for {
		msg, err := l.conn.Read(l.ctx)
		if err != nil {
			if l.ctx.Err() == nil {
				l.fail(fmt.Errorf("connection to mcp server %q at %s broke: %v", l.name, l.display, err))
			}
			return
		}
		l.receive(msg)
	}
}

// receive passes one message from the server on, after the link's own
// bookkeeping for responses.
func (l *httpLink) receive(msg jsonrpc.Message) {
	resp, ok := msg.(*jsonrpc.Response)
	if !ok {
		l.push(msg)
		return
	}
	l.mu.Lock()
	call := l.calls[resp.ID]
	delete(l.calls, resp.ID)
	isInit := l.hasInit && resp.ID == l.initID
	l.mu.Unlock()
	if call != nil {
		call.cancel() // the answer is in; frees the POST
	}
	if isInit && resp.Result != nil {
		var r struct {
			ProtocolVersion string `json:"protocolVersion"`
		}
		if json.Unmarshal(resp.Result, &r) == nil {
			l.mu.Lock()
			l.version = r.ProtocolVersion
			l.mu.Unlock()
		}
	}
	if resp.Error != nil {
		if _, wire := resp.Error.(*jsonrpc.Error); !wire {
			// The transport's own verdict ("request terminated without
			// response"): the stream carrying the answer ended.
			resp = &jsonrpc.Response{ID: resp.ID, Error: &jsonrpc.Error{Code: mcpwire.CodeUnavailable,
				Message: fmt.Sprintf("mcp server %q at %s: %v", l.name, l.display, resp.Error)}}
			if call != nil && call.method == "subscriptions/listen" {
				l.push(resp)
				l.fail(fmt.Errorf("mcp server %q at %s ended the subscription stream (it went away or restarted)", l.name, l.display))
				return
			}
		}
	}
	l.push(resp)
}

// push writes one message to the stream the read loop reads.
func (l *httpLink) push(msg jsonrpc.Message) {
	data, err := jsonrpc.EncodeMessage(msg)
	if err != nil {
		l.log.Warn("could not encode a message from the HTTP server", "err", err)
		return
	}
	l.pmu.Lock()
	defer l.pmu.Unlock()
	_, _ = l.pw.Write(append(data, '\n')) // fails only once the link is gone
}

// write sends one message. A request goes out on its own goroutine: its
// POST lasts as long as the call (the answer may come on the POST's event
// stream), and calls must not wait for each other. Notifications and
// responses are sent in order before write returns (a server expects
// notifications/initialized before the next request).
func (l *httpLink) write(raw []byte) error {
	msg, err := jsonrpc.DecodeMessage(raw)
	if err != nil {
		return fmt.Errorf("encode for HTTP: %w", err)
	}
	select {
	case <-l.goneCh:
		return l.deathError()
	default:
	}
	req, isReq := msg.(*jsonrpc.Request)
	if isReq && req.IsCall() {
		ctx, cancel := context.WithCancel(l.ctx)
		l.mu.Lock()
		l.calls[req.ID] = &httpCall{method: req.Method, cancel: cancel}
		if req.Method == "initialize" {
			l.initID, l.hasInit = req.ID, true
		}
		l.mu.Unlock()
		go l.post(ctx, req)
		return nil
	}
	if err := l.conn.Write(l.ctx, msg); err != nil {
		return fmt.Errorf("mcp server %q at %s: %w", l.name, l.display, err)
	}
	if isReq {
		switch req.Method {
		case "notifications/cancelled":
			l.cancelCall(req.Params)
		case "notifications/initialized":
			l.startListen()
		}
	}
	return nil
}

// post sends one request and, when that fails, answers it with the reason.
func (l *httpLink) post(ctx context.Context, req *jsonrpc.Request) {
	err := l.conn.Write(ctx, req)
	if err == nil {
		return
	}
	l.mu.Lock()
	call := l.calls[req.ID]
	delete(l.calls, req.ID)
	l.mu.Unlock()
	if call == nil {
		return // answered or cancelled meanwhile
	}
	call.cancel()
	if ctx.Err() != nil {
		return // the link is going; the bridge fails what is pending
	}
	var wire *jsonrpc.Error
	if !errors.As(err, &wire) {
		msg := fmt.Sprintf("mcp server %q at %s: %v", l.name, l.display, err)
		l.mu.Lock()
		if l.failErr != nil {
			msg = l.failErr.Error()
		}
		l.mu.Unlock()
		wire = &jsonrpc.Error{Code: mcpwire.CodeUnavailable, Message: msg}
	}
	l.push(&jsonrpc.Response{ID: req.ID, Error: wire})
}

// cancelCall cancels the POST of a request the bridge gave up on.
func (l *httpLink) cancelCall(params json.RawMessage) {
	var p struct {
		RequestID any `json:"requestId"`
	}
	if json.Unmarshal(params, &p) != nil {
		return
	}
	id, err := jsonrpc.MakeID(p.RequestID)
	if err != nil {
		return
	}
	l.mu.Lock()
	call := l.calls[id]
	delete(l.calls, id)
	l.mu.Unlock()
	if call != nil {
		call.cancel()
	}
}

func (l *httpLink) protocolVersion() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.version
}

// startListen opens the standalone GET event stream of a 2025 connection.
func (l *httpLink) startListen() {
	l.mu.Lock()
	start := !l.listening
	l.listening = true
	l.mu.Unlock()
	if start {
		go l.listen()
	}
}

// listen holds the GET stream, reconnecting when the server ends it. A
// server that offers none (405, as the spec allows) is left alone.
func (l *httpLink) listen() {
	misses := 0
	for l.ctx.Err() == nil {
		events, again := l.listenOnce()
		if !again {
			return
		}
		if events {
			misses = 0
		} else if misses++; misses > 3 {
			l.log.Warn("the HTTP server keeps ending its event stream; list changes from it will not be heard")
			return
		}
		t := time.NewTimer(time.Duration(misses) * 250 * time.Millisecond)
		select {
		case <-t.C:
		case <-l.ctx.Done():
			t.Stop()
			return
		}
	}
}

// listenOnce reads the GET stream until it ends. It reports whether any
// event came and whether to connect again.
func (l *httpLink) listenOnce() (events, again bool) {
	req, err := http.NewRequestWithContext(l.ctx, http.MethodGet, l.url, nil)
	if err != nil {
		return false, false
	}
	req.Header.Set("Accept", "text/event-stream")
	if sid := l.conn.SessionID(); sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return false, false // headerTransport failed the link when it was the network
	}
	defer resp.Body.Close()
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		l.log.Info("the HTTP server offers no event stream; list changes from it will not be heard", "status", resp.StatusCode)
		return false, false
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), l.maxMsg+4096)
	var data bytes.Buffer
	name := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data.Len() > 0 && (name == "" || name == "message") {
				if msg, err := jsonrpc.DecodeMessage(data.Bytes()); err == nil {
					events = true
					l.receive(msg)
				} else {
					l.log.Warn("skipped an event that is not JSON-RPC", "err", err)
				}
			}
			data.Reset()
			name = ""
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		case strings.HasPrefix(line, "event:"):
			name = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		}
	}
	return events, true
}

// headerTransport adds the configured headers (credentials, usually) and
// the negotiated protocol version to every request, and turns failures that
// mean "the server is gone or refuses us" into the link's plain-words
// death. Header values are never logged or put in errors.
type headerTransport struct {
	base    http.RoundTripper
	headers map[string]string
	l       *httpLink
}

func (t *headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	for k, v := range t.headers {
		r.Header.Set(k, v)
	}
	if r.Header.Get("Mcp-Protocol-Version") == "" {
		if v := t.l.protocolVersion(); v != "" {
			r.Header.Set("Mcp-Protocol-Version", v)
		}
	}
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		if req.Context().Err() == nil {
			t.l.fail(t.l.unreachable(err))
		}
		return nil, err
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		t.l.fail(fmt.Errorf("mcp server %q at %s refused the request: HTTP %d %s (check \"headers\" in mcp.json: the API key or token is missing, wrong or expired)",
			t.l.name, t.l.display, resp.StatusCode, http.StatusText(resp.StatusCode)))
	case resp.StatusCode == http.StatusNotFound && r.Header.Get("Mcp-Session-Id") != "":
		t.l.fail(fmt.Errorf("mcp server %q at %s no longer knows the session (HTTP 404; it probably restarted)", t.l.name, t.l.display))
	}
	return resp, nil
}

// unreachable describes a request that did not reach the server.
func (l *httpLink) unreachable(err error) error {
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns):
		return fmt.Errorf("cannot reach mcp server %q at %s: DNS lookup of %q failed: %s", l.name, l.display, dns.Name, dns.Err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot reach mcp server %q at %s: connection refused (is the server running?)", l.name, l.display)
	default:
		return fmt.Errorf("cannot reach mcp server %q at %s: %v", l.name, l.display, err)
	}
}

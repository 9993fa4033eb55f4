//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The echo call every latency and throughput figure makes.
const (
	echoText       = "hello, bench"
	clientProtocol = "2025-11-25" // every client speaks the same era on every path
)

var echoArgs = map[string]any{"text": echoText}

// --- the go-sdk client: same library over stdio (floor) and HTTP ---

func sdkClient() *mcp.Client {
	return mcp.NewClient(&mcp.Implementation{Name: "tether-bench", Version: "1"}, nil)
}

// sdkStdio starts argv as a child and connects the go-sdk client to it.
func sdkStdio(ctx context.Context, argv []string) (*mcp.ClientSession, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cs, err := sdkClient().Connect(ctx, &mcp.CommandTransport{Command: cmd, TerminateDuration: time.Second},
		&mcp.ClientSessionOptions{ProtocolVersion: clientProtocol})
	if err != nil {
		return nil, fmt.Errorf("connect stdio %s: %w", argv[0], err)
	}
	return cs, nil
}

// sdkHTTP connects the go-sdk client over Streamable HTTP.
func sdkHTTP(ctx context.Context, url, token string) (*mcp.ClientSession, error) {
	hc := &http.Client{Transport: bearer{token, newTransport()}}
	tr := &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: hc, MaxRetries: -1}
	cs, err := sdkClient().Connect(ctx, tr, &mcp.ClientSessionOptions{ProtocolVersion: clientProtocol})
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", url, err)
	}
	return cs, nil
}

func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 256, 256
	return t
}

type bearer struct {
	tok  string
	base http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	if b.tok != "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+b.tok)
	}
	return b.base.RoundTrip(r)
}

func sdkEcho(cs *mcp.ClientSession) callFn {
	params := &mcp.CallToolParams{Name: "echo", Arguments: echoArgs}
	return func(ctx context.Context) error {
		res, err := cs.CallTool(ctx, params)
		if err != nil {
			return err
		}
		if res.IsError || len(res.Content) != 1 {
			return fmt.Errorf("echo: unexpected result %+v", res)
		}
		if tc, ok := res.Content[0].(*mcp.TextContent); !ok || tc.Text != echoText {
			return fmt.Errorf("echo: unexpected content %+v", res.Content[0])
		}
		return nil
	}
}

// --- the lean caller: hand-written JSON-RPC with no SDK ---

func echoRequest(id int64) []byte {
	b := make([]byte, 0, 128)
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"method":"tools/call","params":{"name":"echo","arguments":{"text":"`+echoText+`"}}}`...)
	return b
}

const (
	initRequest  = `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"` + clientProtocol + `","capabilities":{},"clientInfo":{"name":"lean","version":"1"}}}`
	initializedN = `{"jsonrpc":"2.0","method":"notifications/initialized"}`
)

var wantEcho = []byte(`"text":"` + echoText + `"`)

// checkEcho accepts an echo result, whatever the server's field order.
func checkEcho(resp []byte) error {
	if !bytes.Contains(resp, []byte(`"result"`)) || !bytes.Contains(resp, wantEcho) {
		return fmt.Errorf("unexpected answer %.300s", resp)
	}
	return nil
}

// leanHTTP POSTs JSON-RPC to one MCP endpoint over keep-alive connections
// (one per goroutine in flight) in one 2025-era session.
type leanHTTP struct {
	url, token, sid string
	hc              *http.Client
	next            atomic.Int64
}

func newLeanHTTP(ctx context.Context, url, token string) (*leanHTTP, error) {
	return newLeanHTTPWith(ctx, &http.Client{Transport: newTransport()}, url, token)
}

// newLeanHTTPWith opens a session using hc's connections (shared between
// sessions when hc is).
func newLeanHTTPWith(ctx context.Context, hc *http.Client, url, token string) (*leanHTTP, error) {
	l := &leanHTTP{url: url, token: token, hc: hc}
	resp, hdr, err := l.post(ctx, []byte(initRequest))
	if err != nil {
		return nil, fmt.Errorf("lean initialize %s: %w", url, err)
	}
	if !bytes.Contains(resp, []byte(`"protocolVersion"`)) {
		return nil, fmt.Errorf("lean initialize %s: %.300s", url, resp)
	}
	l.sid = hdr.Get("Mcp-Session-Id")
	if _, _, err := l.post(ctx, []byte(initializedN)); err != nil {
		return nil, fmt.Errorf("lean initialized %s: %w", url, err)
	}
	return l, nil
}

func (l *leanHTTP) post(ctx context.Context, body []byte) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if l.token != "" {
		req.Header.Set("Authorization", "Bearer "+l.token)
	}
	if l.sid != "" {
		req.Header.Set("Mcp-Session-Id", l.sid)
		req.Header.Set("Mcp-Protocol-Version", clientProtocol)
	}
	resp, err := l.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
		return nil, nil, fmt.Errorf("HTTP %d: %.300s", resp.StatusCode, b)
	}
	return b, resp.Header, nil
}

func (l *leanHTTP) call(ctx context.Context) error {
	b, _, err := l.post(ctx, echoRequest(l.next.Add(1)))
	if err != nil {
		return err
	}
	return checkEcho(b)
}

// leanStdio speaks JSON-RPC lines to a child over its pipes, with any
// number of calls in flight (a reader goroutine routes answers by id).
type leanStdio struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	wmu     sync.Mutex
	w       *bufio.Writer
	mu      sync.Mutex
	pending map[int64]chan []byte
	next    atomic.Int64
	readErr error
	dead    chan struct{}
}

func newLeanStdio(ctx context.Context, argv []string) (*leanStdio, error) {
	l := &leanStdio{cmd: exec.Command(argv[0], argv[1:]...), pending: map[int64]chan []byte{}, dead: make(chan struct{})}
	stdin, err := l.cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := l.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := l.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	l.stdin, l.w = stdin, bufio.NewWriterSize(stdin, 64<<10)
	go l.readLoop(stdout)
	resp, err := l.roundTrip(ctx, 0, []byte(initRequest))
	if err != nil {
		l.close()
		return nil, fmt.Errorf("lean initialize %s: %w", argv[0], err)
	}
	if !bytes.Contains(resp, []byte(`"protocolVersion"`)) {
		l.close()
		return nil, fmt.Errorf("lean initialize %s: %.300s", argv[0], resp)
	}
	if err := l.write([]byte(initializedN)); err != nil {
		l.close()
		return nil, err
	}
	l.next.Store(1)
	return l, nil
}

func (l *leanStdio) readLoop(r io.Reader) {
	br := bufio.NewReaderSize(r, 64<<10)
	defer close(l.dead)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 1 {
			if id, ok := peekID(line); ok {
				l.mu.Lock()
				ch := l.pending[id]
				delete(l.pending, id)
				l.mu.Unlock()
				if ch != nil {
					ch <- line
				}
			}
		}
		if err != nil {
			l.readErr = err
			return
		}
	}
}

// peekID finds the numeric id of a response line without decoding it.
func peekID(line []byte) (int64, bool) {
	i := bytes.Index(line, []byte(`"id":`))
	if i < 0 {
		return 0, false
	}
	rest := bytes.TrimLeft(line[i+5:], " ")
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	n, err := strconv.ParseInt(string(rest[:j]), 10, 64)
	return n, err == nil
}

func (l *leanStdio) write(msg []byte) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.w.Write(msg)
	l.w.WriteByte('\n')
	return l.w.Flush()
}

func (l *leanStdio) roundTrip(ctx context.Context, id int64, msg []byte) ([]byte, error) {
	ch := make(chan []byte, 1)
	l.mu.Lock()
	l.pending[id] = ch
	l.mu.Unlock()
	if err := l.write(msg); err != nil {
		return nil, fmt.Errorf("write: %w", err)
	}
	select {
	case b := <-ch:
		return b, nil
	case <-l.dead:
		return nil, fmt.Errorf("child stdout closed: %v", l.readErr)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *leanStdio) call(ctx context.Context) error {
	id := l.next.Add(1)
	b, err := l.roundTrip(ctx, id, echoRequest(id))
	if err != nil {
		return err
	}
	return checkEcho(b)
}

func (l *leanStdio) close() {
	l.stdin.Close()
	done := make(chan struct{})
	go func() { l.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		l.cmd.Process.Kill()
		<-done
	}
}

// closers collects cleanups of one section.
type closers []func()

func (c *closers) add(f func()) { *c = append(*c, f) }
func (c *closers) run() {
	for i := len(*c) - 1; i >= 0; i-- {
		(*c)[i]()
	}
	*c = nil
}

// errNotAvailable marks a figure the build under test cannot produce yet.
var errNotAvailable = errors.New("not available yet")

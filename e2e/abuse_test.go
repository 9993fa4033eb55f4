//go:build linux

package e2e

// The abuse half of the fault suite: what a stranger on the internet can
// try against a relay, each probe against the real tether-relay binary on
// loopback with a real bridge, each ending in a row of the table printed
// after the run:
//
//	probe · what happens · figure
//
// `go test ./e2e -run Abuse` runs them (CI does, in `make test`);
// TETHER_ABUSE_TABLE=FILE writes the table as Markdown for the README.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tether-dev/tether/internal/testbin"
)

// abuseRow is one line of the abuse table.
type abuseRow struct{ Probe, Outcome, Figure string }

func init() { afterRun = append(afterRun, printAbuseTable) }

var abuseTable struct {
	mu   sync.Mutex
	rows []abuseRow
}

// abuseReport logs a probe's figure and keeps it for the table.
func abuseReport(t *testing.T, probe, outcome, figure string) {
	t.Helper()
	t.Logf("%s: %s — %s", probe, outcome, figure)
	abuseTable.mu.Lock()
	abuseTable.rows = append(abuseTable.rows, abuseRow{probe, outcome, figure})
	abuseTable.mu.Unlock()
}

// printAbuseTable writes the table to stdout (and, with
// $TETHER_ABUSE_TABLE set, as Markdown to that file for the README).
func printAbuseTable() {
	abuseTable.mu.Lock()
	rows := slices.Clone(abuseTable.rows)
	abuseTable.mu.Unlock()
	if len(rows) == 0 {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| probe | what happens | figure |\n|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", r.Probe, r.Outcome, r.Figure)
	}
	fmt.Printf("\nAbuse suite (%s):\n%s", time.Now().UTC().Format("2006-01-02"), b.String())
	if p := os.Getenv("TETHER_ABUSE_TABLE"); p != "" {
		_ = os.WriteFile(p, []byte(b.String()), 0o644)
	}
}

// The limits the abuse relay runs with: small, so a probe crosses them in
// a fraction of a second.
const (
	abuseBodyTimeout = 2 * time.Second
	abuseConnsPerIP  = 64
	abuseMaxSessions = 20
	abuseMaxBody     = 1 << 20
)

// abuseFixture is a relay with small limits, alice's and bob's bridges,
// each with a test server that logs every request it receives.
type abuseFixture struct {
	r                      *relayProc
	aliceClient, bobClient string
	aliceCalls, bobCalls   string // the children's call logs
	aliceBridge, bobBridge *tetherd
}

func startAbuseFixture(t *testing.T) *abuseFixture {
	t.Helper()
	r := startRelayWith(t,
		"--body-timeout", abuseBodyTimeout.String(),
		"--max-conns-per-ip", strconv.Itoa(abuseConnsPerIP),
		"--max-sessions", strconv.Itoa(abuseMaxSessions),
		"--max-body", strconv.Itoa(abuseMaxBody),
		"--session-idle", "10m")
	f := &abuseFixture{r: r}
	srv := testbin.Build(t, "./internal/testservers/mcpserver")
	bridge := func(dev string) (*tetherd, string) {
		calls := filepath.Join(t.TempDir(), dev+"-calls.log")
		cfg := writeConfig(t, map[string]any{"test": map[string]any{"command": srv, "args": []string{"-call-log", calls}}})
		return startTetherd(t, r.token(t, dev, "bridge"), nil, "run", "--config", cfg, "--relay", r.url(), "--dev-id", dev), calls
	}
	f.aliceBridge, f.aliceCalls = bridge("alice")
	f.bobBridge, f.bobCalls = bridge("bob")
	f.aliceClient, f.bobClient = r.token(t, "alice", "client"), r.token(t, "bob", "client")
	r.waitServing(t, "alice", f.aliceClient, "test", 30*time.Second)
	r.waitServing(t, "bob", f.bobClient, "test", 30*time.Second)
	return f
}

// startRelayWith is startRelay with more serve flags.
func startRelayWith(t *testing.T, args ...string) *relayProc {
	t.Helper()
	r := &relayProc{
		bin:    testbin.Build(t, "./cmd/relay"),
		secret: filepath.Join(t.TempDir(), "secret"),
		addr:   freeAddr(t),
		args:   args,
	}
	r.start(t)
	return r
}

// TestAbuse runs the probes one after another against one relay (each
// probe leaves the relay as it found it; the figures are clearer without
// neighbours).
func TestAbuse(t *testing.T) {
	f := startAbuseFixture(t)
	t.Run("SlowBody", f.slowBody)
	t.Run("ConnFlood", f.connFlood)
	t.Run("SessionFlood", f.sessionFlood)
	t.Run("BigBody", f.bigBody)
	t.Run("OriginHost", f.originHost)
	t.Run("ForgedTokens", f.forgedTokens)
	t.Run("CrossDevFuzz", f.crossDevFuzz)
}

// ---- raw HTTP: the probes need requests no well-behaved client sends.

// rawHTTPConn speaks HTTP/1.1 over one kept-alive connection, writing the
// request target and headers exactly as given.
type rawHTTPConn struct {
	addr, local string // local: the source address to dial from ("" any)
	c           net.Conn
	br          *bufio.Reader
}

func (rc *rawHTTPConn) dial() error {
	d := net.Dialer{Timeout: 5 * time.Second}
	if rc.local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(rc.local)}
	}
	c, err := d.Dial("tcp", rc.addr)
	if err != nil {
		return err
	}
	rc.c, rc.br = c, bufio.NewReader(c)
	return nil
}

func (rc *rawHTTPConn) close() {
	if rc.c != nil {
		rc.c.Close()
		rc.c = nil
	}
}

// rawRequest is the bytes of one request: method, target as written, Host,
// headers in order, and a body with its Content-Length.
func rawRequest(method, target, host string, headers [][2]string, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, target, host)
	for _, h := range headers {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(body))
	b.Write(body)
	return b.Bytes()
}

// do sends req and reads the response and its body; the connection is
// dialled again when the last one was closed.
func (rc *rawHTTPConn) do(req []byte) (*http.Response, []byte, error) {
	for attempt := 0; ; attempt++ {
		if rc.c == nil {
			if err := rc.dial(); err != nil {
				return nil, nil, err
			}
		}
		_ = rc.c.SetDeadline(time.Now().Add(30 * time.Second))
		resp, body, err := rc.roundTrip(req)
		if err != nil {
			rc.close()
			if attempt == 0 {
				continue // a kept-alive connection the server had closed
			}
			return nil, nil, err
		}
		if resp.Close {
			rc.close()
		}
		return resp, body, nil
	}
}

func (rc *rawHTTPConn) roundTrip(req []byte) (*http.Response, []byte, error) {
	if _, err := rc.c.Write(req); err != nil {
		return nil, nil, err
	}
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body, err
}

// rpcBody is a JSON-RPC request.
func rpcBody(id int, method string, params any) []byte {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	return b
}

var initParams = map[string]any{"protocolVersion": sessionVersion, "capabilities": map[string]any{},
	"clientInfo": map[string]any{"name": "abuse", "version": "1"}}

// mcpHeaders are what a real client sends with a POST.
func mcpHeaders(tok, sid string) [][2]string {
	h := [][2]string{{"Content-Type", "application/json"}, {"Accept", "application/json, text/event-stream"}}
	if tok != "" {
		h = append(h, [2]string{"Authorization", "Bearer " + tok})
	}
	if sid != "" {
		h = append(h, [2]string{"Mcp-Session-Id", sid}, [2]string{"Mcp-Protocol-Version", sessionVersion})
	}
	return h
}

// initSession opens a 2025-era session on dev's test server and returns
// its id.
func (f *abuseFixture) initSession(t *testing.T, rc *rawHTTPConn, dev, tok string) string {
	t.Helper()
	resp, body, err := rc.do(rawRequest("POST", "/mcp/"+dev+"/test", f.r.addr, mcpHeaders(tok, ""), rpcBody(1, "initialize", initParams)))
	if err != nil {
		t.Fatalf("initialize: %v", err)
	}
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || sid == "" {
		t.Fatalf("initialize: %d, session %q: %s", resp.StatusCode, sid, body)
	}
	return sid
}

// echo calls the echo tool on a session and returns the status and body.
func (f *abuseFixture) echo(t *testing.T, rc *rawHTTPConn, dev, tok, sid, text string) (int, string) {
	t.Helper()
	resp, body, err := rc.do(rawRequest("POST", "/mcp/"+dev+"/test", f.r.addr, mcpHeaders(tok, sid),
		rpcBody(2, "tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": text}})))
	if err != nil {
		t.Fatalf("echo: %v", err)
	}
	return resp.StatusCode, string(body)
}

// ---- the probes

// slowBody: headers with a Content-Length, then nothing. An authorized
// request is cut when the body timeout runs out; an unauthorized one gets
// its 401 at once, its body never read.
func (f *abuseFixture) slowBody(t *testing.T) {
	wait := func(tok string, extra ...[2]string) (time.Duration, string) {
		c, err := net.Dial("tcp", f.r.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		head := rawRequest("POST", "/mcp/alice/test", f.r.addr, append(mcpHeaders(tok, ""), extra...), nil)
		head = bytes.Replace(head, []byte("Content-Length: 0"), []byte("Content-Length: 1000"), 1)
		start := time.Now()
		if _, err := c.Write(head); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(start.Add(abuseBodyTimeout + 10*time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		took := time.Since(start)
		switch {
		case err == nil:
			resp.Body.Close()
			return took, resp.Status
		case isTimeout(err):
			t.Fatalf("connection still open %v after the headers (body timeout %v)", took, abuseBodyTimeout)
		}
		return took, "closed (" + err.Error() + ")"
	}
	took, what := wait(f.aliceClient)
	if took < abuseBodyTimeout-100*time.Millisecond || took > abuseBodyTimeout+3*time.Second {
		t.Errorf("authorized slow body ended after %v (%s), want about the body timeout %v", took, what, abuseBodyTimeout)
	}
	abuseReport(t, "slow body (token, Content-Length 1000, no body)", "cut at --body-timeout ("+what+")",
		fmt.Sprintf("cut after %v with --body-timeout %v", took.Round(time.Millisecond), abuseBodyTimeout))
	took401, what401 := wait("")
	if !strings.HasPrefix(what401, "401") || took401 > time.Second {
		t.Errorf("unauthorized slow body: %s after %v, want 401 at once", what401, took401)
	}
	abuseReport(t, "slow body (no token)", "401 before the body is read",
		fmt.Sprintf("401 after %v", took401.Round(time.Millisecond)))
	took403, what403 := wait(f.aliceClient, [2]string{"Origin", "https://evil.example"})
	if !strings.HasPrefix(what403, "403") || took403 > time.Second {
		t.Errorf("foreign Origin with a slow body: %s after %v, want 403 at once", what403, took403)
	}
	abuseReport(t, "slow body (token, foreign Origin)", "403 before the body is read",
		fmt.Sprintf("403 after %v", took403.Round(time.Millisecond)))
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// connFlood: many idle connections from one address. The relay keeps
// --max-conns-per-ip of them and closes the rest on accept; a client from
// another address still gets its call through.
func (f *abuseFixture) connFlood(t *testing.T) {
	const n = 4 * abuseConnsPerIP
	const flooder = "127.0.0.3"
	pid := f.r.cmd.Process.Pid
	fdsBefore := readProc(pid).fds
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(flooder)}, Timeout: 5 * time.Second}
	for range n {
		c, err := d.Dial("tcp", f.r.addr)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		conns = append(conns, c)
	}
	// A refused connection reads EOF (closed on accept); a held one reads
	// nothing until the deadline, which is far inside the relay's 10 s
	// header timeout.
	deadline := time.Now().Add(2 * time.Second)
	var held, closed atomic.Int64
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			_ = c.SetReadDeadline(deadline)
			_, err := c.Read(make([]byte, 1))
			if isTimeout(err) {
				held.Add(1)
			} else {
				closed.Add(1)
			}
		})
	}
	// Meanwhile a real client from 127.0.0.1 makes a call.
	start := time.Now()
	cs := connect(t, context.Background(), f.r.mcpURL("alice", "test"), f.aliceClient, sessionVersion, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	got, err := callText(ctx, cs, "echo", map[string]any{"text": "through the flood"})
	cancel()
	realTook := time.Since(start)
	fdsDuring := readProc(pid).fds
	wg.Wait()
	if err != nil || got != "through the flood" {
		t.Fatalf("a real client's call during the flood: %q, %v", got, err)
	}
	if held.Load() != abuseConnsPerIP || closed.Load() != n-abuseConnsPerIP {
		t.Errorf("%d idle connections from one address: %d held, %d closed; want %d held", n, held.Load(), closed.Load(), abuseConnsPerIP)
	}
	if !strings.Contains(f.r.out.String(), "over the connection cap") {
		t.Errorf("the relay did not log the refused connections")
	}
	abuseReport(t, fmt.Sprintf("connection flood (%d idle connections, one address)", n),
		fmt.Sprintf("%d held (--max-conns-per-ip %d), the rest closed on accept; logged", held.Load(), abuseConnsPerIP),
		fmt.Sprintf("relay FDs %+d; a real client's connect + call took %v", fdsDuring-fdsBefore, realTook.Round(time.Millisecond)))
}

// sessionFlood: far more initializes than --max-sessions on one token.
// The least recently used idle sessions are evicted: exactly the limit
// stay alive, the newest ones, and the relay's memory stays flat.
func (f *abuseFixture) sessionFlood(t *testing.T) {
	const n = 5000
	const workers = 8
	tok := f.r.token(t, "alice", "client")
	pid := f.r.cmd.Process.Pid
	rssBefore := readProc(pid).rssKiB
	ids := make([]string, n)
	var next atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			rc := &rawHTTPConn{addr: f.r.addr}
			defer rc.close()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				resp, body, err := rc.do(rawRequest("POST", "/mcp/alice/test", f.r.addr, mcpHeaders(tok, ""), rpcBody(1, "initialize", initParams)))
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Errorf("initialize %d: %v %v %s", i, err, resp, body)
					return
				}
				ids[i] = resp.Header.Get("Mcp-Session-Id")
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	rssAfter := readProc(pid).rssKiB
	if t.Failed() {
		return
	}
	// Every session id is tried once with a ping; a ping on a live session
	// makes it recently used but evicts nobody.
	live := make([]bool, n)
	next.Store(0)
	for range workers {
		wg.Go(func() {
			rc := &rawHTTPConn{addr: f.r.addr}
			defer rc.close()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				resp, body, err := rc.do(rawRequest("POST", "/mcp/alice/test", f.r.addr, mcpHeaders(tok, ids[i]), rpcBody(3, "ping", nil)))
				switch {
				case err != nil:
					t.Errorf("ping %d: %v", i, err)
					return
				case resp.StatusCode == http.StatusOK:
					live[i] = true
				case resp.StatusCode != http.StatusNotFound:
					t.Errorf("ping on session %d: %d %s, want 200 or 404", i, resp.StatusCode, body)
				}
			}
		})
	}
	wg.Wait()
	nLive, newest := 0, 0
	for i, ok := range live {
		if ok {
			nLive++
			if i >= n-2*abuseMaxSessions { // the workers interleave the last few
				newest++
			}
		}
	}
	if nLive != abuseMaxSessions || newest != abuseMaxSessions {
		t.Errorf("%d initializes on one token: %d sessions alive (%d of them among the newest %d), want %d, all among the newest",
			n, nLive, newest, 2*abuseMaxSessions, abuseMaxSessions)
	}
	// Unbounded, 5,000 sessions held about 20 MiB (4 KiB each, measured
	// at 50,000 before the limit existed).
	growth := rssAfter - rssBefore
	if growth > 16<<10 {
		t.Errorf("relay RSS grew %d KiB over %d initializes", growth, n)
	}
	abuseReport(t, fmt.Sprintf("session flood (%d initializes, one token)", n),
		fmt.Sprintf("least recently used idle sessions evicted (their next request 404); %d alive (--max-sessions %d)", nLive, abuseMaxSessions),
		fmt.Sprintf("%.0f initializes/s; relay RSS %+d KiB", float64(n)/took.Seconds(), growth))
}

// bigBody: 16 POSTs announcing 48 MiB each, and one chunked stream of 48
// MiB. The announced ones get 413 before a body byte is sent; the chunked
// one is cut at --max-body; the relay's memory does not grow by the bodies.
func (f *abuseFixture) bigBody(t *testing.T) {
	const big = 48 << 20
	const parallel = 16
	pid := f.r.cmd.Process.Pid
	rssBefore := readProc(pid).rssKiB
	var wg sync.WaitGroup
	var worst atomic.Int64
	for range parallel {
		wg.Go(func() {
			c, err := net.Dial("tcp", f.r.addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			head := rawRequest("POST", "/mcp/alice/test", f.r.addr, mcpHeaders(f.aliceClient, ""), nil)
			head = bytes.Replace(head, []byte("Content-Length: 0"), []byte("Content-Length: "+strconv.Itoa(big)), 1)
			start := time.Now()
			if _, err := c.Write(head); err != nil {
				t.Error(err)
				return
			}
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Errorf("48 MiB announced: %v", err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			took := time.Since(start)
			for old := worst.Load(); int64(took) > old && !worst.CompareAndSwap(old, int64(took)); old = worst.Load() {
			}
			var rpc struct {
				JSONRPC string              `json:"jsonrpc"`
				Error   *struct{ Code int } `json:"error"`
			}
			if resp.StatusCode != http.StatusRequestEntityTooLarge || json.Unmarshal(body, &rpc) != nil || rpc.Error == nil {
				t.Errorf("48 MiB announced: %d %s, want 413 with a JSON-RPC error", resp.StatusCode, body)
			}
		})
	}
	wg.Wait()

	// Chunked: no length announced, so the relay reads until the limit.
	c, err := net.Dial("tcp", f.r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var head bytes.Buffer
	fmt.Fprintf(&head, "POST /mcp/alice/test HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n", f.r.addr)
	for _, h := range mcpHeaders(f.aliceClient, "") {
		fmt.Fprintf(&head, "%s: %s\r\n", h[0], h[1])
	}
	head.WriteString("\r\n")
	if _, err := c.Write(head.Bytes()); err != nil {
		t.Fatal(err)
	}
	chunk := append([]byte(fmt.Sprintf("%x\r\n", 64<<10)), append(bytes.Repeat([]byte("x"), 64<<10), "\r\n"...)...)
	writeErr := make(chan error, 1)
	go func() {
		_ = c.SetWriteDeadline(time.Now().Add(20 * time.Second))
		for sent := 0; sent < big; sent += 64 << 10 {
			if _, err := c.Write(chunk); err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	}()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("chunked 48 MiB: %v", err)
	}
	resp.Body.Close()
	c.Close() // ends the writer if the relay left the connection open
	<-writeErr
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked 48 MiB: %d, want 413", resp.StatusCode)
	}
	growth := readProc(pid).rssKiB - rssBefore
	// The bodies were 17 × 48 MiB; holding one would show.
	if growth > 16<<10 {
		t.Errorf("relay RSS grew %d KiB over %d bodies of 48 MiB", growth, parallel+1)
	}
	abuseReport(t, fmt.Sprintf("big bodies (%d × 48 MiB announced, 1 × 48 MiB chunked)", parallel),
		fmt.Sprintf("413 with a JSON-RPC error before the body is read; chunked cut at --max-body %d KiB", abuseMaxBody>>10),
		fmt.Sprintf("slowest 413 in %v; relay RSS %+d KiB", time.Duration(worst.Load()).Round(time.Millisecond), growth))
}

// originHost: a browser page on another origin (DNS rebinding, CSRF) and a
// Host that is no name of the relay.
func (f *abuseFixture) originHost(t *testing.T) {
	rc := &rawHTTPConn{addr: f.r.addr}
	defer rc.close()
	sid := f.initSession(t, rc, "alice", f.aliceClient)
	try := func(host, text string, extra ...[2]string) int {
		t.Helper()
		h := append(mcpHeaders(f.aliceClient, sid), extra...)
		resp, _, err := rc.do(rawRequest("POST", "/mcp/alice/test", host, h,
			rpcBody(2, "tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": text}})))
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode
	}
	if got := try(f.r.addr, "origin-control"); got != http.StatusOK {
		t.Fatalf("control call without Origin: %d, want 200", got)
	}
	origins := []string{"https://evil.example", "null", "http://" + f.r.addr + ".evil.example", "http://localhost.evil.example"}
	for _, o := range origins {
		if got := try(f.r.addr, "origin-probe", [2]string{"Origin", o}); got != http.StatusForbidden {
			t.Errorf("Origin %s: %d, want 403", o, got)
		}
	}
	hosts := []string{"evil.example", "evil.example:443", "relay.evil.example", "localhost.evil.example"}
	for _, h := range hosts {
		if got := try(h, "origin-probe"); got != http.StatusMisdirectedRequest {
			t.Errorf("Host %s: %d, want 421", h, got)
		}
	}
	if n := len(callLines(t, f.aliceCalls, "origin-control")); n != 1 {
		t.Errorf("alice's server logged the control call %d times, want 1", n)
	}
	if n := len(callLines(t, f.aliceCalls, "origin-probe")); n != 0 {
		t.Errorf("%d refused calls reached alice's server", n)
	}
	abuseReport(t, "foreign Origin / wrong Host", "403 / 421, nothing reaches the bridge",
		fmt.Sprintf("%d origins → 403, %d hosts → 421", len(origins), len(hosts)))
}

// forgedTokens: tokens a stranger can make, or an old one revoked with
// `tether-relay token revoke`. All 401.
func (f *abuseFixture) forgedTokens(t *testing.T) {
	raw, err := os.ReadFile(f.r.secret)
	if err != nil {
		t.Fatal(err)
	}
	secret := bytes.TrimSpace(raw)
	now := time.Now()
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"sub": "dev:alice", "scope": []string{"client"}, "iss": "tether-relay", "aud": []string{"tether-relay"},
			"jti": fmt.Sprintf("forged-%d", now.UnixNano()), "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		if mod != nil {
			mod(c)
		}
		return c
	}
	sign := func(m jwt.SigningMethod, key any, c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// The control: a token made here with the relay's secret works, so
	// each forgery below fails for its one flaw.
	control := sign(jwt.SigningMethodHS256, secret, claims(nil))
	valid := f.aliceClient
	parts := strings.Split(valid, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tamperedPayload := bytes.Replace(payload, []byte(`"dev:alice"`), []byte(`"dev:alicf"`), 1)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(tamperedPayload) + "." + parts[2]

	forged := []struct{ name, tok string }{
		{"alg none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil))},
		{"HS384 with the relay's secret", sign(jwt.SigningMethodHS384, secret, claims(nil))},
		{"HS512 with the relay's secret", sign(jwt.SigningMethodHS512, secret, claims(nil))},
		{"wrong secret", sign(jwt.SigningMethodHS256, []byte("not the relay's secret, but 32+ bytes long"), claims(nil))},
		{"tampered payload", tampered},
		{"signature cut", parts[0] + "." + parts[1] + "."},
		{"expired", sign(jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) {
			c["iat"], c["exp"] = now.Add(-2*time.Hour).Unix(), now.Add(-time.Hour).Unix()
		}))},
		{"no exp", sign(jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { delete(c, "exp") }))},
		{"future iat", sign(jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Hour).Unix() }))},
		{"future nbf", sign(jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() }))},
		{"wrong aud", sign(jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["aud"] = []string{"https://evil.example"} }))},
		{"wrong iss", sign(jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["iss"] = "evil" }))},
		{"sub not dev:<id>", sign(jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["sub"] = "alice" }))},
	}
	rc := &rawHTTPConn{addr: f.r.addr}
	defer rc.close()
	status := func(tok, target string) (int, string) {
		t.Helper()
		resp, body, err := rc.do(rawRequest("POST", target, f.r.addr, mcpHeaders(tok, ""), rpcBody(1, "initialize", initParams)))
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(body)
	}
	if got, body := status(control, "/mcp/alice/test"); got != http.StatusOK {
		t.Fatalf("control token signed here: %d %s, want 200", got, body)
	}
	for _, fg := range forged {
		if got, body := status(fg.tok, "/mcp/alice/test"); got != http.StatusUnauthorized {
			t.Errorf("%s: %d %s, want 401", fg.name, got, body)
		}
	}
	// A token in the query is no bearer token.
	if got, _ := status("", "/mcp/alice/test?access_token="+valid); got != http.StatusUnauthorized {
		t.Errorf("token in the query: %d, want 401", got)
	}

	// Revoked with the CLI: refused from the relay's next request.
	tok := f.r.token(t, "alice", "client")
	if got, body := status(tok, "/mcp/alice/test"); got != http.StatusOK {
		t.Fatalf("fresh token before revoking: %d %s", got, body)
	}
	var jc struct {
		ID string `json:"jti"`
	}
	p2, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err := json.Unmarshal(p2, &jc); err != nil || jc.ID == "" {
		t.Fatalf("token has no jti: %v %s", err, p2)
	}
	out, err := exec.Command(f.r.bin, "token", "revoke", "--secret-file", f.r.secret, "--jti", jc.ID).CombinedOutput()
	if err != nil {
		t.Fatalf("token revoke: %v\n%s", err, out)
	}
	// The CLI writes the relay's store; the running relay reads new
	// revocations from it every second (relay/server/revocations.go), so
	// the refusal comes within one poll. Await it on real requests.
	revokedAt := time.Now()
	var got int
	var body string
	for {
		got, body = status(tok, "/mcp/alice/test")
		if got == http.StatusUnauthorized {
			break
		}
		if got != http.StatusOK || time.Since(revokedAt) > 5*time.Second {
			t.Fatalf("revoked token %v after `token revoke`: %d %s, want 401", time.Since(revokedAt).Round(time.Millisecond), got, body)
		}
	}
	firstRefusal := time.Since(revokedAt)
	if firstRefusal > 2500*time.Millisecond {
		t.Errorf("revoked token first refused %v after `token revoke`, want within the 1 s poll (+ slack)", firstRefusal)
	}
	abuseReport(t, "forged and revoked tokens", "401",
		fmt.Sprintf("%d forgeries + token in query + revoked: all 401 (revoked refused %v after `token revoke` returned)",
			len(forged), firstRefusal.Round(time.Millisecond)))
}

// crossDevFuzz: 10,000 requests with alice's token that try to reach bob:
// every spelling of path, dev and server a proxy or router might treat
// alike, bob's session id, forwarding headers. None may reach bob's child
// (it logs every request it gets); some reach alice's, as they should.
func (f *abuseFixture) crossDevFuzz(t *testing.T) {
	const n = 10000
	const workers = 8
	seed := uint64(20261203)
	if s := os.Getenv("TETHER_ABUSE_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("cross-dev fuzz seed %d (TETHER_ABUSE_SEED=%d to repeat)", seed, seed)

	setup := &rawHTTPConn{addr: f.r.addr}
	defer setup.close()
	bobSID := f.initSession(t, setup, "bob", f.bobClient)
	aliceSID := f.initSession(t, setup, "alice", f.aliceClient)
	// The control: bob's own call reaches bob's child, so the log counts.
	if code, body := f.echo(t, setup, "bob", f.bobClient, bobSID, "bob-control"); code != http.StatusOK || !strings.Contains(body, "bob-control") {
		t.Fatalf("bob's control call: %d %s", code, body)
	}
	if got := len(callLines(t, f.bobCalls, "bob-control")); got != 1 {
		t.Fatalf("bob's child logged his control call %d times, want 1", got)
	}
	bobBefore := len(callLines(t, f.bobCalls, "tools/call"))

	devs := []string{"bob", "BOB", "Bob", "%62ob", "b%6Fb", "%62%6f%62", "%2562ob", "bob%00", "bob%20", "bob.", "bob%2e",
		"b\u043eb", "ｂｏｂ", "bob\u200b", "%E2%80%8Bbob", "bob;alice", "bob%3Balice", "alice%2F..%2Fbob", "alice%2f%2e%2e%2fbob",
		"alice/../bob", "alice/./../bob", "./bob", "../mcp/bob", "alice", "ALICE", "alice%00bob"}
	servers := []string{"test", "TEST", "t%65st", "test/", "test//", "test/.", "test/..", "test%2F", "test/../test", "test?dev=bob", "test#bob", "ｔest"}
	prefixes := []string{"/mcp/", "//mcp/", "/mcp//", "/MCP/", "/%6dcp/", "/./mcp/", "/x/../mcp/", "/mcp/./", "/mcp/alice/../"}
	targets := func(r *rand.Rand) string {
		p := prefixes[r.IntN(len(prefixes))] + devs[r.IntN(len(devs))] + "/" + servers[r.IntN(len(servers))]
		if r.IntN(8) == 0 {
			p = "http://" + f.r.addr + p // absolute-form, as to a proxy
		}
		return p
	}
	headerSets := func(r *rand.Rand) [][2]string {
		var h [][2]string
		switch r.IntN(4) {
		case 0:
			h = append(h, [2]string{"Mcp-Session-Id", bobSID}, [2]string{"Mcp-Protocol-Version", sessionVersion})
		case 1:
			h = append(h, [2]string{"Mcp-Session-Id", aliceSID}, [2]string{"Mcp-Protocol-Version", sessionVersion})
		case 2:
			h = append(h, [2]string{"Mcp-Protocol-Version", "2026-07-28"}) // stateless
		}
		fwd := [][2]string{{"X-Forwarded-For", "10.0.0.1"}, {"X-Forwarded-Host", "bob.example"}, {"X-Forwarded-Prefix", "/mcp/bob"},
			{"X-Original-URL", "/mcp/bob/test"}, {"X-Rewrite-URL", "/mcp/bob/test"}, {"Forwarded", "for=10.0.0.1;host=bob"},
			{"X-Forwarded-Proto", "https"}, {"X-Dev-Id", "bob"}, {"Mcp-Session-Id", bobSID}}
		for range r.IntN(3) {
			h = append(h, fwd[r.IntN(len(fwd))])
		}
		return h
	}
	var reachedAlice, statuses sync.Map
	var next, redirects atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			rc := &rawHTTPConn{addr: f.r.addr}
			defer rc.close()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				// A generator per request: request i is the same in every
				// run with this seed, whichever worker sends it.
				r := rand.New(rand.NewPCG(seed, uint64(i)))
				marker := fmt.Sprintf("fuzz-%d", i)
				params := map[string]any{"name": "echo", "arguments": map[string]any{"text": marker}}
				if r.IntN(4) == 0 {
					params["_meta"] = map[string]any{"io.modelcontextprotocol/protocolVersion": "2026-07-28", "dev": "bob", "server": "bob/test"}
				}
				method := "POST"
				target := targets(r)
				headers := append(mcpHeaders(f.aliceClient, ""), headerSets(r)...)
				if r.IntN(10) == 0 {
					// Ending bob's session with its id (alice's own stays,
					// so her spellings keep getting through).
					method = "DELETE"
					headers = append(mcpHeaders(f.aliceClient, bobSID), headerSets(r)...)
				}
				body := rpcBody(i, "tools/call", params)
				resp, answer, err := rc.do(rawRequest(method, target, f.r.addr, headers, body))
				// A redirect (net/http cleans paths with 301) is followed
				// once with the same method, body and headers: the worst a
				// client could do with it.
				if err == nil && resp.StatusCode/100 == 3 {
					if loc := resp.Header.Get("Location"); loc != "" {
						redirects.Add(1)
						resp, answer, err = rc.do(rawRequest(method, loc, f.r.addr, headers, body))
					}
				}
				if err != nil {
					t.Errorf("request %d (%s %s): %v", i, method, target, err)
					return
				}
				v, _ := statuses.LoadOrStore(resp.StatusCode, new(atomic.Int64))
				v.(*atomic.Int64).Add(1)
				if resp.StatusCode == http.StatusOK && bytes.Contains(answer, []byte(`"`+marker+`"`)) {
					reachedAlice.Store(i, true) // echoed: a call alice's server answered
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)

	// bob's child is read after alice's calls all returned: a call that
	// reached it was logged before its answer went back.
	if leaked := callLines(t, f.bobCalls, "fuzz-"); len(leaked) > 0 {
		t.Errorf("%d fuzzed requests with alice's token reached bob's server (seed %d); first: %s", len(leaked), seed, leaked[0])
	}
	bobAfter := len(callLines(t, f.bobCalls, "tools/call"))
	if bobAfter != bobBefore {
		t.Errorf("bob's server got %d tools/call during the fuzz, want 0", bobAfter-bobBefore)
	}
	// bob's session survived alice's DELETEs with its id.
	if code, body := f.echo(t, setup, "bob", f.bobClient, bobSID, "bob-after"); code != http.StatusOK || !strings.Contains(body, "bob-after") {
		t.Errorf("bob's session after the fuzz: %d %s", code, body)
	}
	nAlice := 0
	reachedAlice.Range(func(any, any) bool { nAlice++; return true })
	if got := len(callLines(t, f.aliceCalls, "fuzz-")); got != nAlice || nAlice == 0 {
		t.Errorf("alice's server logged %d fuzzed calls, %d were answered by it; want the same, and some", got, nAlice)
	}
	var dist []string
	statuses.Range(func(k, v any) bool {
		dist = append(dist, fmt.Sprintf("%d×%d", k, v.(*atomic.Int64).Load()))
		return true
	})
	slices.Sort(dist)
	abuseReport(t, fmt.Sprintf("cross-dev fuzz (%d requests with alice's token, seed %d)", n, seed),
		"0 reach bob's server; bob's session survives",
		fmt.Sprintf("0 at bob, %d at alice (the spellings that name her), %d redirects followed; %s; %.0f req/s",
			nAlice, redirects.Load(), strings.Join(dist, " "), float64(n)/took.Seconds()))
}

// TestAbuseBurst: one client token sends requests flat out against a
// relay with --client-rate 50. Beyond the burst (twice the rate) they get
// 429 with Retry-After and a JSON-RPC error body.
func TestAbuseBurst(t *testing.T) {
	const rateLimit = 50
	const n = 2000
	r := startRelayWith(t, "--client-rate", strconv.Itoa(rateLimit), "--bridge-wait", "0")
	tok := r.token(t, "alice", "client")
	var next, refused, admitted atomic.Int64
	var sample atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range 8 {
		wg.Go(func() {
			rc := &rawHTTPConn{addr: r.addr}
			defer rc.close()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				resp, body, err := rc.do(rawRequest("POST", "/mcp/alice/test", r.addr, mcpHeaders(tok, ""), rpcBody(i, "initialize", initParams)))
				if err != nil {
					t.Errorf("request %d: %v", i, err)
					return
				}
				switch resp.StatusCode {
				case http.StatusTooManyRequests:
					refused.Add(1)
					sample.CompareAndSwap(nil, [2]string{resp.Header.Get("Retry-After"), string(body)})
				case http.StatusServiceUnavailable: // admitted; no bridge behind it
					admitted.Add(1)
				default:
					t.Errorf("request %d: %d %s, want 429 or 503", i, resp.StatusCode, body)
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	// The bucket holds 2×rate and refills at rate per second.
	maxAdmitted := int64(2*rateLimit + rateLimit*took.Seconds() + 1)
	if admitted.Load() < 2*rateLimit || admitted.Load() > maxAdmitted {
		t.Errorf("%d of %d admitted in %v, want between %d and %d", admitted.Load(), n, took, 2*rateLimit, maxAdmitted)
	}
	s, _ := sample.Load().([2]string)
	var rpc struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if ra, err := strconv.Atoi(s[0]); err != nil || ra < 1 {
		t.Errorf("429 with Retry-After %q, want whole seconds ≥ 1", s[0])
	}
	if err := json.Unmarshal([]byte(s[1]), &rpc); err != nil || rpc.JSONRPC != "2.0" || rpc.Error == nil || len(rpc.ID) == 0 || string(rpc.ID) == "null" {
		t.Errorf("429 body %q, want a JSON-RPC error with the request's id", s[1])
	}
	abuseReport(t, fmt.Sprintf("request burst (%d requests, one token, --client-rate %d)", n, rateLimit),
		fmt.Sprintf("429 with Retry-After: %s and a JSON-RPC error", s[0]),
		fmt.Sprintf("%d admitted, %d refused in %v (%.0f req/s offered)", admitted.Load(), refused.Load(), took.Round(time.Millisecond), float64(n)/took.Seconds()))
}

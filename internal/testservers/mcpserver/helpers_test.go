package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tether-dev/tether/internal/testbin"
)

const (
	v2025 = "2025-11-25"
	v2026 = "2026-07-28"
	// builtinTools is the number of tools mcpserver has without -extra-tools.
	builtinTools = 17
)

func serverBin(t *testing.T) string {
	return testbin.Build(t, "github.com/tether-dev/tether/internal/testservers/mcpserver")
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// connect starts mcpserver with args and connects a go-sdk client asking for
// protocol version (v2025 or v2026).
func connect(t *testing.T, version string, opts *mcp.ClientOptions, args ...string) *mcp.ClientSession {
	t.Helper()
	cs, err := tryConnect(t, version, opts, args...)
	if err != nil {
		t.Fatalf("connect %s %v: %v", version, args, err)
	}
	return cs
}

func tryConnect(t *testing.T, version string, opts *mcp.ClientOptions, args ...string) (*mcp.ClientSession, error) {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "tether-test", Version: "0.1"}, opts)
	tr := &mcp.CommandTransport{Command: exec.Command(serverBin(t), args...), TerminateDuration: time.Second}
	cs, err := client.Connect(testCtx(t), tr, &mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs, nil
}

// callText calls a tool and returns its single text content.
func callText(t *testing.T, cs *mcp.ClientSession, name string, args any) string {
	t.Helper()
	res, err := cs.CallTool(testCtx(t), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("call %s: %v", name, err)
	}
	if res.IsError {
		t.Fatalf("call %s: tool error: %s", name, contentText(res))
	}
	return contentText(res)
}

func contentText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// wire records every newline-delimited frame crossing the child's stdio,
// exactly as written, so tests can assert on (and print) the wire format.
type wire struct {
	mu    sync.Mutex
	lines []string // prefixed "C>S " (client to server) or "S>C "
}

type wireWriter struct {
	w   *wire
	dir string
	buf []byte
}

func (ww *wireWriter) Write(p []byte) (int, error) {
	ww.w.mu.Lock()
	defer ww.w.mu.Unlock()
	ww.buf = append(ww.buf, p...)
	for {
		i := bytes.IndexByte(ww.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		ww.w.lines = append(ww.w.lines, ww.dir+string(ww.buf[:i]))
		ww.buf = ww.buf[i+1:]
	}
}

func (w *wire) snapshot() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.lines...)
}

type teeReadCloser struct {
	io.Reader
	io.Closer
}

type teeWriteCloser struct {
	io.Writer
	io.Closer
}

// connectWire is connect through a tee that records the stdio wire; the
// client exposes the given roots.
func connectWire(t *testing.T, version string, opts *mcp.ClientOptions, roots ...string) (*mcp.ClientSession, *wire) {
	t.Helper()
	cmd := exec.Command(serverBin(t))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	w := &wire{}
	tr := &mcp.IOTransport{
		Reader: teeReadCloser{io.TeeReader(stdout, &wireWriter{w: w, dir: "S>C "}), stdout},
		Writer: teeWriteCloser{io.MultiWriter(&wireWriter{w: w, dir: "C>S "}, stdin), stdin},
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "tether-test", Version: "0.1"}, opts)
	for _, r := range roots {
		client.AddRoots(&mcp.Root{URI: r})
	}
	cs, err := client.Connect(testCtx(t), tr, &mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs, w
}

// rawProc drives the server with hand-written JSON lines.
type rawProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // stdout lines
	stderr *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startRaw(t *testing.T, bin string, args ...string) *rawProc {
	t.Helper()
	p := &rawProc{t: t, cmd: exec.Command(bin, args...), lines: make(chan string, 64), stderr: &lockedBuffer{}}
	p.cmd.Stderr = p.stderr
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.lines)
		br := bufio.NewReader(stdout)
		for {
			line, err := br.ReadString('\n')
			if line != "" {
				p.lines <- strings.TrimSuffix(line, "\n")
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); _ = p.cmd.Wait() })
	return p
}

func (p *rawProc) send(line string) {
	p.t.Helper()
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		p.t.Fatalf("write %q: %v", line, err)
	}
}

// recv returns the next stdout line; ok is false at EOF.
func (p *rawProc) recv() (string, bool) {
	p.t.Helper()
	select {
	case l, ok := <-p.lines:
		return l, ok
	case <-time.After(10 * time.Second):
		p.t.Fatalf("no stdout line within 10s; stderr: %s", p.stderr.String())
		return "", false
	}
}

// response is a decoded JSON-RPC response line.
type response struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// recvResponse skips notifications and returns the next response.
func (p *rawProc) recvResponse() response {
	p.t.Helper()
	for {
		l, ok := p.recv()
		if !ok {
			p.t.Fatalf("stdout closed; stderr: %s", p.stderr.String())
		}
		var r response
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			p.t.Fatalf("bad JSON line %q: %v", l, err)
		}
		if len(r.ID) > 0 {
			return r
		}
	}
}

const meta2026 = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}`

const init2025 = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/testbin"
)

// session runs the built rawecho binary and exchanges JSON lines with it.
type session struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

func start(t *testing.T) *session {
	t.Helper()
	bin := testbin.Build(t, "github.com/tether-dev/tether/internal/testservers/rawecho")
	s := &session{t: t, cmd: exec.Command(bin), lines: make(chan string, 16)}
	var err error
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.cmd.Process.Kill(); _ = s.cmd.Wait() })
	go func() {
		defer close(s.lines)
		br := bufio.NewReader(stdout)
		for {
			l, err := br.ReadString('\n')
			if l != "" {
				s.lines <- l
			}
			if err != nil {
				return
			}
		}
	}()
	return s
}

func (s *session) roundTrip(req string) map[string]any {
	s.t.Helper()
	if _, err := io.WriteString(s.stdin, req+"\n"); err != nil {
		s.t.Fatal(err)
	}
	select {
	case l, ok := <-s.lines:
		if !ok {
			s.t.Fatal("stdout closed")
		}
		if !strings.HasSuffix(l, "\n") || strings.Count(l, "\n") != 1 {
			s.t.Fatalf("response is not one newline-terminated line: %q", l)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			s.t.Fatalf("response %q: %v", l, err)
		}
		return m
	case <-time.After(10 * time.Second):
		s.t.Fatalf("no response to %s", req)
		return nil
	}
}

func TestRawEchoProtocol(t *testing.T) {
	s := start(t)
	init := s.roundTrip(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	want := map[string]any{"jsonrpc": "2.0", "id": 1.0, "result": map[string]any{
		"protocolVersion": "2025-06-18",
		"capabilities":    map[string]any{"tools": map[string]any{}},
		"serverInfo":      map[string]any{"name": "rawecho", "version": "1"},
	}}
	assertJSON(t, init, want)

	// A notification gets no answer: the next line must be the ping's.
	if _, err := io.WriteString(s.stdin, `{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n"); err != nil {
		t.Fatal(err)
	}
	assertJSON(t, s.roundTrip(`{"jsonrpc":"2.0","id":"p","method":"ping"}`),
		map[string]any{"jsonrpc": "2.0", "id": "p", "result": map[string]any{}})

	list := s.roundTrip(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
	tools := list["result"].(map[string]any)["tools"].([]any)
	if len(tools) != 1 || tools[0].(map[string]any)["name"] != "echo" {
		t.Fatalf("tools/list = %v", list)
	}

	text := "quote\" back\\slash \n\t\u0001 ünïcode ✓"
	args, _ := json.Marshal(map[string]any{"name": "echo", "arguments": map[string]any{"text": text}})
	assertJSON(t, s.roundTrip(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":`+string(args)+`}`),
		map[string]any{"jsonrpc": "2.0", "id": 3.0, "result": map[string]any{
			"content": []any{map[string]any{"type": "text", "text": text}},
		}})

	errResp := s.roundTrip(`{"jsonrpc":"2.0","id":4,"method":"server/discover","params":{}}`)
	if code := errResp["error"].(map[string]any)["code"]; code != -32601.0 {
		t.Fatalf("server/discover error code = %v", code)
	}
}

// TestRawEchoLongLine checks there is no 64 KiB line limit either way.
func TestRawEchoLongLine(t *testing.T) {
	s := start(t)
	text := strings.Repeat("abcdefgh", 1<<17) // 1 MiB
	resp := s.roundTrip(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + text + `"}}}`)
	got := resp["result"].(map[string]any)["content"].([]any)[0].(map[string]any)["text"]
	if got != text {
		t.Fatalf("long echo mismatch (len %d)", len(got.(string)))
	}
}

func TestRawEchoExitsOnEOF(t *testing.T) {
	s := start(t)
	s.roundTrip(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)
	if err := s.stdin.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("exit after EOF: %v", err)
	}
}

// TestServeInProcess covers serve directly, including a line longer than the
// reader's buffer and the one-write-per-message framing.
func TestServeInProcess(t *testing.T) {
	text := strings.Repeat("z", 200<<10)
	in := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + text + `"}}}` + "\n" +
		`{"jsonrpc":"2.0","id":8,"method":"nope"}` + "\n"
	var out bytes.Buffer
	if err := serve(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d output lines, want 2", len(lines))
	}
	if want := `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"` + text + `"}]}}`; lines[0] != want {
		t.Fatalf("echo line mismatch (len %d vs %d)", len(lines[0]), len(want))
	}
	if want := `{"jsonrpc":"2.0","id":8,"error":{"code":-32601,"message":"method not found"}}`; lines[1] != want {
		t.Fatalf("got %s", lines[1])
	}
}

// BenchmarkServe measures one echo round trip through serve, in process.
func BenchmarkServe(b *testing.B) {
	line := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello world"}}}` + "\n")
	in := bytes.Repeat(line, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	if err := serve(bytes.NewReader(in), io.Discard); err != nil {
		b.Fatal(err)
	}
}

func assertJSON(t *testing.T, got, want map[string]any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if !bytes.Equal(g, w) {
		t.Fatalf("got  %s\nwant %s", g, w)
	}
}

// BenchmarkProcessRoundTrip measures one echo round trip to the child
// process over its stdio pipes: the floor any stdio bridge adds to.
func BenchmarkProcessRoundTrip(b *testing.B) {
	bin := testbin.Build(b, "github.com/tether-dev/tether/internal/testservers/rawecho")
	cmd := exec.Command(bin)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = stdin.Close(); _ = cmd.Wait() }()
	br := bufio.NewReader(stdout)
	req := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello world"}}}` + "\n")
	b.ResetTimer()
	for range b.N {
		if _, err := stdin.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := br.ReadSlice('\n'); err != nil {
			b.Fatal(err)
		}
	}
}

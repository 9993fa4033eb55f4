package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tether-dev/tether/internal/testservers/schema"
)

var eras = []string{v2025, v2026}

func TestEchoBothEras(t *testing.T) {
	for _, v := range eras {
		t.Run(v, func(t *testing.T) {
			cs := connect(t, v, nil)
			if got := cs.InitializeResult().ProtocolVersion; got != v {
				t.Fatalf("negotiated %q, want %q", got, v)
			}
			if got := callText(t, cs, "echo", map[string]any{"text": "héllo\nworld"}); got != "héllo\nworld" {
				t.Fatalf("echo = %q", got)
			}
			if got := callText(t, cs, "whoami", map[string]any{}); got != "client=tether-test" {
				t.Fatalf("whoami = %q", got)
			}
		})
	}
}

func TestPagination(t *testing.T) {
	for _, v := range eras {
		t.Run(v, func(t *testing.T) {
			cs := connect(t, v, nil, "-extra-tools", "30", "-page-size", "7")
			ctx := testCtx(t)
			first, err := cs.ListTools(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(first.Tools) != 7 || first.NextCursor == "" {
				t.Fatalf("first page: %d tools, nextCursor %q; want 7 and a cursor", len(first.Tools), first.NextCursor)
			}
			seen := map[string]bool{}
			for tool, err := range cs.Tools(ctx, nil) {
				if err != nil {
					t.Fatal(err)
				}
				if seen[tool.Name] {
					t.Fatalf("tool %s listed twice", tool.Name)
				}
				seen[tool.Name] = true
			}
			if len(seen) != 30+builtinTools {
				t.Fatalf("saw %d tools, want %d", len(seen), 30+builtinTools)
			}
			for i := range 30 {
				if name := fmt.Sprintf("extra_%03d", i); !seen[name] {
					t.Fatalf("missing %s", name)
				}
			}
		})
	}
}

func TestEraModesWithSDKClient(t *testing.T) {
	cases := []struct {
		era, client, want string // want "" means Connect must fail
	}{
		{"both", v2026, v2026},
		{"both", v2025, v2025},
		{"legacy", v2026, v2025}, // discover rejected, the client falls back to initialize
		{"legacy", v2025, v2025},
		{"modern", v2026, v2026},
		{"modern", v2025, ""},
	}
	for _, c := range cases {
		t.Run(c.era+"/"+c.client, func(t *testing.T) {
			cs, err := tryConnect(t, c.client, nil, "-era", c.era)
			if c.want == "" {
				if err == nil {
					t.Fatalf("connect succeeded (version %s), want failure", cs.InitializeResult().ProtocolVersion)
				}
				return
			}
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			if got := cs.InitializeResult().ProtocolVersion; got != c.want {
				t.Fatalf("negotiated %q, want %q", got, c.want)
			}
			if got := callText(t, cs, "echo", map[string]any{"text": "x"}); got != "x" {
				t.Fatalf("echo = %q", got)
			}
		})
	}
}

func TestEraModesRaw(t *testing.T) {
	discover := `{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{` + meta2026 + `}}`
	cases := []struct {
		era, line string
		wantCode  int // 0: success
	}{
		{"legacy", discover, -32601},
		{"both", discover, 0},
		{"modern", discover, 0},
		{"modern", init2025, -32601},
		{"both", init2025, 0},
		{"legacy", init2025, 0},
	}
	for _, c := range cases {
		method := "discover"
		if c.line == init2025 {
			method = "initialize"
		}
		t.Run(c.era+"/"+method, func(t *testing.T) {
			p := startRaw(t, serverBin(t), "-era", c.era)
			p.send(c.line)
			r := p.recvResponse()
			switch {
			case c.wantCode == 0 && r.Error != nil:
				t.Fatalf("got error %+v, want success", *r.Error)
			case c.wantCode != 0 && (r.Error == nil || r.Error.Code != c.wantCode):
				t.Fatalf("got %s / %+v, want error %d", r.Result, r.Error, c.wantCode)
			}
		})
	}
}

func TestDiscoverAdvertisesVersions(t *testing.T) {
	for era, want := range map[string][]string{
		"both":   {v2026, v2025, "2025-06-18", "2025-03-26", "2024-11-05"},
		"modern": {v2026},
	} {
		t.Run(era, func(t *testing.T) {
			p := startRaw(t, serverBin(t), "-era", era)
			p.send(`{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{` + meta2026 + `}}`)
			var res struct {
				SupportedVersions []string `json:"supportedVersions"`
			}
			if err := json.Unmarshal(p.recvResponse().Result, &res); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res.SupportedVersions, want) {
				t.Fatalf("supportedVersions = %v, want %v", res.SupportedVersions, want)
			}
		})
	}
}

// inputClientOptions answers roots, elicitation and sampling.
func inputClientOptions() *mcp.ClientOptions {
	return &mcp.ClientOptions{
		ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"answer": "yes to " + req.Params.Message}}, nil
		},
		CreateMessageHandler: func(_ context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			prompt := ""
			if len(req.Params.Messages) > 0 {
				if tc, ok := req.Params.Messages[0].Content.(*mcp.TextContent); ok {
					prompt = tc.Text
				}
			}
			return &mcp.CreateMessageResult{Role: "assistant", Model: "fake", Content: &mcp.TextContent{Text: "sampled " + prompt}}, nil
		},
	}
}

func TestInputRoundTripsBothEras(t *testing.T) {
	for _, v := range eras {
		t.Run(v, func(t *testing.T) {
			client := mcp.NewClient(&mcp.Implementation{Name: "tether-test", Version: "0.1"}, inputClientOptions())
			client.AddRoots(&mcp.Root{URI: "file:///tmp/a"}, &mcp.Root{URI: "file:///tmp/b"})
			tr := &mcp.CommandTransport{Command: exec.Command(serverBin(t)), TerminateDuration: time.Second}
			cs, err := client.Connect(testCtx(t), tr, &mcp.ClientSessionOptions{ProtocolVersion: v})
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			if got := cs.InitializeResult().ProtocolVersion; got != v {
				t.Fatalf("negotiated %q", got)
			}
			if got := callText(t, cs, "roots", map[string]any{}); got != "file:///tmp/a,file:///tmp/b" {
				t.Fatalf("roots = %q", got)
			}
			if got := callText(t, cs, "elicit", map[string]any{"message": "ok?"}); got != "yes to ok?" {
				t.Fatalf("elicit = %q", got)
			}
			if got := callText(t, cs, "sample", map[string]any{"prompt": "hi"}); got != "sampled hi" {
				t.Fatalf("sample = %q", got)
			}
		})
	}
}

func TestHugeAndSchemaTool(t *testing.T) {
	cs := connect(t, v2026, nil)
	const n = 3 << 20
	got := callText(t, cs, "huge", map[string]any{"bytes": n})
	if len(got) != n || strings.Trim(got, "x") != "" {
		t.Fatalf("huge: %d bytes (want %d of 'x')", len(got), n)
	}
	var found *mcp.Tool
	for tool, err := range cs.Tools(testCtx(t), nil) {
		if err != nil {
			t.Fatal(err)
		}
		if tool.Name == "schema_tool" {
			found = tool
		}
	}
	if found == nil {
		t.Fatal("schema_tool not listed")
	}
	gotSchema, err := json.Marshal(found.InputSchema)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	if err := json.Unmarshal(gotSchema, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(schema.SchemaToolInput), &b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("schema_tool input schema changed:\n got %s\nwant %s", gotSchema, schema.SchemaToolInput)
	}
	if got := callText(t, cs, "schema_tool", map[string]any{"word": "w"}); got != "ok" {
		t.Fatalf("schema_tool = %q", got)
	}
}

func TestProgressAndLog(t *testing.T) {
	for _, v := range eras {
		t.Run(v, func(t *testing.T) {
			progress := make(chan *mcp.ProgressNotificationParams, 10)
			logs := make(chan *mcp.LoggingMessageParams, 10)
			cs := connect(t, v, &mcp.ClientOptions{
				ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) { progress <- r.Params },
				LoggingMessageHandler:       func(_ context.Context, r *mcp.LoggingMessageRequest) { logs <- r.Params },
			})
			ctx := testCtx(t)
			params := &mcp.CallToolParams{Name: "progress", Arguments: map[string]any{"steps": 3, "ms": 5}}
			params.SetProgressToken("tok-1")
			res, err := cs.CallTool(ctx, params)
			if err != nil || contentText(res) != "done" {
				t.Fatalf("progress: %v %v", res, err)
			}
			// Notifications precede the response on the same ordered stream.
			for i := 1; i <= 3; i++ {
				select {
				case p := <-progress:
					if p.Progress != float64(i) || p.Total != 3 || p.ProgressToken != "tok-1" {
						t.Fatalf("progress %d: %+v", i, p)
					}
				case <-ctx.Done():
					t.Fatalf("progress %d not received", i)
				}
			}

			logParams := &mcp.CallToolParams{Name: "log", Arguments: map[string]any{"level": "warning", "text": "hello log"}}
			if v == v2025 {
				if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "info"}); err != nil {
					t.Fatal(err)
				}
			} else {
				logParams.Meta = mcp.Meta{"io.modelcontextprotocol/logLevel": "info"}
			}
			if got := contentText(mustCall(t, cs, logParams)); got != "logged" {
				t.Fatalf("log = %q", got)
			}
			select {
			case l := <-logs:
				if l.Level != "warning" || l.Data != "hello log" {
					t.Fatalf("log notification %+v", l)
				}
			case <-ctx.Done():
				t.Fatal("log notification not received")
			}
		})
	}
}

func mustCall(t *testing.T, cs *mcp.ClientSession, p *mcp.CallToolParams) *mcp.CallToolResult {
	t.Helper()
	res, err := cs.CallTool(testCtx(t), p)
	if err != nil {
		t.Fatalf("call %s: %v", p.Name, err)
	}
	return res
}

func TestSleepCancelled(t *testing.T) {
	cs := connect(t, v2025, nil)
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "sleep", Arguments: map[string]any{"ms": 60000}})
		done <- err
	}()
	// Prove the server is busy with the sleep and still serving others.
	if got := callText(t, cs, "echo", map[string]any{"text": "alive"}); got != "alive" {
		t.Fatalf("echo = %q", got)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("sleep err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancelled sleep did not return")
	}
	if got := callText(t, cs, "sleep", map[string]any{"ms": 1}); got != "slept" {
		t.Fatalf("short sleep = %q", got)
	}
}

func TestAddToolNotifies(t *testing.T) {
	for _, v := range eras {
		t.Run(v, func(t *testing.T) {
			changed := make(chan struct{}, 4)
			cs := connect(t, v, &mcp.ClientOptions{
				ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { changed <- struct{}{} },
			})
			if got := callText(t, cs, "add_tool", map[string]any{"name": "fresh"}); got != "added" {
				t.Fatalf("add_tool = %q", got)
			}
			select {
			case <-changed:
			case <-testCtx(t).Done():
				t.Fatal("no notifications/tools/list_changed")
			}
			if got := callText(t, cs, "fresh", map[string]any{"text": "new"}); got != "new" {
				t.Fatalf("fresh = %q", got)
			}
		})
	}
}

func TestGarbageLine(t *testing.T) {
	p := startRaw(t, serverBin(t))
	p.send(init2025)
	p.recvResponse()
	p.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	p.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"garbage","arguments":{}}}`)
	if l, _ := p.recv(); l != "this is not json" {
		t.Fatalf("first line after garbage call = %q", l)
	}
	if r := p.recvResponse(); !strings.Contains(string(r.Result), `"text":"ok"`) {
		t.Fatalf("garbage result %s", r.Result)
	}
}

func TestCrashExitCode(t *testing.T) {
	for code, args := range map[int]string{3: `{}`, 7: `{"code":7}`} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			p := startRaw(t, serverBin(t))
			p.send(init2025)
			p.recvResponse()
			p.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
			p.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"crash","arguments":` + args + `}}`)
			if l, ok := p.recv(); ok {
				t.Fatalf("unexpected stdout %q", l)
			}
			err := p.cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != code {
				t.Fatalf("exit = %v, want code %d", err, code)
			}
			if !strings.Contains(p.stderr.String(), "crashing now") {
				t.Fatalf("stderr = %q", p.stderr.String())
			}
		})
	}
}

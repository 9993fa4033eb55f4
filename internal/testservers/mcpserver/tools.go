package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tether-dev/tether/internal/testservers/schema"
)

type echoIn struct {
	Text string `json:"text" jsonschema:"text to echo back"`
}

type sleepIn struct {
	MS int `json:"ms" jsonschema:"milliseconds to sleep"`
}

type progressIn struct {
	Steps int `json:"steps" jsonschema:"number of progress notifications"`
	MS    int `json:"ms,omitempty" jsonschema:"milliseconds between notifications"`
}

type crashIn struct {
	Code *int `json:"code,omitempty" jsonschema:"exit code (default 3)"`
}

type hugeIn struct {
	Bytes int `json:"bytes" jsonschema:"size of the returned text"`
}

type logIn struct {
	Level string `json:"level" jsonschema:"log level, e.g. info"`
	Text  string `json:"text" jsonschema:"message"`
}

type nameIn struct {
	Name string `json:"name" jsonschema:"name of the tool to add"`
}

type empty struct{}

func addTools(s *mcp.Server) {
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "returns its text"}, echo)
	mcp.AddTool(s, &mcp.Tool{Name: "sleep", Description: "waits ms or until cancelled"}, sleep)
	mcp.AddTool(s, &mcp.Tool{Name: "cancels", Description: "how many sleeps were cancelled"}, cancels)
	mcp.AddTool(s, &mcp.Tool{Name: "progress", Description: "sends progress notifications"}, progress)
	mcp.AddTool(s, &mcp.Tool{Name: "crash", Description: "exits the process"}, crash)
	mcp.AddTool(s, &mcp.Tool{Name: "huge", Description: "returns bytes 'x' characters"}, huge)
	mcp.AddTool(s, &mcp.Tool{Name: "garbage", Description: "writes non-JSON lines to stdout"}, garbage)
	mcp.AddTool(s, &mcp.Tool{Name: "log", Description: "sends one log notification"}, logTool)
	mcp.AddTool(s, &mcp.Tool{Name: "whoami", Description: "returns the client name the server saw"}, whoami)
	mcp.AddTool(s, &mcp.Tool{Name: "add_tool", Description: "adds an echo tool at runtime"},
		func(_ context.Context, _ *mcp.CallToolRequest, in nameIn) (*mcp.CallToolResult, any, error) {
			if in.Name == "" {
				return nil, nil, errors.New("name is required")
			}
			s.AddTool(&mcp.Tool{Name: in.Name, Description: "runtime echo", InputSchema: json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"}}}`)}, rawEcho)
			return text("added"), nil, nil
		})
	// The raw AddTool keeps the schema exactly as written (no reflection).
	s.AddTool(&mcp.Tool{Name: "schema_tool", Description: "has a 2020-12 input schema", InputSchema: json.RawMessage(schema.SchemaToolInput)},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) { return text("ok"), nil })
	addInputTools(s)
}

func echo(_ context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
	return text(in.Text), nil, nil
}

// rawEcho is the handler of tools added by add_tool.
func rawEcho(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var in echoIn
	if len(req.Params.Arguments) > 0 {
		if err := json.Unmarshal(req.Params.Arguments, &in); err != nil {
			return nil, fmt.Errorf("decode arguments: %w", err)
		}
	}
	return text(in.Text), nil
}

// sleepCancels counts sleep calls that ended by cancellation (the cancels
// tool reports it), so a client can see its cancel reach the server.
var sleepCancels atomic.Int64

func sleep(ctx context.Context, req *mcp.CallToolRequest, in sleepIn) (*mcp.CallToolResult, any, error) {
	t := time.NewTimer(time.Duration(in.MS) * time.Millisecond)
	defer t.Stop()
	if token := req.Params.GetProgressToken(); token != nil {
		// Tells a client that asked for progress that the sleep began.
		_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: token, Message: "sleeping"})
	}
	select {
	case <-t.C:
		return text("slept"), nil, nil
	case <-ctx.Done():
		sleepCancels.Add(1)
		return nil, nil, errors.New("cancelled")
	}
}

func cancels(context.Context, *mcp.CallToolRequest, empty) (*mcp.CallToolResult, any, error) {
	return text(strconv.FormatInt(sleepCancels.Load(), 10)), nil, nil
}

func progress(ctx context.Context, req *mcp.CallToolRequest, in progressIn) (*mcp.CallToolResult, any, error) {
	token := req.Params.GetProgressToken()
	if token == nil {
		return text("done"), nil, nil
	}
	for i := 1; i <= in.Steps; i++ {
		if i > 1 && in.MS > 0 {
			select {
			case <-time.After(time.Duration(in.MS) * time.Millisecond):
			case <-ctx.Done():
				return nil, nil, errors.New("cancelled")
			}
		}
		err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
			ProgressToken: token,
			Progress:      float64(i),
			Total:         float64(in.Steps),
			Message:       fmt.Sprintf("step %d of %d", i, in.Steps),
		})
		if err != nil {
			return nil, nil, fmt.Errorf("notify progress: %w", err)
		}
	}
	return text("done"), nil, nil
}

func crash(_ context.Context, _ *mcp.CallToolRequest, in crashIn) (*mcp.CallToolResult, any, error) {
	code := 3
	if in.Code != nil {
		code = *in.Code
	}
	fmt.Fprintln(os.Stderr, "crashing now")
	os.Exit(code)
	return nil, nil, nil
}

func huge(_ context.Context, _ *mcp.CallToolRequest, in hugeIn) (*mcp.CallToolResult, any, error) {
	if in.Bytes < 0 {
		return nil, nil, errors.New("bytes must be >= 0")
	}
	return text(strings.Repeat("x", in.Bytes)), nil, nil
}

type garbageIn struct {
	Lines int `json:"lines,omitempty" jsonschema:"how many non-JSON lines (default 1)"`
}

// garbage corrupts the stdout stream on purpose: one write of short lines.
// os.File serialises Writes, so the lines land whole between the SDK's own
// frames.
func garbage(_ context.Context, _ *mcp.CallToolRequest, in garbageIn) (*mcp.CallToolResult, any, error) {
	n := max(in.Lines, 1)
	if _, err := os.Stdout.Write([]byte(strings.Repeat("this is not json\n", n))); err != nil {
		return nil, nil, fmt.Errorf("write garbage: %w", err)
	}
	return text("ok"), nil, nil
}

// logTool sends one notifications/message. The SDK drops it unless the client
// asked for that level (logging/setLevel in 2025, the _meta logLevel key in
// 2026-07-28), as the spec requires.
func logTool(ctx context.Context, req *mcp.CallToolRequest, in logIn) (*mcp.CallToolResult, any, error) {
	level := in.Level
	if level == "" {
		level = "info"
	}
	err := req.Session.Log(ctx, &mcp.LoggingMessageParams{Level: mcp.LoggingLevel(level), Logger: "mcpserver", Data: in.Text})
	if err != nil {
		return nil, nil, fmt.Errorf("log: %w", err)
	}
	return text("logged"), nil, nil
}

// whoami reports the client name: from the initialize params in the 2025 era,
// from the request's _meta clientInfo in 2026-07-28 (req.ClientInfo does both).
func whoami(_ context.Context, req *mcp.CallToolRequest, _ empty) (*mcp.CallToolResult, any, error) {
	name := ""
	if ci := req.ClientInfo(); ci != nil {
		name = ci.Name
	}
	return text("client=" + name), nil, nil
}

package main

import (
	"context"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type sampleEchoIn struct {
	Message string `json:"message" jsonschema:"text to echo back"`
}

type sampleTimeIn struct{}

// sampleServer is the demo's built-in stdio MCP server (the hidden
// `tetherd sample-server`): two harmless tools, echo and time.
func sampleServer(ctx context.Context) error {
	s := mcp.NewServer(&mcp.Implementation{Name: "tether-sample", Version: version}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "Echoes the message back"},
		func(_ context.Context, _ *mcp.CallToolRequest, in sampleEchoIn) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Message}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "time", Description: "Returns the bridge machine's current time (RFC 3339)"},
		func(_ context.Context, _ *mcp.CallToolRequest, _ sampleTimeIn) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: time.Now().Format(time.RFC3339)}}}, nil, nil
		})
	err := s.Run(ctx, &mcp.StdioTransport{})
	if ctx.Err() != nil {
		return nil
	}
	return err
}

package main

import (
	"context"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// A resource, a prompt and completions, so that every MCP feature can be
// tried through the bridge (the e2e version table): test://static can be
// subscribed to, and the touch tool announces an update of it.

const staticURI = "test://static"

type touchIn struct {
	URI string `json:"uri" jsonschema:"resource to announce as updated"`
}

func addContent(s *mcp.Server) {
	s.AddResource(&mcp.Resource{URI: staticURI, Name: "static", MIMEType: "text/plain"},
		func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, MIMEType: "text/plain", Text: "static resource"}}}, nil
		})
	s.AddPrompt(&mcp.Prompt{Name: "greet", Description: "greets someone", Arguments: []*mcp.PromptArgument{{Name: "name", Required: true}}},
		func(_ context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: "hello " + req.Params.Arguments["name"]}}}}, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "touch", Description: "announces that a resource changed"},
		func(ctx context.Context, _ *mcp.CallToolRequest, in touchIn) (*mcp.CallToolResult, any, error) {
			if err := s.ResourceUpdated(ctx, &mcp.ResourceUpdatedNotificationParams{URI: in.URI}); err != nil {
				return nil, nil, err
			}
			return text("touched"), nil, nil
		})
}

// complete offers the names that start with what was typed.
func complete(_ context.Context, req *mcp.CompleteRequest) (*mcp.CompleteResult, error) {
	var out []string
	for _, n := range []string{"ada", "alan", "grace"} {
		if strings.HasPrefix(n, req.Params.Argument.Value) {
			out = append(out, n)
		}
	}
	return &mcp.CompleteResult{Completion: mcp.CompletionResultDetails{Values: out, Total: len(out)}}, nil
}

func subscribe(context.Context, *mcp.SubscribeRequest) error     { return nil }
func unsubscribe(context.Context, *mcp.UnsubscribeRequest) error { return nil }

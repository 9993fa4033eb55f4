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

type shapesOut struct {
	Blocks int `json:"blocks"`
}

type touchIn struct {
	URI string `json:"uri" jsonschema:"resource to announce as updated"`
}

func addContent(s *mcp.Server) {
	s.AddResource(&mcp.Resource{URI: staticURI, Name: "static", Title: "Static", MIMEType: "text/plain"},
		func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, MIMEType: "text/plain", Text: "static resource"}}}, nil
		})
	s.AddPrompt(&mcp.Prompt{Name: "greet", Title: "Greet", Description: "greets someone", Arguments: []*mcp.PromptArgument{{Name: "name", Title: "Name", Required: true}}},
		func(_ context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: "hello " + req.Params.Arguments["name"]}}}}, nil
		})
	// shapes has every member and content type added since 2024-11-05, so a
	// client of an older version shows what the bridge reshapes for it.
	mcp.AddTool(s, &mcp.Tool{Name: "shapes", Title: "Shapes", Description: "returns one content block of each kind",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}, Icons: []mcp.Icon{{Source: "https://example.invalid/shapes.png"}}},
		func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, shapesOut, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{
				&mcp.TextContent{Text: "shapes", Meta: mcp.Meta{"k": 1}},
				&mcp.AudioContent{Data: []byte("RIFF"), MIMEType: "audio/wav"},
				&mcp.ResourceLink{URI: staticURI, Name: "static", MIMEType: "text/plain"},
			}}, shapesOut{Blocks: 3}, nil
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

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The roots, elicit and sample tools need input from the client. They use the
// go-sdk's multi-round-trip form (SEP-2322) so one handler works in both eras:
// the first call returns InputRequests; with a 2026-07-28 client the SDK sends
// that as an "input_required" result and the client retries with
// inputResponses, while with a 2025 client the SDK's own server middleware
// turns each request into a real server→client request (roots/list,
// elicitation/create, sampling/createMessage) and calls the handler again.
//
// requestState is echoed by the client; it is set only so that the wire
// capture shows it.

type messageIn struct {
	Message string `json:"message" jsonschema:"question to ask the user"`
	WaitMS  int    `json:"waitMs,omitempty" jsonschema:"after the answer, wait this long (or until cancelled) as the sleep tool does"`
}

type promptIn struct {
	Prompt string `json:"prompt" jsonschema:"prompt to sample"`
}

const elicitSchema = `{"type":"object","properties":{"answer":{"type":"string"}},"required":["answer"]}`

func addInputTools(s *mcp.Server) {
	mcp.AddTool(s, &mcp.Tool{Name: "roots", Description: "lists the client's roots"}, roots)
	mcp.AddTool(s, &mcp.Tool{Name: "elicit", Description: "asks the user for an answer"}, elicit)
	mcp.AddTool(s, &mcp.Tool{Name: "sample", Description: "asks the client to sample"}, sample)
	mcp.AddTool(s, &mcp.Tool{Name: "two_rounds", Description: "asks for the roots, then for an answer"}, twoRounds)
}

func needInput(key, state string, r mcp.InputRequest) *mcp.CallToolResult {
	return &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{key: r}, RequestState: state}
}

func roots(_ context.Context, req *mcp.CallToolRequest, _ empty) (*mcp.CallToolResult, any, error) {
	resp, ok := req.Params.InputResponses["roots"]
	if !ok {
		return needInput("roots", "roots-1", &mcp.ListRootsParams{}), nil, nil
	}
	lr, ok := resp.(*mcp.ListRootsResult)
	if !ok {
		return nil, nil, fmt.Errorf("roots: unexpected input response %T", resp)
	}
	uris := make([]string, 0, len(lr.Roots))
	for _, r := range lr.Roots {
		uris = append(uris, r.URI)
	}
	return text(strings.Join(uris, ",")), nil, nil
}

func elicit(ctx context.Context, req *mcp.CallToolRequest, in messageIn) (*mcp.CallToolResult, any, error) {
	resp, ok := req.Params.InputResponses["answer"]
	if !ok {
		return needInput("answer", "elicit-1", &mcp.ElicitParams{
			Mode:            "form",
			Message:         in.Message,
			RequestedSchema: json.RawMessage(elicitSchema),
		}), nil, nil
	}
	er, ok := resp.(*mcp.ElicitResult)
	if !ok {
		return nil, nil, fmt.Errorf("elicit: unexpected input response %T", resp)
	}
	if er.Action != "accept" {
		return nil, nil, fmt.Errorf("elicitation %s", er.Action)
	}
	answer, _ := er.Content["answer"].(string)
	if in.WaitMS > 0 {
		// Still working after the answer: a client can cancel the call
		// between its retry and the result (the cancels tool counts it).
		if _, _, err := sleep(ctx, req, sleepIn{MS: in.WaitMS}); err != nil {
			return nil, nil, err
		}
	}
	return text(answer), nil, nil
}

func sample(_ context.Context, req *mcp.CallToolRequest, in promptIn) (*mcp.CallToolResult, any, error) {
	resp, ok := req.Params.InputResponses["sample"]
	if !ok {
		return needInput("sample", "sample-1", &mcp.CreateMessageParams{
			MaxTokens: 64,
			Messages:  []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: in.Prompt}}},
		}), nil, nil
	}
	var content []mcp.Content
	switch r := resp.(type) {
	case *mcp.CreateMessageWithToolsResult:
		content = r.Content
	case *mcp.CreateMessageResult:
		content = []mcp.Content{r.Content}
	default:
		return nil, nil, fmt.Errorf("sample: unexpected input response %T", resp)
	}
	var parts []string
	for _, c := range content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	if len(parts) == 0 {
		return nil, nil, errors.New("sample: no text in sampled message")
	}
	return text(strings.Join(parts, "")), nil, nil
}

// twoRounds asks the client twice, the 2025 way (server→client requests,
// one after the other, from one handler): the roots, then an answer. With a
// 2026-07-28 client the requests fail (the SDK has no client to ask).
func twoRounds(ctx context.Context, req *mcp.CallToolRequest, _ empty) (*mcp.CallToolResult, any, error) {
	rr, err := req.Session.ListRoots(ctx, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("two_rounds: roots: %w", err)
	}
	if len(rr.Roots) == 0 {
		return nil, nil, errors.New("two_rounds: no roots")
	}
	er, err := req.Session.Elicit(ctx, &mcp.ElicitParams{Mode: "form", Message: "and?", RequestedSchema: json.RawMessage(elicitSchema)})
	if err != nil {
		return nil, nil, fmt.Errorf("two_rounds: elicit: %w", err)
	}
	answer, _ := er.Content["answer"].(string)
	return text(rr.Roots[0].URI + " " + answer), nil, nil
}

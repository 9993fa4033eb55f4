package server

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// BenchmarkEchoThroughRelay: go-sdk client → relay → fake bridge (go-sdk
// server), 32 calls in flight. Most of the cost is the SDK on both ends.
func BenchmarkEchoThroughRelay(b *testing.B) {
	for _, version := range []string{"2025-11-25", "2026-07-28"} {
		b.Run(version, func(b *testing.B) {
			r := newBenchRelay(b)
			dialFakeBridge(b, r, "alice")
			cs := connectClient(b, r.mcpURL("alice", "everything"), mustToken(b, "alice", ScopeClient), version, nil)
			params := &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "x"}}
			b.ResetTimer()
			var wg sync.WaitGroup
			work := make(chan struct{})
			for range 32 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range work {
						if _, err := cs.CallTool(context.Background(), params); err != nil {
							b.Error(err)
						}
					}
				}()
			}
			for range b.N {
				work <- struct{}{}
			}
			close(work)
			wg.Wait()
		})
	}
}

// newBenchRelay is newTestRelay without the per-token rate limit, which a
// benchmark's thousands of calls a second from one token would hit.
func newBenchRelay(b *testing.B) *testRelay {
	return startRelay(b, &Server{Verifier: &Verifier{Secret: testSecret}, CallTimeout: 30 * time.Second, Limits: Limits{ClientRate: -1}})
}

package server

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/relay"
)

// takeoverBridge runs a real relay.Client for dev with the given token and
// instance; frames of kind error arrive on errs, the end of Run on done.
type takeoverBridge struct {
	c      *relay.Client
	errs   chan relay.Frame
	done   chan error
	online chan struct{}
}

func startTakeoverBridge(t *testing.T, r *testRelay, token, instance string) *takeoverBridge {
	t.Helper()
	tb := &takeoverBridge{errs: make(chan relay.Frame, 8), done: make(chan error, 1), online: make(chan struct{}, 8)}
	tb.c = relay.NewClient(relay.ClientOptions{
		URL:      r.ts.URL,
		Instance: instance,
		Token:    func(context.Context) (string, error) { return token, nil },
		Hello: func() relay.Frame {
			return relay.Frame{Protocol: relay.ProtocolVersion, Version: "test"}
		},
		OnFrame: func(f relay.Frame) {
			if f.Kind == relay.KindError {
				tb.errs <- f
			}
		},
		OnState: func(s relay.ConnState) {
			if s.Phase == relay.PhaseConnected {
				tb.online <- struct{}{}
			}
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { tb.done <- tb.c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-tb.done
	})
	select {
	case <-tb.online:
	case <-time.After(10 * time.Second):
		t.Fatal("bridge never connected")
	}
	return tb
}

// sync proves every frame the relay sent this bridge before now has been
// read: an unknown kind is answered with an unknown_kind error frame, in
// order after anything the relay wrote earlier.
func (tb *takeoverBridge) sync(t *testing.T) []relay.Frame {
	t.Helper()
	if err := tb.c.Send(context.Background(), relay.Frame{Kind: "x-sync"}); err != nil {
		t.Fatalf("send sync frame: %v", err)
	}
	var before []relay.Frame
	for {
		select {
		case f := <-tb.errs:
			if f.Code == relay.ErrCodeUnknownKind {
				return before
			}
			before = append(before, f)
		case <-time.After(10 * time.Second):
			t.Fatal("no answer to the sync frame")
		}
	}
}

// TestTakeoverSameToken: a second machine connecting with the same bridge
// token takes the slot; the first is told when and from where (its close
// reason), the second is told it took over (an error frame it shows).
func TestTakeoverSameToken(t *testing.T) {
	r := newTestRelay(t, 5*time.Second)
	token := mustToken(t, "alice", ScopeBridge)
	first := startTakeoverBridge(t, r, token, "laptop")
	first.sync(t)
	second := startTakeoverBridge(t, r, token, "desktop")

	select {
	case err := <-first.done:
		if !errors.Is(err, relay.ErrReplaced) {
			t.Fatalf("first bridge ended with %v, want ErrReplaced", err)
		}
		first.done <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("first bridge was not closed")
	}
	reason := first.c.State().Reason
	if !strings.HasPrefix(reason, "another Tether took over with your token at ") || !strings.Contains(reason, " from 127.0.0.1:") {
		t.Fatalf("first bridge's reason = %q, want when and from where", reason)
	}
	got := second.sync(t)
	if len(got) != 1 || got[0].Code != relay.ErrCodeTookOver || !strings.Contains(got[0].Message, "took over from another Tether with the same token") {
		t.Fatalf("second bridge got %+v, want one took_over frame", got)
	}
	if n := r.srv.metrics.takeovers.Load(); n != 1 {
		t.Fatalf("takeovers metric = %d, want 1", n)
	}
}

// TestReconnectIsNoTakeover: the same bridge process dialling again while
// the relay still holds its old socket (a half-open connection after a
// network change) replaces it without a takeover warning to anyone.
func TestReconnectIsNoTakeover(t *testing.T) {
	r := newTestRelay(t, 5*time.Second)
	token := mustToken(t, "alice", ScopeBridge)
	first := startTakeoverBridge(t, r, token, "laptop")
	first.sync(t)
	second := startTakeoverBridge(t, r, token, "laptop")
	select {
	case err := <-first.done:
		first.done <- err
		if reason := first.c.State().Reason; strings.Contains(reason, "with your token") {
			t.Fatalf("a reconnect was reported as a takeover: %q", reason)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("old socket was not closed")
	}
	if got := second.sync(t); len(got) != 0 {
		t.Fatalf("reconnecting bridge got %+v, want no frames", got)
	}
	if n := r.srv.metrics.takeovers.Load(); n != 0 {
		t.Fatalf("takeovers metric = %d, want 0", n)
	}
}

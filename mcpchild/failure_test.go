package mcpchild

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// TestClassify: every way a run can end gets its kind, and a *ServerError
// inside a wrapped error keeps its own.
func TestClassify(t *testing.T) {
	exited := &ServerError{Server: "s", Failure: Failure{Kind: FailExited, ExitCode: 3}, Err: errors.New("exited; stderr: KEY")}
	for _, tc := range []struct {
		name   string
		isHTTP bool
		err    error
		want   Failure
	}{
		{"not found", false, &NotFoundError{Server: "s", Command: "nosuch"}, Failure{Kind: FailNotFound}},
		{"handshake timeout", false, fmt.Errorf("handshake failed: %w", fmt.Errorf("initialize: %w", context.DeadlineExceeded)), Failure{Kind: FailTimedOut}},
		{"start failed", false, errors.New("start mcp server: permission denied"), Failure{Kind: FailStart}},
		{"http unreachable", true, errors.New("dial tcp: connection refused"), Failure{Kind: FailUnavailable}},
		{"wrapped exit", false, fmt.Errorf("handshake: %w", exited), Failure{Kind: FailExited, ExitCode: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			se := classify("s", tc.isHTTP, tc.err)
			if se.Failure != tc.want || se.Error() != tc.err.Error() {
				t.Fatalf("classify = %+v (%q), want %+v (%q)", se.Failure, se.Error(), tc.want, tc.err.Error())
			}
		})
	}
}

// TestRemoteErrorHidesServerOutput: a remote client is told the kind in
// words, never the text behind it, unless the spec shares stderr; errors
// that are not a server's failure pass as they are.
func TestRemoteErrorHidesServerOutput(t *testing.T) {
	err := fmt.Errorf("call: %w", &ServerError{Server: "db", Failure: Failure{Kind: FailCrashed, Signal: 9},
		Err: errors.New(`mcp server "db" exited: killed by signal 9; stderr: PGPASSWORD=hunter2`)})
	private := New(Spec{Name: "db", Command: "db"}, Options{})
	if got, want := private.RemoteError(err), `mcp server "db" crashed (signal 9)`; got != want {
		t.Errorf("private: %q, want %q", got, want)
	}
	shared := New(Spec{Name: "db", Command: "db", ShareStderr: true}, Options{})
	if got := shared.RemoteError(err); got != err.Error() {
		t.Errorf("shared: %q, want the full %q", got, err.Error())
	}
	plain := errors.New("tools/call: context deadline exceeded")
	if got := private.RemoteError(plain); got != plain.Error() {
		t.Errorf("plain error: %q", got)
	}
}

//go:build linux || darwin

package mcpchild

import (
	"strings"
	"testing"
	"time"
)

// TestFailureOfRealExits: a real child's exit status and signal end up in
// its Status as a Failure, and the remote text carries neither its stderr
// nor anything else it printed.
func TestFailureOfRealExits(t *testing.T) {
	for _, tc := range []struct {
		script string
		want   Failure
		remote string
	}{
		{"echo TOKEN=abc123 >&2; exit 3", Failure{Kind: FailExited, ExitCode: 3}, `mcp server "x" exited with status 3`},
		// "$$" is mcp.json's escape for "$": the script sees "kill -9 $$".
		{"echo TOKEN=abc123 >&2; kill -9 $$$$", Failure{Kind: FailCrashed, Signal: 9}, `mcp server "x" crashed (signal 9)`},
	} {
		t.Run(tc.remote, func(t *testing.T) {
			statuses := make(chan Status, 100)
			opts := testOptions(t)
			opts.OnStatus = func(s Status) { statuses <- s }
			opts.RestartMin, opts.RestartMax = 3*time.Minute, 3*time.Minute // one failure is enough
			c := New(Spec{Name: "x", Command: "/bin/sh", Args: []string{"-c", tc.script}}, opts)
			c.Start(t.Context())
			defer c.Stop(t.Context())
			st := waitStatus(t, statuses, func(s Status) bool { return s.Phase == PhaseBackoff })
			if st.Failure != tc.want {
				t.Errorf("failure = %+v, want %+v (%s)", st.Failure, tc.want, st.LastError)
			}
			if got := st.RemoteError(false); got != tc.remote {
				t.Errorf("remote = %q, want %q", got, tc.remote)
			}
			if !strings.Contains(st.LastError, "TOKEN=abc123") {
				t.Errorf("the local error lost the stderr: %q", st.LastError)
			}
		})
	}
}

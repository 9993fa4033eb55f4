package mcpchild

import (
	"time"
)

// CallInfo describes one finished tools/call from a session, for the UI's
// list of recent calls.
type CallInfo struct {
	Session  string
	Tool     string
	Start    time.Time
	Duration time.Duration
	Outcome  string // one of the Outcome constants
	Error    string // for error, failed and denied: what went wrong
}

// Outcomes of a tools/call.
const (
	OutcomeOK        = "ok"         // a result
	OutcomeToolError = "tool_error" // a result with "isError": true
	OutcomeError     = "error"      // a JSON-RPC error response
	OutcomeCancelled = "cancelled"  // the session cancelled it or closed
	OutcomeFailed    = "failed"     // the server crashed, went away or was not ready
	OutcomeDenied    = "denied"     // blocked by the tool filter
)

// callStart is when a session's tools/call started and the tool it names,
// kept on its pending request only when Options.OnCall is set, so the
// unobserved hot path does no extra work.
type callStart struct {
	tool  string
	start time.Time
}

// observeCall returns what to keep for a tools/call, or the zero value when
// nobody observes calls.
func (c *Child) observeCall(m *message, start time.Time) callStart {
	if c.opts.OnCall == nil || m.method != "tools/call" {
		return callStart{}
	}
	if start.IsZero() {
		start = time.Now()
	}
	tool, _ := m.p.name.get()
	return callStart{tool: tool, start: start}
}

// reportCall calls OnCall for a finished call; it is a no-op for anything
// that is not an observed tools/call.
func (c *Child) reportCall(s *Session, cs callStart, outcome, errMsg string) {
	if cs.start.IsZero() || c.opts.OnCall == nil {
		return
	}
	c.opts.OnCall(CallInfo{Session: s.id, Tool: cs.tool, Start: cs.start, Duration: time.Since(cs.start), Outcome: outcome, Error: errMsg})
}

// responseOutcome classifies the child's answer to a tools/call without
// decoding the result: only its top-level "isError" is looked at.
func responseOutcome(result, errObj []byte) (outcome, errMsg string) {
	if errObj != nil {
		return OutcomeError, unquote(field(errObj, "message"))
	}
	if string(field(result, "isError")) == "true" {
		return OutcomeToolError, ""
	}
	return OutcomeOK, ""
}

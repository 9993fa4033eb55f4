package mcpchild

import (
	"context"
	"errors"
	"fmt"
)

// FailureKind classifies why a server is not serving. Unlike the full error
// text (LastError), which quotes the server's stderr and may name paths,
// URLs or even an API key a server printed, a kind and its sentence
// (Failure.Sentence) say nothing the server itself wrote: they are what a
// remote client may be told. The full text stays on the bridge's machine
// (status, tray, logs) unless the server opts in with Spec.ShareStderr.
type FailureKind string

const (
	FailNone        FailureKind = ""
	FailExited      FailureKind = "exited"       // the process exited (Failure.ExitCode)
	FailCrashed     FailureKind = "crashed"      // the process was killed by a signal (Failure.Signal)
	FailNotFound    FailureKind = "not_found"    // the command is not installed or not on PATH
	FailTimedOut    FailureKind = "timed_out"    // the start-up handshake did not finish in time
	FailStart       FailureKind = "start_failed" // could not be started, or failed its handshake
	FailUnavailable FailureKind = "unavailable"  // anything else: an unreachable HTTP server, a closed stdout
)

// Failure is the classified part of a server's last error.
type Failure struct {
	Kind     FailureKind `json:"kind"`
	ExitCode int         `json:"exitCode,omitempty"` // FailExited
	Signal   int         `json:"signal,omitempty"`   // FailCrashed
	// Crashes is set once the server crash-loops: the failures in a row
	// after which it is no longer restarted on its own.
	Crashes int `json:"crashes,omitempty"`
}

// Sentence says what happened to server name without quoting anything the
// server wrote.
func (f Failure) Sentence(name string) string {
	var s string
	switch f.Kind {
	case FailExited:
		s = fmt.Sprintf("mcp server %q exited with status %d", name, f.ExitCode)
	case FailCrashed:
		s = fmt.Sprintf("mcp server %q crashed (signal %d)", name, f.Signal)
	case FailNotFound:
		s = fmt.Sprintf("mcp server %q could not start: its command was not found on the bridge's machine", name)
	case FailTimedOut:
		s = fmt.Sprintf("mcp server %q timed out during start-up", name)
	case FailStart:
		s = fmt.Sprintf("mcp server %q failed to start", name)
	default:
		s = fmt.Sprintf("mcp server %q is unavailable", name)
	}
	if f.Crashes > 0 {
		s += fmt.Sprintf("; it failed %d times in a row and waits for a restart", f.Crashes)
	}
	return s
}

// ServerError is an error about a server that failed: the full story for
// the local user (Error) with its classification (Failure) for anyone else.
type ServerError struct {
	Server  string
	Failure Failure
	Err     error // the full text: may quote stderr, paths, URLs
}

func (e *ServerError) Error() string { return e.Err.Error() }
func (e *ServerError) Unwrap() error { return e.Err }

// classify turns any error that ended a run of server name into a
// *ServerError. isHTTP says whether the server is an HTTP one, whose failures
// are someone else's outage rather than a failed start.
func classify(name string, isHTTP bool, err error) *ServerError {
	var se *ServerError
	if errors.As(err, &se) {
		return &ServerError{Server: name, Failure: se.Failure, Err: err}
	}
	f := Failure{Kind: FailStart}
	var nf *NotFoundError
	switch {
	case errors.As(err, &nf):
		f.Kind = FailNotFound
	case errors.Is(err, context.DeadlineExceeded):
		f.Kind = FailTimedOut
	case isHTTP:
		f.Kind = FailUnavailable
	}
	return &ServerError{Server: name, Failure: f, Err: err}
}

// RemoteError is what a remote client may be told about err, an error of
// this server (from Call, WaitReady or a failed request): the classified
// sentence, or the full text when the server opts in with ShareStderr.
// Errors that are not about a failed server (a timeout, a denied tool) hold
// no output of the server and pass unchanged.
func (c *Child) RemoteError(err error) string {
	var se *ServerError
	if c.spec.ShareStderr || !errors.As(err, &se) {
		return err.Error()
	}
	return se.Failure.Sentence(c.spec.Name)
}

// RemoteError is what a remote client may be told about the status's last
// error ("" when there is none); share is the server's Spec.ShareStderr.
func (s Status) RemoteError(share bool) string {
	switch {
	case s.LastError == "":
		return ""
	case share:
		return s.LastError
	}
	return s.Failure.Sentence(s.Name)
}

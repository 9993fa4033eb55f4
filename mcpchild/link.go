package mcpchild

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// link is what an instance talks through: a child process's stdio, or an
// HTTP connection to a remote server (httplink.go). Both look the same from
// above: newline-delimited JSON-RPC messages in, whole messages out, so the
// multiplexer, the handshake and the sessions never know which one it is.
type link interface {
	// messages is the stream of newline-delimited messages from the server;
	// it ends (EOF or error) when the server is gone.
	messages() io.Reader
	// write sends one message (without a newline). It does not wait for the
	// server for a stdio child (see Session.Nonblocking).
	write(msg []byte) error
	// gone is closed once the server is gone for good: the process was
	// reaped, or the HTTP connection failed or was closed.
	gone() <-chan struct{}
	// deathError says in plain words why the server is gone.
	deathError() error
	// stop ends the process or closes the connection and waits for it.
	stop(grace time.Duration) error
	// pid is the process id, 0 for HTTP.
	pid() int
}

// stdioLink is a child process's stdin and stdout.
type stdioLink struct {
	c    *Child
	proc *process
	w    *pipeWriter
}

func newStdioLink(c *Child, p *process) *stdioLink {
	var try func([][]byte) (int, error)
	if f, ok := p.Stdin.(*os.File); ok {
		try = nonblockingWrite(f)
	}
	return &stdioLink{c: c, proc: p, w: newPipeWriter(p.Stdin, try)}
}

func (l *stdioLink) messages() io.Reader            { return l.proc.Stdout }
func (l *stdioLink) gone() <-chan struct{}          { return l.proc.Done() }
func (l *stdioLink) stop(grace time.Duration) error { return l.proc.stop(grace) }
func (l *stdioLink) pid() int                       { return l.proc.Pid }

// write queues one message for the child's stdin; it never waits for the
// child (see pipeWriter).
func (l *stdioLink) write(msg []byte) error { return l.w.write(msg) }

// deathError names the server, how it exited and the last lines of its
// stderr; its Failure says how it exited without the stderr.
func (l *stdioLink) deathError() error {
	name := l.c.spec.Name
	select {
	case <-l.proc.Done():
	default:
		return &ServerError{Server: name, Failure: Failure{Kind: FailUnavailable},
			Err: fmt.Errorf("mcp server %q closed its stdout", name)}
	}
	how := "exited: " + l.proc.ExitStatus()
	err := fmt.Errorf("mcp server %q %s", name, how)
	if tail := l.c.stderr.Tail(5); len(tail) > 0 {
		err = fmt.Errorf("mcp server %q %s; stderr: %s", name, how, strings.Join(tail, " | "))
	}
	return &ServerError{Server: name, Failure: l.proc.exitFailure(), Err: err}
}

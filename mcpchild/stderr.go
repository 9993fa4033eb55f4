package mcpchild

import (
	"bytes"
	"io"
	"log/slog"
)

// maxSinkPending bounds the partial line stderrLines holds back.
const maxSinkPending = 64 * 1024

// stderrLines cuts a child's stderr into lines, once, for both places they
// go: the Ring (the tail shown in status and crash reports, each line cut
// to maxRingLine) and the sink (the per-server log file). The sink gets
// whole lines only, all complete lines of one Write in one Write of its
// own, each ending with '\n', so that lines the bridge itself writes to the
// same file never land in the middle of a child's line. A line longer than
// maxSinkPending is passed to the sink in pieces rather than held without
// bound. A failing sink (full disk) is dropped, never allowed to stop the
// ring. Not safe for concurrent use: one goroutine drains a pipe.
type stderrLines struct {
	ring *Ring     // may be nil
	sink io.Writer // may be nil
	log  *slog.Logger

	line   []byte // the current line so far
	long   bool   // the current line went out in pieces already
	out    []byte // what the sink gets at the end of this Write
	failed bool   // the sink failed and is no longer written
}

// Write takes the next bytes of the stream. It never fails.
func (s *stderrLines) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.add(p)
			break
		}
		s.add(p[:i])
		s.endLine()
		p = p[i+1:]
	}
	s.writeSink()
	return n, nil
}

// Flush ends a partial line (output that did not end with a newline, such
// as a crash message). Call it when the stream ends.
func (s *stderrLines) Flush() {
	if len(s.line) > 0 || s.long {
		s.endLine()
	}
	s.writeSink()
	s.line = nil
}

func (s *stderrLines) add(b []byte) {
	s.line = append(s.line, b...)
	if len(s.line) <= maxSinkPending {
		return
	}
	// Too long to hold: the ring keeps its head (and marks it cut), the
	// sink gets it as a piece of a line.
	if !s.long && s.ring != nil {
		s.ring.addLine(s.line[:maxRingLine+1])
	}
	s.long = true
	if s.sink != nil {
		s.out = append(s.out, s.line...)
	}
	s.line = s.line[:0]
}

func (s *stderrLines) endLine() {
	if !s.long && s.ring != nil {
		s.ring.addLine(s.line)
	}
	if s.sink != nil {
		s.out = append(s.out, s.line...)
		s.out = append(s.out, '\n')
	}
	s.line, s.long = s.line[:0], false
	if cap(s.line) > maxSinkPending {
		s.line = nil // a long line's buffer is not kept for the short ones
	}
}

func (s *stderrLines) writeSink() {
	if len(s.out) == 0 {
		return
	}
	if s.sink != nil && !s.failed {
		if _, err := s.sink.Write(s.out); err != nil {
			if s.log != nil {
				s.log.Warn("stderr sink failed; no longer copying stderr to it", "err", err)
			}
			s.failed = true
		}
	}
	s.out = s.out[:0]
	if cap(s.out) > maxSinkPending {
		s.out = nil
	}
}

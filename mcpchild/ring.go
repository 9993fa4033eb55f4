package mcpchild

import (
	"bytes"
	"strings"
	"sync"
	"unicode/utf8"
)

// maxRingLine bounds one stored line. A child that writes a megabyte without
// a newline must not make the ring (or the crash report that shows it) huge.
const maxRingLine = 1024

// truncMark ends a line that was cut at maxRingLine bytes.
const truncMark = "…"

// Ring keeps the last N lines written to it, each at most maxRingLine bytes
// (longer lines are cut and end with "…"). It is an io.Writer for a child's
// stderr: it never blocks and never fails. Safe for concurrent use.
type Ring struct {
	mu      sync.Mutex
	lines   []string // circular once full
	next    int      // index of the oldest line once full
	full    bool
	partial []byte // the current line, not yet ended by '\n'
	cut     bool   // the current line already exceeded maxRingLine
}

// NewRing returns a ring that keeps the last lines lines (at least 1).
func NewRing(lines int) *Ring {
	if lines < 1 {
		lines = 1
	}
	return &Ring{lines: make([]string, 0, lines)}
}

// Write splits p into lines on '\n' (dropping a trailing '\r'); a partial line
// is kept until its newline arrives or Flush is called. It always returns
// len(p), nil.
func (r *Ring) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		r.appendPartial(chunk)
		if i < 0 {
			break
		}
		r.endLine()
		p = p[i+1:]
	}
	return n, nil
}

// Flush turns a pending partial line (output that did not end with a
// newline, e.g. a crash message) into a line. Call it when the stream ends.
func (r *Ring) Flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.partial) > 0 || r.cut {
		r.endLine()
	}
}

// Lines returns a copy of the stored lines, oldest first.
func (r *Ring) Lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.lines))
	if r.full {
		out = append(out, r.lines[r.next:]...)
		out = append(out, r.lines[:r.next]...)
	} else {
		out = append(out, r.lines...)
	}
	return out
}

// Tail returns the last n stored lines, oldest first.
func (r *Ring) Tail(n int) []string {
	all := r.Lines()
	if n < 0 {
		n = 0
	}
	if n < len(all) {
		all = all[len(all)-n:]
	}
	return all
}

func (r *Ring) appendPartial(b []byte) {
	if r.cut {
		return // discard the rest of an over-long line
	}
	room := maxRingLine - len(r.partial)
	if len(b) <= room {
		r.partial = append(r.partial, b...)
		return
	}
	r.partial = append(r.partial, b[:room]...)
	r.cut = true
}

func (r *Ring) endLine() {
	line := r.partial
	if !r.cut && len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	s := string(line)
	if r.cut {
		// Do not leave half a UTF-8 sequence before the mark.
		for i := 0; i < utf8.UTFMax-1 && len(s) > 0; i++ {
			if r, size := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || size != 1 {
				break
			}
			s = s[:len(s)-1]
		}
		s = strings.TrimRight(s, "\r") + truncMark
	}
	r.partial = r.partial[:0]
	r.cut = false
	if cap(r.partial) > 4*maxRingLine {
		r.partial = nil
	}
	if !r.full {
		r.lines = append(r.lines, s)
		if len(r.lines) == cap(r.lines) {
			r.full = true
		}
		return
	}
	r.lines[r.next] = s
	r.next = (r.next + 1) % len(r.lines)
}

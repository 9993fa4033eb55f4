package mcpchild

import (
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
	wmu sync.Mutex  // serialises Write and Flush
	w   stderrLines // the line splitter for Write, feeding addLine

	mu    sync.Mutex
	lines []string // circular once full
	next  int      // index of the oldest line once full
	full  bool
}

// NewRing returns a ring that keeps the last lines lines (at least 1).
func NewRing(lines int) *Ring {
	if lines < 1 {
		lines = 1
	}
	r := &Ring{lines: make([]string, 0, lines)}
	r.w.ring = r
	return r
}

// Write splits p into lines on '\n' (dropping a trailing '\r'); a partial line
// is kept until its newline arrives or Flush is called. It always returns
// len(p), nil.
func (r *Ring) Write(p []byte) (int, error) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	return r.w.Write(p)
}

// Flush turns a pending partial line (output that did not end with a
// newline, e.g. a crash message) into a line. Call it when the stream ends.
func (r *Ring) Flush() {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.w.Flush()
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

// addLine stores one line (without its '\n'), cut to maxRingLine bytes.
func (r *Ring) addLine(line []byte) {
	cut := len(line) > maxRingLine
	if cut {
		line = line[:maxRingLine]
	} else if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	s := string(line)
	if cut {
		// Do not leave half a UTF-8 sequence before the mark.
		for i := 0; i < utf8.UTFMax-1 && len(s) > 0; i++ {
			if r, size := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || size != 1 {
				break
			}
			s = s[:len(s)-1]
		}
		s = strings.TrimRight(s, "\r") + truncMark
	}
	r.mu.Lock()
	defer r.mu.Unlock()
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

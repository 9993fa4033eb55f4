package mcpchild

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"runtime"

	"github.com/tether-dev/tether/internal/jsonscan"
)

// DefaultMaxMessageBytes caps one JSON-RPC line from a child. A default
// bufio.Scanner stops at 64 KiB (mcp-go#588); tool results of many MiB are
// normal, so the cap is large and explicit.
const DefaultMaxMessageBytes = 32 << 20

// oversizePrefix is how much of an oversized line is kept, so the id of the
// response it carried can still be found and its caller told why.
const oversizePrefix = 4 << 10

// lineReader reads newline-delimited messages of any length up to max.
type lineReader struct {
	r   *bufio.Reader
	max int
}

func newLineReader(r io.Reader, max int) *lineReader {
	if max <= 0 {
		max = DefaultMaxMessageBytes
	}
	return &lineReader{r: bufio.NewReaderSize(r, lineChunk), max: max}
}

// errLineTooLong reports a line over the cap; the line was consumed whole.
type errLineTooLong struct {
	size   int64
	prefix []byte
}

func (e *errLineTooLong) Error() string { return "message over the size cap" }

// lineSlack is spare capacity after every line, so the id of a response
// can be rewritten in place (a client's id longer than the child-side one)
// without copying the message.
const lineSlack = 64

// next returns the next line without its newline, in a new slice the caller
// owns (messages are handed on to sessions, so the buffer is not reused),
// with lineSlack bytes of spare capacity. A line over max is skipped whole
// and reported as *errLineTooLong; the reader stays usable.
//
// A long line is gathered as the reader's 64 KiB chunks and copied once into
// an exact-size buffer: growing one buffer by appending would allocate about
// five times the line (append grows large slices by 1.25×) and hold two
// copies at the end; this allocates twice the line at most.
func (l *lineReader) next() ([]byte, error) {
	chunk, err := l.r.ReadSlice('\n')
	if err == nil && len(chunk) <= l.max+1 { // +1: the newline
		return ownLine(chunk), nil
	}
	var parts [][]byte
	var n, size int64
	var prefix []byte // the head of an oversized line
	tooLong := false
	for {
		size += int64(len(chunk))
		if !tooLong {
			if n+int64(len(chunk)) > int64(l.max)+1 {
				tooLong = true
				for _, p := range parts {
					prefix = append(prefix, p[:min(oversizePrefix-len(prefix), len(p))]...)
				}
				prefix = append(prefix, chunk[:max(0, min(oversizePrefix-len(prefix), len(chunk)))]...)
				parts = nil
			} else if len(chunk) > 0 {
				if n < bigLine && n+int64(len(chunk)) >= bigLine {
					// See bigLine: collect the last big message's buffers
					// now, so this one reuses their memory.
					runtime.GC()
				}
				parts = append(parts, append(make([]byte, 0, len(chunk)), chunk...))
				n += int64(len(chunk))
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			chunk, err = l.r.ReadSlice('\n')
			continue
		}
		if err != nil && (err != io.EOF || n == 0 || tooLong) {
			return nil, err
		}
		if tooLong {
			return nil, &errLineTooLong{size: size, prefix: prefix}
		}
		out := make([]byte, 0, n+lineSlack)
		for _, p := range parts {
			out = append(out, p...)
		}
		return bytes.TrimRight(out, "\r\n"), nil
	}
}

// buffered reports whether more input is already read and waiting.
func (l *lineReader) buffered() bool { return l.r.Buffered() > 0 }

const lineChunk = 64 << 10 // the reader's buffer: ReadSlice's longest chunk

// bigLine is the size past which a line triggers one garbage collection
// while it is read. A multi-MiB line lives twice for a moment (its chunks
// and its exact copy), and with the default GC pacing the heap may then
// grow to twice that before collecting, on top of the previous big
// message's buffers that nobody has collected yet: measured 4.1× the payload
// in RSS for repeated 10 MiB results. Collecting once as a big line starts
// lets it reuse that memory. One GC per multi-MiB message is cheap next to
// moving the message itself.
const bigLine = 4 << 20

// ownLine copies a line out of the reader's buffer, without its line end.
func ownLine(chunk []byte) []byte {
	chunk = bytes.TrimRight(chunk, "\r\n")
	return append(make([]byte, 0, len(chunk)+lineSlack), chunk...)
}

// peekID finds "id": in the prefix of a truncated message (writers put it
// first) and returns its raw value, or nil.
func peekID(prefix []byte) []byte {
	i := bytes.Index(prefix, []byte(`"id"`))
	if i < 0 {
		return nil
	}
	j := jsonscan.SkipSpace(prefix, i+4)
	if j >= len(prefix) || prefix[j] != ':' {
		return nil
	}
	j = jsonscan.SkipSpace(prefix, j+1)
	end, ok := jsonscan.Value(prefix, j, 1)
	if !ok {
		return nil
	}
	return prefix[j:end]
}

package mcpchild

import (
	"bufio"
	"bytes"
	"errors"
	"io"
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
	buf []byte
}

func newLineReader(r io.Reader, max int) *lineReader {
	if max <= 0 {
		max = DefaultMaxMessageBytes
	}
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// errLineTooLong reports a line over the cap; the line was consumed whole.
type errLineTooLong struct {
	size   int64
	prefix []byte
}

func (e *errLineTooLong) Error() string { return "message over the size cap" }

// next returns the next line without its newline, in a new slice the caller
// owns (messages are handed on to sessions, so the buffer is not reused). A line over max is skipped whole and reported as
// *errLineTooLong; the reader stays usable.
func (l *lineReader) next() ([]byte, error) {
	l.buf = nil
	var size int64
	tooLong := false
	for {
		chunk, err := l.r.ReadSlice('\n')
		size += int64(len(chunk))
		if !tooLong {
			if len(l.buf)+len(chunk) > l.max+1 { // +1: the newline
				tooLong = true
				keep := min(oversizePrefix-len(l.buf), len(chunk))
				if keep > 0 {
					l.buf = append(l.buf, chunk[:keep]...)
				}
			} else {
				l.buf = append(l.buf, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			if err == io.EOF && len(l.buf) > 0 && !tooLong {
				return bytes.TrimRight(l.buf, "\r\n"), nil
			}
			return nil, err
		}
		if tooLong {
			prefix := append([]byte(nil), l.buf...)
			return nil, &errLineTooLong{size: size, prefix: prefix}
		}
		return bytes.TrimRight(l.buf, "\r\n"), nil
	}
}

// peekID finds "id": in the prefix of a truncated message (writers put it
// first) and returns its raw value, or nil.
func peekID(prefix []byte) []byte {
	i := bytes.Index(prefix, []byte(`"id"`))
	if i < 0 {
		return nil
	}
	j := skipWS(prefix, i+4)
	if j >= len(prefix) || prefix[j] != ':' {
		return nil
	}
	j = skipWS(prefix, j+1)
	end, err := skipValue(prefix, j)
	if err != nil {
		return nil
	}
	return prefix[j:end]
}

package mcpchild

import (
	"errors"
	"strings"
	"testing"
)

// sinkWrites records every Write, and fails from the failAt-th on (0: never).
type sinkWrites struct {
	writes []string
	failAt int
}

func (s *sinkWrites) Write(p []byte) (int, error) {
	if s.failAt > 0 && len(s.writes)+1 >= s.failAt {
		return 0, errors.New("disk full")
	}
	s.writes = append(s.writes, string(p))
	return len(p), nil
}

// One split of the stream feeds both: the sink gets exactly the bytes in
// whole lines (a line over maxSinkPending in pieces), the ring the same
// lines, cut for display, however the stream is chunked.
func TestStderrLinesFeedRingAndSink(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", maxSinkPending+100)
	stream := "a\nb" + "c\r\n" + "\n" + long + "\n" + "é" + strings.Repeat("y", maxRingLine) + "\n" + "tail"
	for _, chunk := range []int{1, 7, 4096, len(stream)} {
		ring := NewRing(10)
		sink := &sinkWrites{}
		lines := &stderrLines{ring: ring, sink: sink}
		for i := 0; i < len(stream); i += chunk {
			lines.Write([]byte(stream[i:min(i+chunk, len(stream))]))
		}
		lines.Flush()

		if got := strings.Join(sink.writes, ""); got != stream+"\n" {
			t.Fatalf("chunk %d: the sink got %d bytes, want the stream and a final newline (%d)", chunk, len(got), len(stream)+1)
		}
		for _, w := range sink.writes {
			if !strings.HasSuffix(w, "\n") && len(w) <= maxSinkPending {
				t.Fatalf("chunk %d: the sink got a partial line %.40q", chunk, w)
			}
		}
		cutLong := strings.Repeat("x", maxRingLine) + truncMark
		cutY := "é" + strings.Repeat("y", maxRingLine-2) + truncMark
		want := []string{"a", "bc", "", cutLong, cutY, "tail"}
		if got := ring.Lines(); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("chunk %d: ring = %.200q, want %.200q", chunk, got, want)
		}
	}
}

func TestStderrLinesDropAFailingSink(t *testing.T) {
	t.Parallel()
	ring := NewRing(10)
	sink := &sinkWrites{failAt: 2}
	lines := &stderrLines{ring: ring, sink: sink}
	lines.Write([]byte("one\n"))
	lines.Write([]byte("two\n")) // fails
	lines.Write([]byte("three\n"))
	lines.Flush()
	if len(sink.writes) != 1 || sink.writes[0] != "one\n" {
		t.Fatalf("sink writes %q, want only the first", sink.writes)
	}
	if got := strings.Join(ring.Lines(), "|"); got != "one|two|three" {
		t.Fatalf("ring = %q", got)
	}
}

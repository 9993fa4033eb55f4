package mcpchild

import (
	"fmt"
	"sync"
	"time"
)

// Why the skipped-line warnings are rate-limited: a server that prints
// garbage on stdout in a tight loop produced one WARN per line in tetherd's
// own log and on its stderr (778,624 lines, 170 MB in 10 s), which cost a
// core and rotated tetherd.log every half second, so everything else in it
// was gone within seconds. Per window, the first few skipped lines are
// logged in full, a few more go only to the server's own log, and the rest
// are counted into one summary line at the end of the window.
const (
	noiseWindow   = 10 * time.Second
	noiseWarnMax  = 5   // lines per window warned about in tetherd's log
	noiseLocalMax = 100 // lines per window copied to the server's own log
)

// noiseLimiter counts the skipped stdout lines of one Child. The zero value
// is ready; window 0 means noiseWindow.
type noiseLimiter struct {
	window time.Duration

	mu    sync.Mutex
	count int // lines skipped in the current window; the window runs while count > 0
}

// skipped reports one stdout line that is not a JSON-RPC message (why says
// how). It never blocks on anything but the logs it writes, and writes them
// with no lock held.
func (n *noiseLimiter) skipped(c *Child, why string, err error, line []byte) {
	n.mu.Lock()
	n.count++
	k := n.count
	if k == 1 {
		w := n.window
		if w <= 0 {
			w = noiseWindow
		}
		time.AfterFunc(w, func() { n.endWindow(c, w) })
	}
	n.mu.Unlock()

	if k <= noiseWarnMax {
		args := []any{"line", truncate(string(line), 200)}
		if err != nil {
			args = append(args, "err", err)
		}
		c.log.Warn("skipped "+why+" on the server's stdout", args...)
	}
	if k <= noiseLocalMax {
		c.logLine("stdout (" + why + ", skipped): " + truncate(string(line), 500))
	}
}

// endWindow writes the summary of a window in which more lines were skipped
// than were logged, and starts counting afresh.
func (n *noiseLimiter) endWindow(c *Child, w time.Duration) {
	n.mu.Lock()
	count := n.count
	n.count = 0
	n.mu.Unlock()
	if more := count - noiseWarnMax; more > 0 {
		msg := fmt.Sprintf("… %d more non-JSON-RPC lines from %s in the last %s", more, c.spec.Name, w)
		c.log.Warn(msg, "skipped", more, "window", w.String())
	}
	if more := count - noiseLocalMax; more > 0 {
		c.logLine(fmt.Sprintf("… %d more skipped stdout lines in the last %s", more, w))
	}
}

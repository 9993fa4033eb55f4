package main

import "fmt"

// fileReserve is the files a relay needs besides its client connections:
// the database, logs, listeners, the TLS files, bridges' sockets in a
// burst.
const fileReserve = 256

// fileLimitAdvice says what to do when the file limit soft leaves no room
// for maxConns connections and the relay's own files ("" when it does).
// Over the limit accept fails for everyone, bridges included; under the
// cap only the over-cap connection is refused.
func fileLimitAdvice(soft uint64, maxConns int) string {
	if maxConns <= 0 {
		maxConns = 1 << 16 // no cap: want at least as many as a busy relay
	}
	need := uint64(maxConns) + fileReserve
	if soft >= need {
		return ""
	}
	return fmt.Sprintf("raise the file limit to at least %d (systemd: LimitNOFILE=%d; shell: ulimit -n %d) or lower --max-conns below %d",
		need, need, need, max(int(soft)-fileReserve, 1))
}

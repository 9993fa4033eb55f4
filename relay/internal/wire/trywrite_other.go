//go:build !unix

package wire

import "net"

// tryWrite never writes here: every write takes the deadline path.
func tryWrite(net.Conn, []byte) int { return 0 }

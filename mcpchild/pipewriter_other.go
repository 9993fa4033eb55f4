//go:build !unix

package mcpchild

import "os"

// nonblockingWrite is nil off unix: every write goes through the drain
// goroutine, so callers still never wait for the child.
func nonblockingWrite(*os.File) func([][]byte) (int, error) { return nil }

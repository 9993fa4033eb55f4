//go:build !linux

// Command bench is Tether's benchmark harness. It reads /proc for memory,
// CPU and context switches, so it runs on Linux only.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "bench: the harness reads /proc and runs on Linux only")
	os.Exit(2)
}

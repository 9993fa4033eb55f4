//go:build !linux

package main

import (
	"errors"
	"io"
)

// printUnitCmd: systemd units exist on Linux only.
func printUnitCmd([]string, io.Writer, io.Writer) error {
	return errors.New("print-unit: systemd units are for Linux")
}

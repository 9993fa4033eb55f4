package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
)

// printUnitCmd is the hidden `tetherd print-unit --exe PATH`: the systemd
// user unit `tetherd install` writes, for the program at PATH. The .deb ships
// it (packaging/build.sh), so the packaged unit and the installed one come
// from the same code.
func printUnitCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tetherd print-unit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	exe := fs.String("exe", "/usr/bin/tetherd", "absolute path of tetherd in the unit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !filepath.IsAbs(*exe) {
		return errors.New("print-unit: --exe must be an absolute path")
	}
	_, err := fmt.Fprint(stdout, renderUnit(serviceSpec{Exe: *exe, Args: serviceArgs}))
	return err
}

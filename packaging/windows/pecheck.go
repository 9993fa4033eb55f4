//go:build ignore

// pecheck asserts what a Windows binary must carry:
//
//	go run packaging/windows/pecheck.go -gui -icon dist/.../tether.exe
//
// -gui: the GUI subsystem (no console window); -icon: a resource section
// with an icon group (RT_GROUP_ICON), a manifest (RT_MANIFEST) and a version
// (RT_VERSION), i.e. the .syso from packaging/windows/winres.json was linked.
package main

import (
	"debug/pe"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
)

const (
	subsystemGUI     = 2 // IMAGE_SUBSYSTEM_WINDOWS_GUI
	subsystemConsole = 3
	rtGroupIcon      = 14
	rtVersion        = 16
	rtManifest       = 24
)

func main() {
	gui := flag.Bool("gui", false, "require the GUI subsystem (else: console)")
	icon := flag.Bool("icon", false, "require icon, manifest and version resources")
	flag.Parse()
	bad := false
	for _, path := range flag.Args() {
		if err := check(path, *gui, *icon); err != nil {
			fmt.Fprintf(os.Stderr, "pecheck: %s: %v\n", path, err)
			bad = true
		} else {
			fmt.Printf("pecheck: %s ok\n", path)
		}
	}
	if bad || flag.NArg() == 0 {
		os.Exit(1)
	}
}

func check(path string, gui, icon bool) error {
	f, err := pe.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var sub uint16
	switch h := f.OptionalHeader.(type) {
	case *pe.OptionalHeader64:
		sub = h.Subsystem
	case *pe.OptionalHeader32:
		sub = h.Subsystem
	default:
		return fmt.Errorf("no optional header")
	}
	want := uint16(subsystemConsole)
	if gui {
		want = subsystemGUI
	}
	if sub != want {
		return fmt.Errorf("subsystem %d, want %d", sub, want)
	}
	if !icon {
		return nil
	}
	s := f.Section(".rsrc")
	if s == nil {
		return fmt.Errorf("no .rsrc section (resources not linked)")
	}
	data, err := s.Data()
	if err != nil {
		return err
	}
	// The root resource directory: 16 bytes of header, then named and id
	// entries of 8 bytes each; an id entry's first word is the type.
	if len(data) < 16 {
		return fmt.Errorf("short .rsrc")
	}
	named := int(binary.LittleEndian.Uint16(data[12:]))
	ids := int(binary.LittleEndian.Uint16(data[14:]))
	types := map[uint32]bool{}
	for i := 0; i < named+ids && 16+8*i+8 <= len(data); i++ {
		types[binary.LittleEndian.Uint32(data[16+8*i:])] = true
	}
	for _, t := range []struct {
		id   uint32
		name string
	}{{rtGroupIcon, "RT_GROUP_ICON"}, {rtManifest, "RT_MANIFEST"}, {rtVersion, "RT_VERSION"}} {
		if !types[t.id] {
			return fmt.Errorf("no %s resource", t.name)
		}
	}
	return nil
}

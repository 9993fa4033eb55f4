//go:build ignore

// pecheck asserts what a Windows binary must carry:
//
//	go run packaging/windows/pecheck.go -gui -icon -version 1.2.3 dist/.../tether.exe
//
// Always: a PE whose section table is consistent (every section's raw data
// inside the file, SizeOfImage covering the last section, the resource
// directory inside .rsrc), the check that go-winres patch (build.sh stamps
// the version into tether.exe with it) left a loadable image.
// -gui: the GUI subsystem (no console window), else the console one;
// -icon: a resource section with an icon group (RT_GROUP_ICON), a manifest
// (RT_MANIFEST) and a version (RT_VERSION), i.e. packaging/windows/winres.json
// was linked; -version V: the VERSIONINFO names V (the fixed file and product
// versions are V's leading numbers, the FileVersion and ProductVersion
// strings are V itself); -nsis: an NSIS installer (its data follows the PE
// image, starting with NSIS's first header).
package main

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"unicode/utf16"
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
	version := flag.String("version", "", "require a VERSIONINFO naming this version")
	nsis := flag.Bool("nsis", false, "require an NSIS installer")
	flag.Parse()
	bad := false
	for _, path := range flag.Args() {
		if err := check(path, *gui, *icon, *version, *nsis); err != nil {
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

func check(path string, gui, icon bool, version string, nsis bool) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	f, err := pe.NewFile(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	defer f.Close()
	var sub uint16
	var sectAlign, sizeOfImage uint32
	var dirs []pe.DataDirectory
	switch h := f.OptionalHeader.(type) {
	case *pe.OptionalHeader64:
		sub, sectAlign, sizeOfImage, dirs = h.Subsystem, h.SectionAlignment, h.SizeOfImage, h.DataDirectory[:h.NumberOfRvaAndSizes]
	case *pe.OptionalHeader32:
		sub, sectAlign, sizeOfImage, dirs = h.Subsystem, h.SectionAlignment, h.SizeOfImage, h.DataDirectory[:h.NumberOfRvaAndSizes]
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

	// The section table.
	var end uint32 // end of the last section's raw data
	for i, s := range f.Sections {
		if uint64(s.Offset)+uint64(s.Size) > uint64(len(raw)) {
			return fmt.Errorf("section %s: raw data past the end of the file", s.Name)
		}
		if i > 0 {
			p := f.Sections[i-1]
			if s.VirtualAddress < p.VirtualAddress+p.VirtualSize {
				return fmt.Errorf("section %s overlaps %s", s.Name, p.Name)
			}
		}
		end = max(end, s.Offset+s.Size)
	}
	if n := len(f.Sections); n > 0 {
		last := f.Sections[n-1]
		if want := alignUp(last.VirtualAddress+last.VirtualSize, sectAlign); sizeOfImage != want {
			return fmt.Errorf("SizeOfImage %#x, want %#x", sizeOfImage, want)
		}
	}
	rsrc := f.Section(".rsrc")
	if len(dirs) > 2 && dirs[2].Size > 0 {
		d := dirs[2] // IMAGE_DIRECTORY_ENTRY_RESOURCE
		if rsrc == nil || d.VirtualAddress != rsrc.VirtualAddress || d.Size > rsrc.VirtualSize {
			return fmt.Errorf("the resource directory (%#x, %d bytes) is not the .rsrc section", d.VirtualAddress, d.Size)
		}
	}

	if nsis {
		// NSIS appends its data after the image: the first header is
		// flags, 0xDEADBEEF, "NullsoftInst", on a 512-byte boundary.
		sig := append(binary.LittleEndian.AppendUint32(nil, 0xDEADBEEF), "NullsoftInst"...)
		i := bytes.Index(raw[end:], sig)
		if i < 4 || (int(end)+i-4)%512 != 0 {
			return fmt.Errorf("no NSIS header after the PE image")
		}
	}
	if !icon && version == "" {
		return nil
	}
	if rsrc == nil {
		return fmt.Errorf("no .rsrc section (resources not linked)")
	}
	data, err := rsrc.Data()
	if err != nil {
		return err
	}
	res := resources{data: data, va: rsrc.VirtualAddress}
	if icon {
		for _, t := range []struct {
			id   uint32
			name string
		}{{rtGroupIcon, "RT_GROUP_ICON"}, {rtManifest, "RT_MANIFEST"}, {rtVersion, "RT_VERSION"}} {
			l, err := res.find(t.id)
			if err != nil {
				return err
			}
			if len(l) == 0 {
				return fmt.Errorf("no %s resource", t.name)
			}
		}
	}
	if version != "" {
		l, err := res.find(rtVersion)
		if err != nil {
			return err
		}
		if len(l) != 1 {
			return fmt.Errorf("%d RT_VERSION resources, want 1", len(l))
		}
		fixed, strs, err := parseVersionInfo(l[0])
		if err != nil {
			return fmt.Errorf("RT_VERSION: %w", err)
		}
		if w := versionNumbers(version); fixed.file != w || fixed.product != w {
			return fmt.Errorf("RT_VERSION fixed versions %v/%v, want %v", fixed.file, fixed.product, w)
		}
		for _, k := range []string{"FileVersion", "ProductVersion"} {
			if strs[k] != version {
				return fmt.Errorf("RT_VERSION %s %q, want %q", k, strs[k], version)
			}
		}
	}
	return nil
}

func alignUp(n, a uint32) uint32 {
	if a == 0 {
		return n
	}
	return (n + a - 1) / a * a
}

// resources reads the resource tree of a .rsrc section.
type resources struct {
	data []byte
	va   uint32
}

// find returns the data of every resource of one type (every name and
// language). The tree is type → name → language → data entry; a directory
// is 16 bytes of header, then named and id entries of 8 bytes each: (name
// or id, offset), the offset's top bit set when it points to a directory.
func (r resources) find(typ uint32) ([][]byte, error) {
	entries := func(off uint32) ([][2]uint32, error) {
		if int(off)+16 > len(r.data) {
			return nil, errors.New("resource directory past the section")
		}
		n := int(binary.LittleEndian.Uint16(r.data[off+12:])) + int(binary.LittleEndian.Uint16(r.data[off+14:]))
		var out [][2]uint32
		for i := 0; i < n; i++ {
			p := int(off) + 16 + 8*i
			if p+8 > len(r.data) {
				return nil, errors.New("resource entry past the section")
			}
			out = append(out, [2]uint32{binary.LittleEndian.Uint32(r.data[p:]), binary.LittleEndian.Uint32(r.data[p+4:])})
		}
		return out, nil
	}
	const dirBit = 1 << 31
	var out [][]byte
	var walk func(off uint32, depth int) error
	walk = func(off uint32, depth int) error {
		es, err := entries(off)
		if err != nil {
			return err
		}
		for _, e := range es {
			if depth == 0 && e[0] != typ {
				continue
			}
			if e[1]&dirBit != 0 {
				if depth >= 2 {
					return errors.New("resource tree deeper than type/name/language")
				}
				if err := walk(e[1]&^dirBit, depth+1); err != nil {
					return err
				}
				continue
			}
			if depth != 2 || int(e[1])+16 > len(r.data) {
				return errors.New("bad resource data entry")
			}
			rva := binary.LittleEndian.Uint32(r.data[e[1]:])
			size := binary.LittleEndian.Uint32(r.data[e[1]+4:])
			if rva < r.va || int(rva-r.va)+int(size) > len(r.data) {
				return errors.New("resource data outside .rsrc")
			}
			out = append(out, r.data[rva-r.va:rva-r.va+size])
		}
		return nil
	}
	return out, walk(0, 0)
}

type fixedVersions struct{ file, product [4]uint16 }

// parseVersionInfo reads a VS_VERSIONINFO: its VS_FIXEDFILEINFO and the
// strings of every StringTable in its StringFileInfo. Every node is
// wLength, wValueLength, wType, a NUL-terminated UTF-16 key, padding to 32
// bits, the value (wValueLength bytes, or UTF-16 words when wType is 1),
// padding, then child nodes up to wLength.
func parseVersionInfo(b []byte) (fixedVersions, map[string]string, error) {
	var fv fixedVersions
	root, err := parseNode(b)
	if err != nil {
		return fv, nil, err
	}
	if root.key != "VS_VERSION_INFO" || len(root.value) < 52 || binary.LittleEndian.Uint32(root.value) != 0xFEEF04BD {
		return fv, nil, errors.New("no VS_FIXEDFILEINFO")
	}
	words := func(ms, ls uint32) [4]uint16 {
		return [4]uint16{uint16(ms >> 16), uint16(ms), uint16(ls >> 16), uint16(ls)}
	}
	v := root.value
	fv.file = words(binary.LittleEndian.Uint32(v[8:]), binary.LittleEndian.Uint32(v[12:]))
	fv.product = words(binary.LittleEndian.Uint32(v[16:]), binary.LittleEndian.Uint32(v[20:]))
	strs := map[string]string{}
	for _, c := range root.children {
		if c.key != "StringFileInfo" {
			continue
		}
		for _, table := range c.children {
			for _, s := range table.children {
				strs[s.key] = utf16String(s.value)
			}
		}
	}
	return fv, strs, nil
}

type verNode struct {
	key      string
	value    []byte
	children []verNode
}

func parseNode(b []byte) (verNode, error) {
	var n verNode
	if len(b) < 6 {
		return n, errors.New("short node")
	}
	length := int(binary.LittleEndian.Uint16(b))
	valueLen := int(binary.LittleEndian.Uint16(b[2:]))
	if binary.LittleEndian.Uint16(b[4:]) == 1 {
		valueLen *= 2
	}
	if length < 6 || length > len(b) {
		return n, fmt.Errorf("node length %d of %d", length, len(b))
	}
	b = b[:length]
	p := 6
	for ; p+1 < len(b) && (b[p] != 0 || b[p+1] != 0); p += 2 {
	}
	n.key = utf16String(b[6:p])
	p = align4(p + 2)
	if p+valueLen > len(b) {
		return n, errors.New("value past the node")
	}
	n.value = b[p : p+valueLen]
	for p = align4(p + valueLen); p < len(b); {
		c, err := parseNode(b[p:])
		if err != nil {
			return n, err
		}
		n.children = append(n.children, c)
		p = align4(p + int(binary.LittleEndian.Uint16(b[p:])))
	}
	return n, nil
}

func align4(n int) int { return (n + 3) &^ 3 }

func utf16String(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return strings.TrimRight(string(utf16.Decode(u)), "\x00")
}

// versionNumbers is how go-winres and build.sh turn a version string into
// the four numbers of VS_FIXEDFILEINFO: its leading digits and dots, up to
// four parts, the rest zero ("1.2.3-rc.1" → 1.2.3.0).
func versionNumbers(v string) [4]uint16 {
	var out [4]uint16
	part := 0
	for _, c := range v {
		switch {
		case c >= '0' && c <= '9':
			out[part] = out[part]*10 + uint16(c-'0')
		case c == '.' && part < 3:
			part++
		default:
			return out
		}
	}
	return out
}

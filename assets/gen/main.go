// Command gen draws the tray icons in assets/: one glyph (two nodes joined by
// a link, the "tether") in four states, as colour PNGs for Linux, ICO files
// for Windows and monochrome template PNGs for macOS. The glyph's shape
// changes with the state as well as its colour, so the monochrome macOS
// icons (and colour-blind users) can still tell the states apart:
//
//	connected   filled nodes, solid link
//	connecting  filled nodes, dotted link
//	offline     hollow nodes, no link
//	attention   filled nodes, solid link, and a badge dot top right
//
// Run it with `go generate ./assets` (or `go run ./assets/gen -out assets`);
// the outputs are committed so a build needs no generator.
package main

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
)

type state struct {
	name  string
	fill  color.NRGBA // the glyph on Linux and Windows
	badge bool
	link  string // solid, dotted, none
	solid bool   // filled nodes (else rings)
}

var states = []state{
	{name: "connected", fill: color.NRGBA{0x1f, 0x9d, 0x55, 0xff}, link: "solid", solid: true},
	{name: "connecting", fill: color.NRGBA{0xe0, 0x9b, 0x14, 0xff}, link: "dotted", solid: true},
	{name: "offline", fill: color.NRGBA{0x80, 0x86, 0x8b, 0xff}, link: "none"},
	{name: "attention", fill: color.NRGBA{0xd9, 0x3b, 0x2f, 0xff}, link: "solid", solid: true, badge: true},
}

func main() {
	out := flag.String("out", ".", "folder to write the icons into")
	flag.Parse()
	for _, s := range states {
		write(filepath.Join(*out, s.name+".png"), encodePNG(draw(s, 64, s.fill, true)))
		write(filepath.Join(*out, s.name+"-template.png"), encodePNG(draw(s, 44, color.NRGBA{0, 0, 0, 0xff}, false)))
		write(filepath.Join(*out, s.name+".ico"), encodeICO(draw(s, 16, s.fill, true), draw(s, 32, s.fill, true)))
	}
}

func write(path string, data []byte) {
	if err := os.WriteFile(path, data, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// draw renders the glyph at size×size with 4×4 supersampling for smooth
// edges. On colour icons the badge is a white-ringed dot in the same colour;
// on templates it is a plain dot cut free of the node by a gap.
func draw(s state, size int, c color.NRGBA, colour bool) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	const ss = 4
	for y := range size {
		for x := range size {
			hit := 0
			for sy := range ss {
				for sx := range ss {
					// glyph coordinates: the unit square
					u := (float64(x) + (float64(sx)+0.5)/ss) / float64(size)
					v := (float64(y) + (float64(sy)+0.5)/ss) / float64(size)
					if inGlyph(s, u, v) {
						hit++
					}
				}
			}
			if hit > 0 {
				a := uint8(int(c.A) * hit / (ss * ss))
				img.SetNRGBA(x, y, color.NRGBA{c.R, c.G, c.B, a})
			}
		}
	}
	return img
}

// inGlyph says whether the point (u, v) of the unit square is inked.
func inGlyph(s state, u, v float64) bool {
	// Two nodes on the rising diagonal, joined by a link.
	ax, ay, bx, by := 0.27, 0.73, 0.73, 0.27
	const r, ring = 0.17, 0.065
	da, db := math.Hypot(u-ax, v-ay), math.Hypot(u-bx, v-by)
	if s.badge {
		const cx, cy, br, gap = 0.86, 0.14, 0.13, 0.05
		d := math.Hypot(u-cx, v-cy)
		if d <= br {
			return true
		}
		if d <= br+gap {
			return false // keep the badge apart from the node under it
		}
	}
	node := func(d float64) bool {
		if s.solid {
			return d <= r
		}
		return d <= r && d >= r-ring
	}
	if node(da) || node(db) {
		return true
	}
	// distance from the link's centre line, and position t along it
	dx, dy := bx-ax, by-ay
	l := math.Hypot(dx, dy)
	t := ((u-ax)*dx + (v-ay)*dy) / (l * l)
	dist := math.Abs((u-ax)*dy-(v-ay)*dx) / l
	if t < 0 || t > 1 || dist > 0.055 || da < r || db < r {
		return false
	}
	switch s.link {
	case "solid":
		return true
	case "dotted":
		// three dashes between the nodes
		along := t*l - r
		span := l - 2*r
		if along < 0 || along > span {
			return false
		}
		return int(along/(span/5))%2 == 0
	}
	return false
}

func encodePNG(img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// encodeICO writes an ICO with classic 32-bit BMP images (BGRA rows bottom
// up, then a 1-bit AND mask), which every Windows version's LoadImage reads.
func encodeICO(imgs ...*image.NRGBA) []byte {
	var dir, data bytes.Buffer
	le := binary.LittleEndian
	binary.Write(&dir, le, [3]uint16{0, 1, uint16(len(imgs))}) // reserved, type icon, count
	offset := 6 + 16*len(imgs)
	for _, img := range imgs {
		bmp := bmpData(img)
		w := img.Bounds().Dx()
		binary.Write(&dir, le, struct {
			W, H, Colors, Reserved uint8
			Planes, BPP            uint16
			Size, Offset           uint32
		}{uint8(w), uint8(w), 0, 0, 1, 32, uint32(len(bmp)), uint32(offset)})
		offset += len(bmp)
		data.Write(bmp)
	}
	dir.Write(data.Bytes())
	return dir.Bytes()
}

func bmpData(img *image.NRGBA) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	maskRow := ((w + 31) / 32) * 4
	binary.Write(&b, le, struct {
		Size                  uint32
		W, H                  int32
		Planes, BPP           uint16
		Compression, ImgSize  uint32
		XPPM, YPPM, Used, Imp int32
	}{40, int32(w), int32(2 * h), 1, 32, 0, uint32(w*h*4 + maskRow*h), 0, 0, 0, 0})
	for y := h - 1; y >= 0; y-- {
		for x := range w {
			c := img.NRGBAAt(x, y)
			b.Write([]byte{c.B, c.G, c.R, c.A})
		}
	}
	// The AND mask is all zero: the alpha channel already says what shows.
	b.Write(make([]byte, maskRow*h))
	return b.Bytes()
}

//go:build ignore

// mkicns writes a macOS .icns from a square PNG, in pure Go (no iconutil):
//
//	go run packaging/macos/mkicns.go -in assets/connected.png -out Tether.icns
//
// An .icns is "icns", the total length, then (type, length, data) entries;
// since macOS 10.7 the data of icp4/icp5/icp6/ic07… is a plain PNG. The
// source is 64×64, so the file holds 16, 32 and 64 px images (downscaled by
// averaging); a 512 px master in assets/ would give Finder sharper icons.
package main

import (
	"bytes"
	"encoding/binary"
	"flag"
	"image"
	"image/color"
	"image/png"
	"log"
	"os"
)

func main() {
	in := flag.String("in", "", "square PNG")
	out := flag.String("out", "", ".icns to write")
	flag.Parse()
	f, err := os.Open(*in)
	if err != nil {
		log.Fatal(err)
	}
	src, err := png.Decode(f)
	f.Close()
	if err != nil {
		log.Fatal(err)
	}
	n := src.Bounds().Dx()
	if src.Bounds().Dy() != n {
		log.Fatalf("%s is not square", *in)
	}
	var body bytes.Buffer
	for _, e := range []struct {
		typ  string
		size int
	}{{"icp4", 16}, {"icp5", 32}, {"icp6", 64}, {"ic07", 128}} {
		if e.size > n {
			continue // no upscaling: it only blurs
		}
		var p bytes.Buffer
		if err := png.Encode(&p, shrink(src, e.size)); err != nil {
			log.Fatal(err)
		}
		body.WriteString(e.typ)
		binary.Write(&body, binary.BigEndian, uint32(8+p.Len()))
		body.Write(p.Bytes())
	}
	var file bytes.Buffer
	file.WriteString("icns")
	binary.Write(&file, binary.BigEndian, uint32(8+body.Len()))
	file.Write(body.Bytes())
	if err := os.WriteFile(*out, file.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
}

// shrink averages k×k blocks (k = source size / size, an integer here).
func shrink(src image.Image, size int) image.Image {
	b := src.Bounds()
	k := b.Dx() / size
	dst := image.NewNRGBA(image.Rect(0, 0, size, size))
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			var r, g, bl, a uint32
			for dy := 0; dy < k; dy++ {
				for dx := 0; dx < k; dx++ {
					c := color.NRGBAModel.Convert(src.At(b.Min.X+x*k+dx, b.Min.Y+y*k+dy)).(color.NRGBA)
					// Weight colour by alpha so transparent edges do not darken.
					r += uint32(c.R) * uint32(c.A)
					g += uint32(c.G) * uint32(c.A)
					bl += uint32(c.B) * uint32(c.A)
					a += uint32(c.A)
				}
			}
			px := color.NRGBA{A: uint8(a / uint32(k*k))}
			if a > 0 {
				px.R, px.G, px.B = uint8(r/a), uint8(g/a), uint8(bl/a)
			}
			dst.SetNRGBA(x, y, px)
		}
	}
	return dst
}

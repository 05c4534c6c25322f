package wire_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/raptormq/raptor/wire"
)

// TestNewTokenFrame: encodings byte by byte, invalid lengths refused by the
// encoder, every prefix of a valid frame truncated, and the frame parser
// returning it from a packet payload.
func TestNewTokenFrame(t *testing.T) {
	tests := []struct {
		name string
		tok  []byte
		want []byte // nil: Append must fail
	}{
		{"one byte", []byte{0xaa}, []byte{0x0b, 0x01, 0xaa}},
		{"25 bytes", seq(25), append([]byte{0x0b, 0x19}, seq(25)...)},
		{"64 bytes: 2-byte length", seq(64), append([]byte{0x0b, 0x40, 0x40}, seq(64)...)},
		{"256 bytes", seq(256), append([]byte{0x0b, 0x41, 0x00}, seq(256)...)},
		{"empty", nil, nil},
		{"257 bytes", seq(257), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := wire.NewTokenFrame{Token: tt.tok}
			b, err := f.Append([]byte{0xff})
			if tt.want == nil {
				if err == nil || len(b) != 1 {
					t.Fatalf("Append of a %d-byte token = % x, %v; want an error and nothing appended", len(tt.tok), b, err)
				}
				return
			}
			if err != nil || !bytes.Equal(b[1:], tt.want) {
				t.Fatalf("Append = % x, %v; want % x", b[1:], err, tt.want)
			}
			if f.Length() != len(tt.want) {
				t.Fatalf("Length %d, encoded %d", f.Length(), len(tt.want))
			}
			g, n, err := wire.ParseNewTokenFrame(tt.want)
			if err != nil || n != len(tt.want) || !bytes.Equal(g.Token, tt.tok) {
				t.Fatalf("parse = %x, %d, %v", g.Token, n, err)
			}
			for i := 0; i < len(tt.want); i++ {
				if _, n, err := wire.ParseNewTokenFrame(tt.want[:i]); err == nil || n != 0 || !errors.Is(err, wire.ErrTruncated) {
					t.Fatalf("prefix of %d bytes: consumed %d, err %v; want truncated", i, n, err)
				}
			}
			var p wire.FrameParser
			fr, n, err := p.ParseNext(append(bytes.Clone(tt.want), byte(wire.FramePing)))
			nt, ok := fr.(*wire.NewTokenFrame)
			if err != nil || !ok || n != len(tt.want) || !bytes.Equal(nt.Token, tt.tok) {
				t.Fatalf("FrameParser = %T %d %v", fr, n, err)
			}
		})
	}
	for _, bad := range [][]byte{{0x0b, 0x00}, {0x0b, 0x41, 0x01}, {0x0a, 0x01, 0x00}} {
		if _, n, err := wire.ParseNewTokenFrame(bad); err == nil || n != 0 {
			t.Errorf("% x parsed (consumed %d)", bad, n)
		}
	}
}

// FuzzNewTokenFrame parses a NEW_TOKEN frame; what parses re-encodes to a
// frame that parses to the same token (varints need not be minimal).
func FuzzNewTokenFrame(f *testing.F) {
	for _, tok := range [][]byte{{1}, seq(25), seq(256)} {
		nf := wire.NewTokenFrame{Token: tok}
		b, _ := nf.Append(nil)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		nf, n, err := wire.ParseNewTokenFrame(data)
		if err != nil {
			if n != 0 {
				t.Fatalf("consumed %d with error %v", n, err)
			}
			return
		}
		if len(nf.Token) == 0 || len(nf.Token) > wire.MaxTokenLen {
			t.Fatalf("token of %d bytes parsed", len(nf.Token))
		}
		re, err := nf.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		g, m, err := wire.ParseNewTokenFrame(re)
		if err != nil || m != len(re) || m > n || !bytes.Equal(g.Token, nf.Token) {
			t.Fatalf("re-parse of % x = %x, %d, %v; want %x", re, g.Token, m, err, nf.Token)
		}
	})
}

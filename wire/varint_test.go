package wire_test

import (
	"bytes"
	"testing"

	"github.com/raptormq/raptor/wire"
)

func TestVarintBoundaries(t *testing.T) {
	tests := []struct {
		v   uint64
		enc []byte
	}{
		{0, []byte{0x00}},
		{63, []byte{0x3f}},
		{64, []byte{0x40, 0x40}},
		{16383, []byte{0x7f, 0xff}},
		{16384, []byte{0x80, 0x00, 0x40, 0x00}},
		{1<<30 - 1, []byte{0xbf, 0xff, 0xff, 0xff}},
		{1 << 30, []byte{0xc0, 0, 0, 0, 0x40, 0, 0, 0}},
		{1<<62 - 1, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
	}
	for _, tt := range tests {
		if got := wire.VarintLen(tt.v); got != len(tt.enc) {
			t.Errorf("VarintLen(%d) = %d, want %d", tt.v, got, len(tt.enc))
		}
		got := wire.AppendVarint([]byte{0xaa}, tt.v)
		if !bytes.Equal(got[1:], tt.enc) || got[0] != 0xaa {
			t.Errorf("AppendVarint(%d) = % x, want aa % x", tt.v, got, tt.enc)
		}
		v, n := wire.ReadVarint(append(append([]byte{}, tt.enc...), 0xff, 0xff))
		if v != tt.v || n != len(tt.enc) {
			t.Errorf("ReadVarint(% x) = %d, %d; want %d, %d", tt.enc, v, n, tt.v, len(tt.enc))
		}
		for k := range len(tt.enc) {
			if v, n := wire.ReadVarint(tt.enc[:k]); n != 0 {
				t.Errorf("ReadVarint of %d-byte prefix of % x = %d, %d; want n == 0", k, tt.enc, v, n)
			}
		}
	}
}

func TestVarintOutOfRange(t *testing.T) {
	if n := wire.VarintLen(1 << 62); n != 0 {
		t.Errorf("VarintLen(2^62) = %d, want 0", n)
	}
	// Encoders check before calling; AppendVarint clamps rather than wrapping.
	if got, want := wire.AppendVarint(nil, 1<<63), wire.AppendVarint(nil, wire.MaxVarint); !bytes.Equal(got, want) {
		t.Errorf("AppendVarint(2^63) = % x, want clamped % x", got, want)
	}
}

// A non-minimal encoding is accepted by the reader (docs/PROTOCOL.md §3.1).
func TestVarintNonMinimal(t *testing.T) {
	for _, enc := range [][]byte{{0x40, 0x05}, {0x80, 0, 0, 5}, {0xc0, 0, 0, 0, 0, 0, 0, 5}} {
		if v, n := wire.ReadVarint(enc); v != 5 || n != len(enc) {
			t.Errorf("ReadVarint(% x) = %d, %d; want 5, %d", enc, v, n, len(enc))
		}
	}
}

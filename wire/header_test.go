package wire_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/raptormq/raptor/wire"
)

var (
	cidA = wire.ConnID{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}
	cidB = wire.ConnID{0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18}
)

func TestLongHeaderRoundTrip(t *testing.T) {
	for _, typ := range []wire.LongType{wire.TypeInitial, wire.TypeRetry, wire.TypeHandshake, wire.TypeVersionNegotiation} {
		for _, version := range []uint32{wire.Version1, 0, 0xffffffff} {
			h := wire.LongHeader{Type: typ, Version: version, DstID: cidA, SrcID: cidB}
			enc := h.Append([]byte{0xee})[1:]
			if len(enc) != wire.LongHeaderLen {
				t.Errorf("%v: encoded %d bytes, want LongHeaderLen = %d", typ, len(enc), wire.LongHeaderLen)
			}
			if want := byte(0xc0 | typ); enc[0] != want {
				t.Errorf("%v: first byte %#x, want %#x", typ, enc[0], want)
			}
			if !wire.IsLongHeader(enc) {
				t.Errorf("%v: IsLongHeader = false", typ)
			}
			got, n, err := wire.ParseLongHeader(append(enc, 1, 2, 3))
			if err != nil || n != wire.LongHeaderLen || got != h {
				t.Errorf("ParseLongHeader(% x) = %+v, %d, %v; want %+v, %d", enc, got, n, err, h, wire.LongHeaderLen)
			}
			if id, ok := wire.PeekDstID(enc); !ok || id != cidA {
				t.Errorf("%v: PeekDstID = %x, %v; want %x", typ, id, ok, cidA)
			}
			for k := range len(enc) {
				_, _, err := wire.ParseLongHeader(append([]byte(nil), enc[:k]...))
				wantTruncated(t, fmt.Sprintf("%v: %d-byte prefix", typ, k), err)
			}
		}
	}
	// Version1 is "RPT" followed by 1.
	enc := (&wire.LongHeader{Version: wire.Version1}).Append(nil)
	if !bytes.Equal(enc[1:5], []byte{'R', 'P', 'T', 1}) {
		t.Errorf("version bytes % x, want 52 50 54 01", enc[1:5])
	}
}

func TestLongHeaderInvalid(t *testing.T) {
	valid := (&wire.LongHeader{Type: wire.TypeHandshake, Version: wire.Version1, DstID: cidA, SrcID: cidB}).Append(nil)
	for _, first := range []byte{0xd0, 0xe0, 0xf0, 0xc4, 0xc5, 0xcf, 0x80, 0x83, 0x40, 0x00} {
		b := append([]byte{first}, valid[1:]...)
		_, n, err := wire.ParseLongHeader(b)
		wantFormatError(t, fmt.Sprintf("first byte %#x", first), err)
		if n != 0 {
			t.Errorf("first byte %#x: consumed %d with the error", first, n)
		}
	}
}

func TestShortHeaderRoundTrip(t *testing.T) {
	for _, pn := range []uint64{0, 1, 63, 64, 16383, 16384, 1<<30 - 1, 1 << 30, wire.MaxPacketNumber} {
		h := wire.ShortHeader{DstID: cidB, PacketNumber: pn}
		enc := h.Append([]byte{0xee})[1:]
		if len(enc) != h.Len() || h.Len() != 1+wire.ConnIDLen+wire.VarintLen(pn) {
			t.Errorf("pn %d: encoded %d bytes, Len() = %d", pn, len(enc), h.Len())
		}
		if enc[0] != 0x40 {
			t.Errorf("pn %d: first byte %#x, want 0x40", pn, enc[0])
		}
		if wire.IsLongHeader(enc) {
			t.Errorf("pn %d: IsLongHeader = true", pn)
		}
		got, n, err := wire.ParseShortHeader(append(enc, 0x02, 0x03))
		if err != nil || n != len(enc) || got != h {
			t.Errorf("ParseShortHeader(% x) = %+v, %d, %v; want %+v, %d", enc, got, n, err, h, len(enc))
		}
		if id, ok := wire.PeekDstID(enc); !ok || id != cidB {
			t.Errorf("pn %d: PeekDstID = %x, %v; want %x", pn, id, ok, cidB)
		}
		for k := range len(enc) {
			_, n, err := wire.ParseShortHeader(append([]byte(nil), enc[:k]...))
			wantTruncated(t, fmt.Sprintf("pn %d: %d-byte prefix", pn, k), err)
			if n != 0 {
				t.Errorf("pn %d: %d-byte prefix consumed %d", pn, k, n)
			}
		}
	}
}

func TestShortHeaderKeyPhase(t *testing.T) {
	h := wire.ShortHeader{DstID: cidA, PacketNumber: 77, KeyPhase: true}
	enc := h.Append(nil)
	if enc[0] != 0x44 {
		t.Fatalf("first byte %#x, want 0x44", enc[0])
	}
	if got, n, err := wire.ParseShortHeader(enc); err != nil || n != len(enc) || got != h {
		t.Fatalf("ParseShortHeader(% x) = %+v, %d, %v; want %+v", enc, got, n, err, h)
	}
}

func TestShortHeaderInvalid(t *testing.T) {
	valid := (&wire.ShortHeader{DstID: cidA, PacketNumber: 5}).Append(nil)
	firsts := []byte{0x00, 0x80, 0xc0}
	for bit := range 6 {
		if 1<<bit != 0x04 { // the key phase bit
			firsts = append(firsts, 0x40|1<<bit)
		}
	}
	for _, first := range firsts {
		b := append([]byte{first}, valid[1:]...)
		_, n, err := wire.ParseShortHeader(b)
		wantFormatError(t, fmt.Sprintf("first byte %#x", first), err)
		if n != 0 {
			t.Errorf("first byte %#x: consumed %d with the error", first, n)
		}
	}
}

func TestPeekDstID(t *testing.T) {
	long := (&wire.LongHeader{Type: wire.TypeInitial, Version: wire.Version1, DstID: cidA, SrcID: cidB}).Append(nil)
	short := (&wire.ShortHeader{DstID: cidB, PacketNumber: 1}).Append(nil)
	tests := []struct {
		name string
		b    []byte
		id   wire.ConnID
		ok   bool
	}{
		{"empty", nil, wire.ConnID{}, false},
		{"long", long, cidA, true},
		{"long, unknown version", append([]byte{long[0], 9, 9, 9, 9}, long[5:]...), cidA, true},
		{"long 20 bytes", long[:wire.LongHeaderLen-1], wire.ConnID{}, false},
		{"short", short, cidB, true},
		{"short without packet number", short[:1+wire.ConnIDLen], cidB, true},
		{"short 8 bytes", short[:wire.ConnIDLen], wire.ConnID{}, false},
		{"fixed bit clear, short", append([]byte{0x00}, short[1:]...), wire.ConnID{}, false},
		{"fixed bit clear, long", append([]byte{0x80}, long[1:]...), wire.ConnID{}, false},
	}
	for _, tt := range tests {
		id, ok := wire.PeekDstID(tt.b)
		if id != tt.id || ok != tt.ok {
			t.Errorf("%s: PeekDstID = %x, %v; want %x, %v", tt.name, id, ok, tt.id, tt.ok)
		}
	}
}

func TestHeaderAllocs(t *testing.T) {
	buf := make([]byte, 0, 64)
	sh := wire.ShortHeader{DstID: cidA, PacketNumber: 1 << 40}
	lh := wire.LongHeader{Type: wire.TypeHandshake, Version: wire.Version1, DstID: cidA, SrcID: cidB}
	pkt := sh.Append(nil)
	allocs := testing.AllocsPerRun(100, func() {
		b := sh.Append(buf[:0])
		lh.Append(b)
		if _, _, err := wire.ParseShortHeader(pkt); err != nil {
			t.Fatal(err)
		}
		if _, ok := wire.PeekDstID(pkt); !ok {
			t.Fatal("PeekDstID failed")
		}
	})
	if allocs != 0 {
		t.Errorf("header append/parse allocates %v times, want 0", allocs)
	}
}

func TestLongTypeString(t *testing.T) {
	for typ, want := range map[wire.LongType]string{0: "Initial", 1: "Retry", 2: "Handshake", 3: "VersionNegotiation", 9: "LongType(?)"} {
		if got := typ.String(); got != want {
			t.Errorf("LongType(%d).String() = %q, want %q", typ, got, want)
		}
	}
}

package wire_test

import (
	"bytes"
	"testing"

	"github.com/raptormq/raptor/wire"
)

// FuzzFrameParser parses a packet payload frame by frame. Every frame that
// parses must re-encode to Length() bytes and parse back to the same value.
func FuzzFrameParser(f *testing.F) {
	for _, tt := range frameTests {
		f.Add(mustAppend(f, tt.f, nil))
	}
	f.Add(benchPacket(f)[1+wire.ConnIDLen+4:])
	f.Add(append(make([]byte, 5), byte(wire.FramePing), byte(wire.FrameNak), 1, 0x40, 0x05, 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		var p, q wire.FrameParser
		for b := data; len(b) > 0; {
			fr, n, err := p.ParseNext(b)
			if err != nil {
				if n != 0 || fr != nil {
					t.Fatalf("ParseNext returned %v, %d with error %v", fr, n, err)
				}
				return
			}
			if n <= 0 || n > len(b) {
				t.Fatalf("ParseNext consumed %d of %d bytes", n, len(b))
			}
			b = b[n:]
			if fr == nil { // only padding was left
				if len(b) != 0 {
					t.Fatalf("nil frame with %d bytes left", len(b))
				}
				return
			}
			want := show(fr)
			enc, err := fr.Append(nil)
			if err != nil {
				t.Fatalf("re-encoding parsed %s: %v", want, err)
			}
			if len(enc) != fr.Length() {
				t.Fatalf("%s: Length() = %d, encoding has %d bytes", want, fr.Length(), len(enc))
			}
			// A STREAM frame without length takes the rest, so enc is alone.
			got, m, err := q.ParseNext(enc)
			if err != nil || m != len(enc) || show(got) != want {
				t.Fatalf("re-parse of % x = %s, %d, %v; want %s, %d", enc, show(got), m, err, want, len(enc))
			}
		}
	})
}

// FuzzShortHeader checks ParseShortHeader and PeekDstID against each other
// and that a parsed header re-encodes to the same value.
func FuzzShortHeader(f *testing.F) {
	for _, pn := range []uint64{0, 63, 64, 16384, 1 << 30, wire.MaxPacketNumber} {
		f.Add((&wire.ShortHeader{DstID: cidA, PacketNumber: pn}).Append(nil))
	}
	f.Add(benchPacket(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, n, err := wire.ParseShortHeader(data)
		if err != nil {
			if n != 0 {
				t.Fatalf("consumed %d with error %v", n, err)
			}
			return
		}
		if n > len(data) || n < 1+wire.ConnIDLen+1 {
			t.Fatalf("consumed %d of %d", n, len(data))
		}
		if id, ok := wire.PeekDstID(data); !ok || id != h.DstID || wire.IsLongHeader(data) {
			t.Fatalf("PeekDstID = %x, %v; header has %x", id, ok, h.DstID)
		}
		enc := h.Append(nil)
		if len(enc) != h.Len() {
			t.Fatalf("Len() = %d, encoding has %d bytes", h.Len(), len(enc))
		}
		h2, m, err := wire.ParseShortHeader(enc)
		if err != nil || m != len(enc) || h2 != h {
			t.Fatalf("re-parse = %+v, %d, %v; want %+v", h2, m, err, h)
		}
	})
}

// FuzzLongHeader parses a handshake datagram: the long header and then the
// body its type calls for. What parses must re-encode and parse back equal;
// Retry and VersionNegotiation verify only with their integrity tag.
func FuzzLongHeader(f *testing.F) {
	odcid := wire.ConnID{7, 7, 7, 7, 7, 7, 7, 7}
	cf := wire.CryptoFrame{Offset: 5, Data: seq(100)}
	initial, _ := cf.Append(wire.AppendInitialHeader(nil, longHeader(wire.TypeInitial), seq(24)))
	f.Add(wire.PadInitial(initial, 0))
	f.Add(wire.PadInitial(wire.AppendInitialHeader(nil, longHeader(wire.TypeInitial), nil), 0))
	f.Add(wire.AppendRetry(nil, longHeader(wire.TypeRetry), seq(24), odcid))
	f.Add(append(wire.AppendHandshakeHeader(nil, longHeader(wire.TypeHandshake), 77), seq(40)...))
	f.Add(wire.AppendVersionNegotiation(nil, cidA, odcid))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, n, err := wire.ParseLongHeader(data)
		if err != nil {
			if n != 0 {
				t.Fatalf("consumed %d with error %v", n, err)
			}
			return
		}
		if n != wire.LongHeaderLen || !wire.IsLongHeader(data) {
			t.Fatalf("consumed %d, want %d", n, wire.LongHeaderLen)
		}
		if id, ok := wire.PeekDstID(data); !ok || id != h.DstID {
			t.Fatalf("PeekDstID = %x, %v; header has %x", id, ok, h.DstID)
		}
		// The header's encoding is canonical: no varints, reserved bits zero.
		if enc := h.Append(nil); !bytes.Equal(enc, data[:n]) {
			t.Fatalf("header re-encodes to % x, was % x", enc, data[:n])
		}
		body := data[n:]
		switch h.Type {
		case wire.TypeInitial:
			token, frames, err := wire.ParseInitial(body)
			if err != nil {
				return
			}
			re := append(wire.AppendInitialHeader(nil, h, token), frames...)
			token2, frames2, err := wire.ParseInitial(re[n:])
			if err != nil || !bytes.Equal(token2, token) || !bytes.Equal(frames2, frames) {
				t.Fatalf("Initial re-parse = % x, % x, %v; want % x, % x", token2, frames2, err, token, frames)
			}
			var fp wire.HandshakeFrameParser
			for b := frames; len(b) > 0; {
				f, m, err := fp.ParseNext(b)
				if err != nil {
					break
				}
				if m <= 0 || m > len(b) || (f != nil && f.Length() > m) {
					t.Fatalf("frame %v consumed %d of %d", f, m, len(b))
				}
				b = b[m:]
			}
		case wire.TypeRetry:
			token, err := wire.ParseRetry(data, odcid)
			if err != nil {
				return
			}
			re := wire.AppendRetry(nil, h, token, odcid)
			if token2, err := wire.ParseRetry(re, odcid); err != nil || !bytes.Equal(token2, token) {
				t.Fatalf("Retry re-parse = % x, %v; want % x", token2, err, token)
			}
		case wire.TypeHandshake:
			if _, m := wire.ReadVarint(body); m == 0 && len(body) > 0 {
				return
			}
		case wire.TypeVersionNegotiation:
			vs, err := wire.ParseVersionNegotiation(nil, data, odcid)
			if err != nil {
				return
			}
			if len(vs) == 0 || len(vs) > 16 {
				t.Fatalf("%d versions", len(vs))
			}
		default:
			t.Fatalf("parsed unknown type %d", h.Type)
		}
	})
}

// FuzzCryptoFrame parses a CRYPTO frame; what parses re-encodes to the same bytes.
func FuzzCryptoFrame(f *testing.F) {
	for _, cf := range []wire.CryptoFrame{{}, {Offset: 3, Data: seq(20)}, {Offset: wire.MaxCryptoData - 4, Data: seq(4)}} {
		b, _ := cf.Append(nil)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cf, n, err := wire.ParseCryptoFrame(data)
		if err != nil {
			if n != 0 {
				t.Fatalf("consumed %d with error %v", n, err)
			}
			return
		}
		if cf.Offset+uint64(len(cf.Data)) > wire.MaxCryptoData {
			t.Fatalf("frame ends at %d", cf.Offset+uint64(len(cf.Data)))
		}
		re, err := cf.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		g, m, err := wire.ParseCryptoFrame(re)
		if err != nil || m != len(re) || g.Offset != cf.Offset || !bytes.Equal(g.Data, cf.Data) {
			t.Fatalf("re-parse of % x = %+v, %d, %v; want %+v", re, g, m, err, cf)
		}
	})
}

// FuzzParams parses a transport-parameter list; what parses re-encodes to a
// list that parses to the same parameters.
func FuzzParams(f *testing.F) {
	for _, tt := range paramsTests {
		f.Add(tt.p.Append(nil))
	}
	f.Add(params(7, 99, 1, 10, 3, 1, 3, 2))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, n, err := wire.ParseParams(data)
		if err != nil {
			if n != 0 {
				t.Fatalf("consumed %d with error %v", n, err)
			}
			return
		}
		if n <= 0 || n > len(data) {
			t.Fatalf("consumed %d of %d", n, len(data))
		}
		enc := p.Append(nil)
		p2, m, err := wire.ParseParams(enc)
		if err != nil || m != len(enc) || p2 != p {
			t.Fatalf("re-parse of % x = %+v, %d, %v; want %+v", enc, p2, m, err, p)
		}
	})
}

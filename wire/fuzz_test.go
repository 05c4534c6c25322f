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
// body its type calls for. What parses must re-encode and parse back equal.
func FuzzLongHeader(f *testing.F) {
	p := defaultParams
	f.Add(wire.AppendInitial(nil, longHeader(wire.TypeInitial), nil, &p))
	f.Add(wire.AppendInitial(nil, longHeader(wire.TypeInitial), seq(24), &wire.Params{MaxStreams: 1}))
	f.Add(wire.AppendRetry(nil, longHeader(wire.TypeRetry), seq(24)))
	f.Add(wire.AppendAccept(nil, longHeader(wire.TypeAccept), &p))
	f.Add(wire.AppendVersionNegotiation(nil, cidA, cidB))
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
		var re []byte
		switch h.Type {
		case wire.TypeInitial:
			token, p, err := wire.ParseInitial(body, len(data))
			if err != nil {
				return
			}
			re = wire.AppendInitial(nil, h, token, &p)
			if len(re) != wire.MinInitialSize {
				t.Fatalf("re-encoded Initial has %d bytes", len(re))
			}
			token2, p2, err := wire.ParseInitial(re[n:], len(re))
			if err != nil || !bytes.Equal(token2, token) || p2 != p {
				t.Fatalf("Initial re-parse = % x, %+v, %v; want % x, %+v", token2, p2, err, token, p)
			}
		case wire.TypeRetry:
			token, err := wire.ParseRetry(body)
			if err != nil {
				return
			}
			re = wire.AppendRetry(nil, h, token)
			token2, err := wire.ParseRetry(re[n:])
			if err != nil || !bytes.Equal(token2, token) {
				t.Fatalf("Retry re-parse = % x, %v; want % x", token2, err, token)
			}
		case wire.TypeAccept:
			p, err := wire.ParseAccept(body)
			if err != nil {
				return
			}
			re = wire.AppendAccept(nil, h, &p)
			p2, err := wire.ParseAccept(re[n:])
			if err != nil || p2 != p {
				t.Fatalf("Accept re-parse = %+v, %v; want %+v", p2, err, p)
			}
		case wire.TypeVersionNegotiation:
			vs, err := wire.ParseVersionNegotiation(nil, body)
			if err != nil {
				return
			}
			if len(vs) == 0 || len(vs) > 16 {
				t.Fatalf("%d versions", len(vs))
			}
			// The encoder lists only Version1, so check the header round trip.
			re = wire.AppendVersionNegotiation(nil, h.DstID, h.SrcID)
		default:
			t.Fatalf("parsed unknown type %d", h.Type)
		}
		if h2, _, err := wire.ParseLongHeader(re); err != nil || h2.DstID != h.DstID || h2.SrcID != h.SrcID || h2.Type != h.Type {
			t.Fatalf("re-encoded header = %+v, %v; want %+v", h2, err, h)
		}
		if h.Type != wire.TypeInitial && len(re) >= wire.MinInitialSize {
			t.Fatalf("%v reply of %d bytes is not smaller than an Initial", h.Type, len(re))
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

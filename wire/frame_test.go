package wire_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/raptormq/raptor/wire"
)

const maxV = wire.MaxVarint

var frameTests = []struct {
	name string
	f    wire.Frame
}{
	{"PING", &wire.PingFrame{}},
	{"CRYPTO post-handshake", &wire.CryptoFrame{Offset: 0, Data: []byte{4, 0, 0, 2, 0xaa, 0xbb}}},
	{"NEW_TOKEN", &wire.NewTokenFrame{Token: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25}}},
	{"ACK one packet 0", &wire.AckFrame{Ranges: []wire.AckRange{{0, 0}}}},
	{"ACK one range", &wire.AckFrame{AckDelay: 250, Ranges: []wire.AckRange{{3, 1000}}}},
	{"ACK three ranges", &wire.AckFrame{AckDelay: 1 << 20, Ranges: []wire.AckRange{{100, 120}, {50, 98}, {0, 10}}}},
	{"ACK gap of one", &wire.AckFrame{Ranges: []wire.AckRange{{4, 4}, {2, 2}, {0, 0}}}},
	{"ACK 64 ranges", &wire.AckFrame{AckDelay: 63, Ranges: ackRanges(wire.MaxAckRanges)}},
	{"ACK max values", &wire.AckFrame{AckDelay: maxV, Ranges: []wire.AckRange{{maxV - 3, maxV}, {0, maxV - 5}}}},
	{"NAK one", &wire.NakFrame{Ranges: []wire.AckRange{{5, 5}}}},
	{"NAK adjacent", &wire.NakFrame{Ranges: []wire.AckRange{{1, 2}, {3, 4}}}},
	{"NAK 32 ranges", &wire.NakFrame{Ranges: nakRanges(wire.MaxNakRanges)}},
	{"NAK max", &wire.NakFrame{Ranges: []wire.AckRange{{0, 16383}, {maxV, maxV}}}},
	{"MAX_DATA", &wire.MaxDataFrame{Max: 4 << 20}},
	{"MAX_DATA 0", &wire.MaxDataFrame{}},
	{"MAX_DATA max", &wire.MaxDataFrame{Max: maxV}},
	{"MAX_STREAM_DATA", &wire.MaxStreamDataFrame{StreamID: 5, Max: 1 << 20}},
	{"MAX_STREAM_DATA max", &wire.MaxStreamDataFrame{StreamID: maxV, Max: maxV}},
	{"MAX_STREAMS", &wire.MaxStreamsFrame{Max: 100}},
	{"MAX_STREAMS max", &wire.MaxStreamsFrame{Max: maxV}},
	{"RESET_STREAM", &wire.ResetStreamFrame{StreamID: 4, ErrorCode: 0x100, FinalSize: 70000}},
	{"RESET_STREAM max", &wire.ResetStreamFrame{StreamID: maxV, ErrorCode: maxV, FinalSize: maxV}},
	{"STOP_SENDING", &wire.StopSendingFrame{StreamID: 3, ErrorCode: 6}},
	{"STOP_SENDING max", &wire.StopSendingFrame{StreamID: maxV, ErrorCode: maxV}},
	{"CLOSE graceful", &wire.CloseFrame{}},
	{"CLOSE reason", &wire.CloseFrame{ErrorCode: 4, Reason: []byte("NAK ranges not ascending")}},
	{"CLOSE 512", &wire.CloseFrame{ErrorCode: 0x1234, Reason: bytes.Repeat([]byte{'x'}, wire.MaxReasonLen)}},
	{"STREAM len", &wire.StreamFrame{StreamID: 4, Offset: 1000, HasLen: true, Data: seq(100)}},
	{"STREAM len fin", &wire.StreamFrame{StreamID: 1, Offset: 70000, HasLen: true, Fin: true, Data: seq(1400)}},
	{"STREAM len fin empty", &wire.StreamFrame{StreamID: 8, Offset: 16384, HasLen: true, Fin: true}},
	{"STREAM len empty offset 0", &wire.StreamFrame{HasLen: true}},
	{"STREAM len max offset", &wire.StreamFrame{StreamID: maxV, Offset: maxV - 3, HasLen: true, Data: seq(3)}},
	{"STREAM no len", &wire.StreamFrame{StreamID: 2, Offset: 63, Data: seq(64)}},
	{"STREAM no len fin", &wire.StreamFrame{StreamID: 3, Offset: 1 << 30, Fin: true, Data: seq(5)}},
	{"STREAM no len empty", &wire.StreamFrame{StreamID: 6}},
}

func isStreamNoLen(f wire.Frame) bool {
	sf, ok := f.(*wire.StreamFrame)
	return ok && !sf.HasLen
}

func TestFrameRoundTrip(t *testing.T) {
	for _, tt := range frameTests {
		t.Run(tt.name, func(t *testing.T) {
			want := show(tt.f)
			enc := mustAppend(t, tt.f, nil)
			if len(enc) != tt.f.Length() {
				t.Errorf("Length() = %d, encoding has %d bytes", tt.f.Length(), len(enc))
			}
			// Append appends and leaves the prefix alone.
			pre := []byte{0xde, 0xad}
			if b := mustAppend(t, tt.f, pre); !bytes.Equal(b[:2], pre) || !bytes.Equal(b[2:], enc) {
				t.Errorf("Append after a prefix = % x, want de ad % x", b, enc)
			}
			var p wire.FrameParser
			f, n, err := p.ParseNext(enc)
			if err != nil {
				t.Fatalf("ParseNext(% x): %v", enc, err)
			}
			if n != len(enc) {
				t.Errorf("ParseNext consumed %d bytes, want %d", n, len(enc))
			}
			if got := show(f); got != want {
				t.Errorf("ParseNext = %s, want %s", got, want)
			}
			// Leading padding is skipped and counted.
			padded := append(make([]byte, 3), enc...)
			if f, n, err = p.ParseNext(padded); err != nil || n != len(padded) || show(f) != want {
				t.Errorf("ParseNext after 3 PADDING = %s, %d, %v; want %s, %d", show(f), n, err, want, len(padded))
			}
			// A frame with its own length stops where it ends.
			if !isStreamNoLen(tt.f) {
				trail := append(append([]byte{}, enc...), byte(wire.FramePing), 0xff)
				if f, n, err = p.ParseNext(trail); err != nil || n != len(enc) || show(f) != want {
					t.Errorf("ParseNext with trailing bytes = %s, %d, %v; want %s, %d", show(f), n, err, want, len(enc))
				}
			}
		})
	}
}

// Every strict prefix of a frame is truncated, except that a STREAM frame
// without a length takes what is there as its data.
func TestFramePrefixes(t *testing.T) {
	for _, tt := range frameTests {
		t.Run(tt.name, func(t *testing.T) {
			enc := mustAppend(t, tt.f, nil)
			var p wire.FrameParser
			if f, n, err := p.ParseNext(enc[:0]); f != nil || n != 0 || err != nil {
				t.Errorf("ParseNext(empty) = %v, %d, %v; want nil, 0, nil", f, n, err)
			}
			hdr := len(enc)
			if sf, ok := tt.f.(*wire.StreamFrame); ok && !sf.HasLen {
				hdr = sf.HeaderLen()
			}
			for k := 1; k < len(enc); k++ {
				buf := append([]byte(nil), enc[:k]...) // exact capacity: reads past k would panic
				f, n, err := p.ParseNext(buf)
				if k < hdr {
					wantTruncated(t, fmt.Sprintf("%d-byte prefix", k), err)
					if f != nil || n != 0 {
						t.Errorf("%d-byte prefix: got %v, %d with the error", k, f, n)
					}
					continue
				}
				// STREAM frame without length: the data is the prefix's rest.
				sf, ok := f.(*wire.StreamFrame)
				if err != nil || !ok || n != k || !bytes.Equal(sf.Data, enc[hdr:k]) {
					t.Fatalf("%d-byte prefix of STREAM frame without length: %v, %d, %v", k, show(f), n, err)
				}
			}
		})
	}
}

func TestFrameParserPadding(t *testing.T) {
	var p wire.FrameParser
	for _, n := range []int{1, 2, 1200} {
		f, got, err := p.ParseNext(make([]byte, n))
		if f != nil || got != n || err != nil {
			t.Errorf("ParseNext(%d zero bytes) = %v, %d, %v; want nil, %d, nil", n, f, got, err, n)
		}
	}
}

// A packet of several frames parses frame by frame.
func TestFrameParserSequence(t *testing.T) {
	var pkt []byte
	var want []string
	for _, tt := range frameTests {
		if isStreamNoLen(tt.f) {
			continue
		}
		pkt = mustAppend(t, tt.f, pkt)
		want = append(want, show(tt.f))
	}
	last := &wire.StreamFrame{StreamID: 9, Offset: 1, Data: seq(10)}
	pkt = mustAppend(t, last, pkt)
	want = append(want, show(last))
	pkt = append(pkt, 0, 0, 0) // data of a STREAM frame without length includes what follows

	var p wire.FrameParser
	var got []string
	for b := pkt; len(b) > 0; {
		f, n, err := p.ParseNext(b)
		if err != nil {
			t.Fatalf("frame %d: %v", len(got), err)
		}
		if n <= 0 || n > len(b) {
			t.Fatalf("frame %d: consumed %d of %d", len(got), n, len(b))
		}
		if f != nil {
			got = append(got, show(f))
		}
		b = b[n:]
	}
	want[len(want)-1] = show(&wire.StreamFrame{StreamID: 9, Offset: 1, Data: append(seq(10), 0, 0, 0)})
	if len(got) != len(want) {
		t.Fatalf("parsed %d frames, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("frame %d = %s, want %s", i, got[i], want[i])
		}
	}
}

func TestFrameParseInvalid(t *testing.T) {
	v := func(vals ...uint64) []byte {
		var b []byte
		for _, x := range vals {
			b = wire.AppendVarint(b, x)
		}
		return b
	}
	frame := func(t wire.FrameType, rest []byte) []byte { return append([]byte{byte(t)}, rest...) }
	tests := []struct {
		name string
		b    []byte
	}{
		{"type 0x0c", []byte{0x0c, 0, 0}},
		{"type 0x0f", []byte{0x0f}},
		{"type 0x14", []byte{0x14, 0, 0}},
		{"type 0x20", []byte{0x20}},
		{"type 0x40", []byte{0x40, 0}},
		{"type 0xff", []byte{0xff}},
		{"ACK first range below 0", frame(wire.FrameAck, v(5, 0, 0, 6))},
		{"ACK gap below 0", frame(wire.FrameAck, v(10, 0, 1, 2, 7, 0))},
		{"ACK gap below 0 large", frame(wire.FrameAck, v(10, 0, 1, 0, maxV, 0))},
		{"ACK length below 0", frame(wire.FrameAck, v(10, 0, 1, 2, 0, 7))},
		{"ACK length below 0 large", frame(wire.FrameAck, v(10, 0, 1, 2, 0, maxV))},
		{"ACK 65 ranges", frame(wire.FrameAck, v(1000, 0, 64, 0))},
		{"ACK huge count", frame(wire.FrameAck, v(1000, 0, maxV, 0))},
		{"NAK count 0", frame(wire.FrameNak, v(0))},
		{"NAK count 33", frame(wire.FrameNak, v(33, 0, 0))},
		{"NAK equal starts", frame(wire.FrameNak, v(2, 5, 0, 5, 0))},
		{"NAK descending", frame(wire.FrameNak, v(2, 5, 0, 3, 0))},
		{"NAK overlapping", frame(wire.FrameNak, v(2, 5, 2, 7, 0))},
		{"NAK beyond 2^62-1", frame(wire.FrameNak, v(1, maxV, 1))},
		{"CLOSE reason 513", append(frame(wire.FrameClose, v(0, 513)), make([]byte, 513)...)},
		{"CLOSE reason huge", frame(wire.FrameClose, v(0, maxV))},
		{"STREAM offset+len beyond 2^62-1", frame(wire.FrameStream|0x2, append(v(0, maxV-1, 2), 1, 2))},
		{"STREAM offset+rest beyond 2^62-1", frame(wire.FrameStream, append(v(0, maxV), 1))},
	}
	for _, tt := range tests {
		var p wire.FrameParser
		f, n, err := p.ParseNext(tt.b)
		wantFormatError(t, tt.name, err)
		if f != nil || n != 0 {
			t.Errorf("%s: got %v, %d with the error", tt.name, f, n)
		}
	}
}

func TestFrameAppendInvalid(t *testing.T) {
	tests := []struct {
		name string
		f    wire.Frame
	}{
		{"ACK no ranges", &wire.AckFrame{}},
		{"ACK smallest above largest", &wire.AckFrame{Ranges: []wire.AckRange{{5, 4}}}},
		{"ACK largest beyond 2^62-1", &wire.AckFrame{Ranges: []wire.AckRange{{0, maxV + 1}}}},
		{"ACK ascending", &wire.AckFrame{Ranges: []wire.AckRange{{0, 1}, {5, 6}}}},
		{"ACK touching", &wire.AckFrame{Ranges: []wire.AckRange{{5, 6}, {3, 4}}}},
		{"ACK overlapping", &wire.AckFrame{Ranges: []wire.AckRange{{5, 6}, {3, 5}}}},
		{"ACK delay", &wire.AckFrame{AckDelay: maxV + 1, Ranges: []wire.AckRange{{0, 0}}}},
		{"NAK no ranges", &wire.NakFrame{}},
		{"NAK 33 ranges", &wire.NakFrame{Ranges: nakRanges(33)}},
		{"NAK descending", &wire.NakFrame{Ranges: []wire.AckRange{{5, 6}, {1, 2}}}},
		{"NAK overlapping", &wire.NakFrame{Ranges: []wire.AckRange{{1, 5}, {5, 6}}}},
		{"NAK smallest above largest", &wire.NakFrame{Ranges: []wire.AckRange{{2, 1}}}},
		{"NAK beyond 2^62-1", &wire.NakFrame{Ranges: []wire.AckRange{{0, maxV + 1}}}},
		{"MAX_DATA", &wire.MaxDataFrame{Max: maxV + 1}},
		{"MAX_STREAM_DATA id", &wire.MaxStreamDataFrame{StreamID: maxV + 1}},
		{"MAX_STREAM_DATA max", &wire.MaxStreamDataFrame{Max: maxV + 1}},
		{"MAX_STREAMS", &wire.MaxStreamsFrame{Max: maxV + 1}},
		{"RESET_STREAM final size", &wire.ResetStreamFrame{FinalSize: maxV + 1}},
		{"STOP_SENDING code", &wire.StopSendingFrame{ErrorCode: maxV + 1}},
		{"CLOSE code", &wire.CloseFrame{ErrorCode: maxV + 1}},
		{"STREAM id", &wire.StreamFrame{StreamID: maxV + 1}},
		{"STREAM offset", &wire.StreamFrame{Offset: maxV + 1}},
		{"STREAM offset+len", &wire.StreamFrame{Offset: maxV - 1, Data: seq(2), HasLen: true}},
	}
	for _, tt := range tests {
		b, err := tt.f.Append([]byte{1, 2})
		wantFormatError(t, tt.name, err)
		if !bytes.Equal(b, []byte{1, 2}) {
			t.Errorf("%s: Append returned % x with its error, want the input", tt.name, b)
		}
	}
}

// Encoders cut what a frame cannot carry: a CLOSE reason beyond MaxReasonLen
// and ACK ranges beyond the newest MaxAckRanges (docs/PROTOCOL.md §7.3, §7.8).
func TestEncoderCuts(t *testing.T) {
	long := &wire.CloseFrame{ErrorCode: 1, Reason: seq(wire.MaxReasonLen + 100)}
	many := &wire.AckFrame{AckDelay: 7, Ranges: ackRanges(wire.MaxAckRanges + 10)}
	for _, tc := range []struct {
		name    string
		f, want wire.Frame
	}{
		{"CLOSE reason", long, &wire.CloseFrame{ErrorCode: 1, Reason: long.Reason[:wire.MaxReasonLen]}},
		{"ACK ranges", many, &wire.AckFrame{AckDelay: 7, Ranges: many.Ranges[:wire.MaxAckRanges]}},
	} {
		enc := mustAppend(t, tc.f, nil)
		if len(enc) != tc.f.Length() {
			t.Errorf("%s: Length() = %d, encoding has %d bytes", tc.name, tc.f.Length(), len(enc))
		}
		var p wire.FrameParser
		got, _, err := p.ParseNext(enc)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if show(got) != show(tc.want) {
			t.Errorf("%s: parsed %s, want %s", tc.name, show(got), show(tc.want))
		}
	}
}

func TestAckFrameAcks(t *testing.T) {
	f := &wire.AckFrame{Ranges: []wire.AckRange{{100, 120}, {50, 98}, {0, 10}}}
	if f.Largest() != 120 {
		t.Errorf("Largest() = %d, want 120", f.Largest())
	}
	for pn := uint64(0); pn < 130; pn++ {
		want := pn <= 10 || pn >= 50 && pn <= 98 || pn >= 100 && pn <= 120
		if f.Acks(pn) != want {
			t.Errorf("Acks(%d) = %v, want %v", pn, !want, want)
		}
	}
}

// benchPacket is a short-header packet carrying ACK, NAK and a STREAM frame.
func benchPacket(tb testing.TB) []byte {
	h := wire.ShortHeader{DstID: wire.ConnID{1, 2, 3, 4, 5, 6, 7, 8}, PacketNumber: 1 << 20}
	b := h.Append(make([]byte, 0, 1452))
	b = mustAppend(tb, &wire.AckFrame{AckDelay: 300, Ranges: ackRanges(8)}, b)
	b = mustAppend(tb, &wire.NakFrame{Ranges: nakRanges(4)}, b)
	return mustAppend(tb, &wire.StreamFrame{StreamID: 4, Offset: 1 << 24, Data: seq(1452 - len(b) - 12)}, b)
}

func TestFrameParserAllocs(t *testing.T) {
	pkt := benchPacket(t)
	var p wire.FrameParser
	frames := 0
	allocs := testing.AllocsPerRun(100, func() {
		_, n, err := wire.ParseShortHeader(pkt)
		if err != nil {
			t.Fatal(err)
		}
		frames = 0
		for b := pkt[n:]; len(b) > 0; {
			_, n, err := p.ParseNext(b)
			if err != nil {
				t.Fatal(err)
			}
			b = b[n:]
			frames++
		}
	})
	if frames != 3 {
		t.Fatalf("parsed %d frames, want 3", frames)
	}
	if allocs != 0 {
		t.Errorf("parsing a packet of STREAM+ACK+NAK allocates %v times, want 0", allocs)
	}
}

func TestAppendAllocs(t *testing.T) {
	buf := make([]byte, 0, 64<<10)
	h := wire.ShortHeader{DstID: wire.ConnID{9}, PacketNumber: 77}
	fs := make([]wire.Frame, len(frameTests))
	for i, tt := range frameTests {
		fs[i] = tt.f
	}
	allocs := testing.AllocsPerRun(100, func() {
		b := h.Append(buf[:0])
		for _, f := range fs {
			var err error
			if b, err = f.Append(b); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("appending every frame into a preallocated buffer allocates %v times, want 0", allocs)
	}
}

// TestStreamFrameAppendHeader: the header AppendHeader writes, followed by
// the data, is what Append writes, HeaderLen bytes long; an invalid frame
// fails both ways with b unchanged.
func TestStreamFrameAppendHeader(t *testing.T) {
	for _, tc := range []struct {
		name    string
		f       wire.StreamFrame
		wantErr bool
	}{
		{"empty", wire.StreamFrame{StreamID: 0, Offset: 0, HasLen: true}, false},
		{"fin", wire.StreamFrame{StreamID: 4, Offset: 1 << 20, HasLen: true, Fin: true, Data: []byte("end")}, false},
		{"no length", wire.StreamFrame{StreamID: 1 << 30, Offset: 77, Data: bytes.Repeat([]byte{7}, 300)}, false},
		{"big", wire.StreamFrame{StreamID: 3, Offset: 1 << 40, HasLen: true, Data: bytes.Repeat([]byte{1}, 16000)}, false},
		{"offset too large", wire.StreamFrame{StreamID: 3, Offset: wire.MaxStreamOffset, HasLen: true, Data: []byte{1}}, true},
		{"stream ID too large", wire.StreamFrame{StreamID: maxV + 1, HasLen: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte{0xaa, 0xbb}
			want, werr := tc.f.Append(bytes.Clone(prefix))
			got, gerr := tc.f.AppendHeader(bytes.Clone(prefix))
			if (werr != nil) != tc.wantErr || (gerr != nil) != tc.wantErr {
				t.Fatalf("errors: Append %v, AppendHeader %v; want error %v", werr, gerr, tc.wantErr)
			}
			if tc.wantErr {
				if !bytes.Equal(got, prefix) || !bytes.Equal(want, prefix) {
					t.Fatalf("failed appends changed b: %x, %x", got, want)
				}
				return
			}
			if len(got)-len(prefix) != tc.f.HeaderLen() {
				t.Fatalf("header of %d bytes, HeaderLen %d", len(got)-len(prefix), tc.f.HeaderLen())
			}
			if got = append(got, tc.f.Data...); !bytes.Equal(got, want) {
				t.Fatalf("header+data %x, Append %x", got, want)
			}
		})
	}
}

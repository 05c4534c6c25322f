package wire_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/raptormq/raptor/wire"
)

var defaultParams = wire.Params{
	InitialMaxData:       4 << 20,
	InitialMaxStreamData: 1 << 20,
	MaxStreams:           100,
	IdleTimeoutMillis:    30000,
	MaxDatagramSize:      1452,
	MaxAckDelayMicros:    1000,
}

var paramsTests = []struct {
	name string
	p    wire.Params
}{
	{"defaults", defaultParams},
	{"zero", wire.Params{}},
	{"only datagram size", wire.Params{MaxDatagramSize: 1200}},
	{"limits", wire.Params{
		InitialMaxData: wire.MaxVarint, InitialMaxStreamData: wire.MaxVarint, MaxStreams: wire.MaxVarint,
		IdleTimeoutMillis: wire.MaxVarint, MaxDatagramSize: 65527, MaxAckDelayMicros: 1 << 20,
	}},
}

// params encodes (id, value) pairs as a parameter list.
func params(kv ...uint64) []byte {
	b := wire.AppendVarint(nil, uint64(len(kv)/2))
	for _, v := range kv {
		b = wire.AppendVarint(b, v)
	}
	return b
}

func repeat(v uint64, n int) []uint64 {
	s := make([]uint64, n)
	for i := range s {
		s[i] = v
	}
	return s
}

func TestParamsRoundTrip(t *testing.T) {
	for _, tt := range paramsTests {
		enc := tt.p.Append([]byte{0xee})[1:]
		got, n, err := wire.ParseParams(append(enc, 0xff))
		if err != nil || n != len(enc) || got != tt.p {
			t.Errorf("%s: ParseParams(% x) = %+v, %d, %v; want %+v, %d", tt.name, enc, got, n, err, tt.p, len(enc))
		}
		for k := range len(enc) {
			_, _, err := wire.ParseParams(append([]byte(nil), enc[:k]...))
			wantTruncated(t, fmt.Sprintf("%s: %d-byte prefix", tt.name, k), err)
		}
	}
}

func TestParamsEncoding(t *testing.T) {
	// Parameter IDs are part of the protocol (docs/PROTOCOL.md §5.4).
	p := wire.Params{InitialMaxData: 1, InitialMaxStreamData: 2, MaxStreams: 3, IdleTimeoutMillis: 4, MaxDatagramSize: 1200, MaxAckDelayMicros: 6}
	want := params(1, 1, 2, 2, 3, 3, 4, 4, 5, 1200, 6, 6)
	if got := p.Append(nil); !bytes.Equal(got, want) {
		t.Errorf("Append = % x, want % x", got, want)
	}
	// Zero values are left out; absent parameters parse as zero.
	p = wire.Params{MaxDatagramSize: 1452}
	if got, want := p.Append(nil), params(5, 1452); !bytes.Equal(got, want) {
		t.Errorf("Append = % x, want % x", got, want)
	}
	if got := (&wire.Params{}).Append(nil); !bytes.Equal(got, []byte{0}) {
		t.Errorf("zero Params encode as % x, want 00", got)
	}
}

func TestParseParams(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		want wire.Params
	}{
		{"empty list", params(), wire.Params{}},
		{"unknown IDs skipped", params(7, 99, 1, 10, 0x3fff, wire.MaxVarint, 64, 1), wire.Params{InitialMaxData: 10}},
		{"last duplicate wins", params(3, 1, 3, 2), wire.Params{MaxStreams: 2}},
		{"datagram size 1200", params(5, 1200), wire.Params{MaxDatagramSize: 1200}},
		{"datagram size 65527", params(5, 65527), wire.Params{MaxDatagramSize: 65527}},
		{"ack delay 2^20", params(6, 1<<20), wire.Params{MaxAckDelayMicros: 1 << 20}},
		{"64 parameters", params(repeat(1, 128)...), wire.Params{InitialMaxData: 1}},
	}
	for _, tt := range tests {
		got, n, err := wire.ParseParams(tt.b)
		if err != nil || n != len(tt.b) || got != tt.want {
			t.Errorf("%s: ParseParams(% x) = %+v, %d, %v; want %+v, %d", tt.name, tt.b, got, n, err, tt.want, len(tt.b))
		}
	}
}

func TestParseParamsInvalid(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
	}{
		{"datagram size 0", params(5, 0)},
		{"datagram size 1199", params(5, 1199)},
		{"datagram size 65528", params(5, 65528)},
		{"datagram size huge", params(5, wire.MaxVarint)},
		{"ack delay 2^20+1", params(6, 1<<20+1)},
		{"65 parameters", params(repeat(7, 130)...)},
	}
	for _, tt := range tests {
		_, n, err := wire.ParseParams(tt.b)
		wantFormatError(t, tt.name, err)
		if n != 0 {
			t.Errorf("%s: consumed %d with the error", tt.name, n)
		}
	}
}

func longHeader(typ wire.LongType) wire.LongHeader {
	return wire.LongHeader{Type: typ, Version: wire.Version1, DstID: cidA, SrcID: cidB}
}

// parseLong parses a datagram's long header and checks its type.
func parseLong(t *testing.T, pkt []byte, typ wire.LongType) []byte {
	t.Helper()
	h, n, err := wire.ParseLongHeader(pkt)
	if err != nil {
		t.Fatal(err)
	}
	if want := longHeader(typ); h != want {
		t.Fatalf("header %+v, want %+v", h, want)
	}
	return pkt[n:]
}

func TestInitialRoundTrip(t *testing.T) {
	for _, token := range [][]byte{nil, seq(24), seq(wire.MaxTokenLen)} {
		cf := wire.CryptoFrame{Offset: 0, Data: seq(300)}
		pkt := wire.AppendInitialHeader([]byte{1, 2, 3}, longHeader(wire.TypeRetry), token)[3:] // type is forced to Initial
		pkt = mustAppend(t, &cf, pkt)
		pkt = wire.PadInitial(pkt, 0)
		if len(pkt) != wire.MinInitialSize {
			t.Fatalf("padded Initial has %d bytes", len(pkt))
		}
		body := parseLong(t, pkt, wire.TypeInitial)
		gotToken, frames, err := wire.ParseInitial(body)
		if err != nil || !bytes.Equal(gotToken, token) {
			t.Fatalf("ParseInitial = % x, %v; want token % x", gotToken, err, token)
		}
		var fp wire.HandshakeFrameParser
		f, n, err := fp.ParseNext(frames)
		if err != nil || show(f) != show(&cf) {
			t.Fatalf("first frame %s, %v; want %s", show(f), err, show(&cf))
		}
		if f, m, err := fp.ParseNext(frames[n:]); f != nil || err != nil || m != len(frames)-n {
			t.Fatalf("after the CRYPTO frame: %v, %d, %v; want only padding", f, m, err)
		}
		// Every prefix of the token is truncated.
		for k := 0; k < 1+len(token); k++ {
			_, _, err := wire.ParseInitial(append([]byte(nil), body[:k]...))
			if k < 1+len(token) && (len(token) > 0 || k == 0) {
				wantTruncated(t, fmt.Sprintf("Initial body cut to %d", k), err)
			}
		}
	}
	_, _, err := wire.ParseInitial(append([]byte{0x41, 0x01}, seq(300)...)) // token length 257
	wantFormatError(t, "Initial with a 257-byte token", err)
}

func TestHandshakeFrames(t *testing.T) {
	cl := wire.CloseFrame{ErrorCode: 8, Reason: []byte("tls: bad certificate")}
	cf := wire.CryptoFrame{Offset: 1000, Data: seq(50)}
	b := mustAppend(t, &cl, mustAppend(t, &cf, []byte{0, 0}))
	var fp wire.HandshakeFrameParser
	f, n, err := fp.ParseNext(b)
	if err != nil || show(f) != show(&cf) {
		t.Fatalf("%s, %v; want %s", show(f), err, show(&cf))
	}
	f, m, err := fp.ParseNext(b[n:])
	if err != nil || show(f) != show(&cl) || n+m != len(b) {
		t.Fatalf("%s, %v; want %s", show(f), err, show(&cl))
	}
	for _, other := range []wire.Frame{&wire.PingFrame{}, &wire.AckFrame{Ranges: []wire.AckRange{{Smallest: 0, Largest: 0}}},
		&wire.StreamFrame{StreamID: 0, Data: []byte("x"), HasLen: true}} {
		_, _, err := fp.ParseNext(mustAppend(t, other, nil))
		wantFormatError(t, show(other)+" in a handshake packet", err)
	}
}

func TestCryptoFrame(t *testing.T) {
	for _, f := range []wire.CryptoFrame{{}, {Offset: 0, Data: seq(1)}, {Offset: 1 << 15, Data: seq(1000)},
		{Offset: wire.MaxCryptoData - 10, Data: seq(10)}} {
		b := mustAppend(t, &f, nil)
		if len(b) != f.Length() {
			t.Errorf("%s: Append wrote %d bytes, Length says %d", show(&f), len(b), f.Length())
		}
		if len(b)-len(f.Data) > wire.CryptoFrameOverhead {
			t.Errorf("%s: overhead %d beyond CryptoFrameOverhead", show(&f), len(b)-len(f.Data))
		}
		g, n, err := wire.ParseCryptoFrame(b)
		if err != nil || n != len(b) || show(&g) != show(&f) {
			t.Errorf("ParseCryptoFrame(% x) = %s, %d, %v", b, show(&g), n, err)
		}
		for k := range len(b) {
			_, _, err := wire.ParseCryptoFrame(b[:k])
			wantTruncated(t, fmt.Sprintf("%s cut to %d", show(&f), k), err)
		}
	}
	big := wire.CryptoFrame{Offset: wire.MaxCryptoData - 1, Data: seq(2)}
	if _, err := big.Append(nil); err == nil {
		t.Error("Append of a CRYPTO frame ending beyond MaxCryptoData succeeded")
	}
	b := wire.AppendVarint(wire.AppendVarint([]byte{byte(wire.FrameCrypto)}, wire.MaxCryptoData), 1)
	_, _, err := wire.ParseCryptoFrame(append(b, 0))
	wantFormatError(t, "CRYPTO frame ending beyond MaxCryptoData", err)
	_, _, err = wire.ParseCryptoFrame([]byte{byte(wire.FramePing)})
	wantFormatError(t, "PING parsed as CRYPTO", err)
}

func TestRetryIntegrity(t *testing.T) {
	odcid := wire.ConnID{7, 7, 7, 7, 7, 7, 7, 7}
	for _, token := range [][]byte{seq(1), seq(24), seq(wire.MaxTokenLen)} {
		pkt := wire.AppendRetry([]byte{0xee}, longHeader(wire.TypeHandshake), token, odcid)[1:] // type forced to Retry
		parseLong(t, pkt, wire.TypeRetry)
		got, err := wire.ParseRetry(pkt, odcid)
		if err != nil || !bytes.Equal(got, token) {
			t.Errorf("ParseRetry = % x, %v; want % x", got, err, token)
		}
		if _, err := wire.ParseRetry(pkt, cidA); err == nil {
			t.Error("Retry verified against another original DstID")
		}
		for i := range pkt {
			bad := bytes.Clone(pkt)
			bad[i] ^= 0x01
			if _, err := wire.ParseRetry(bad, odcid); err == nil {
				t.Fatalf("Retry with byte %d flipped verified", i)
			}
		}
		for k := range len(pkt) {
			if _, err := wire.ParseRetry(pkt[:k], odcid); err == nil {
				t.Fatalf("Retry cut to %d verified", k)
			}
		}
	}
	_, err := wire.ParseRetry(wire.AppendRetry(nil, longHeader(wire.TypeRetry), nil, odcid), odcid)
	wantFormatError(t, "Retry with an empty token", err)
}

func TestVersionNegotiation(t *testing.T) {
	pkt := wire.AppendVersionNegotiation(nil, cidA, cidB)
	h, _, err := wire.ParseLongHeader(pkt)
	if err != nil || h.Type != wire.TypeVersionNegotiation || h.Version != 0 || h.DstID != cidA || h.SrcID != cidB {
		t.Fatalf("header %+v, %v", h, err)
	}
	if len(pkt) >= wire.MinInitialSize {
		t.Fatalf("VersionNegotiation has %d bytes", len(pkt))
	}
	got, err := wire.ParseVersionNegotiation([]uint32{7}, pkt, cidB)
	if err != nil || fmt.Sprint(got) != fmt.Sprint([]uint32{7, wire.Version1}) {
		t.Fatalf("ParseVersionNegotiation = %x, %v", got, err)
	}
	if _, err := wire.ParseVersionNegotiation(nil, pkt, cidA); err == nil {
		t.Fatal("VersionNegotiation verified against another Initial's DstID")
	}
	for i := range pkt {
		bad := bytes.Clone(pkt)
		bad[i] ^= 0x80
		if _, err := wire.ParseVersionNegotiation(nil, bad, cidB); err == nil {
			t.Fatalf("VersionNegotiation with byte %d flipped verified", i)
		}
	}
	for k := range len(pkt) {
		if _, err := wire.ParseVersionNegotiation(nil, pkt[:k], cidB); err == nil {
			t.Fatalf("VersionNegotiation cut to %d verified", k)
		}
	}
}

func TestHandshakeHeader(t *testing.T) {
	for _, pn := range []uint64{0, 63, 64, 1 << 30, wire.MaxPacketNumber} {
		pkt := wire.AppendHandshakeHeader(nil, longHeader(wire.TypeInitial), pn)
		body := parseLong(t, pkt, wire.TypeHandshake)
		got, n := wire.ReadVarint(body)
		if got != pn || n != len(body) {
			t.Errorf("packet number %d read back as %d (%d of %d bytes)", pn, got, n, len(body))
		}
	}
}

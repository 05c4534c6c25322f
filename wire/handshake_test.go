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
		for _, pt := range paramsTests {
			name := fmt.Sprintf("token %d, params %s", len(token), pt.name)
			pkt := wire.AppendInitial(nil, longHeader(wire.TypeRetry), token, &pt.p) // type is forced to Initial
			if len(pkt) != wire.MinInitialSize {
				t.Errorf("%s: Initial has %d bytes, want %d", name, len(pkt), wire.MinInitialSize)
			}
			body := parseLong(t, pkt, wire.TypeInitial)
			gotToken, p, err := wire.ParseInitial(body, len(pkt))
			if err != nil || !bytes.Equal(gotToken, token) || p != pt.p {
				t.Errorf("%s: ParseInitial = % x, %+v, %v", name, gotToken, p, err)
			}
			// Padding is zero bytes after the parameters.
			end := wire.LongHeaderLen + wire.VarintLen(uint64(len(token))) + len(token) + len(pt.p.Append(nil))
			if !bytes.Equal(pkt[end:], make([]byte, len(pkt)-end)) {
				t.Errorf("%s: padding is not all zero", name)
			}
			// The datagram must be at least 1200 bytes however complete the body.
			for _, size := range []int{0, wire.LongHeaderLen, end, wire.MinInitialSize - 1} {
				_, _, err := wire.ParseInitial(body, size)
				wantFormatError(t, fmt.Sprintf("%s: datagram of %d bytes", name, size), err)
			}
			// Truncated inside token or parameters, padding is optional.
			for k := range len(body) {
				_, p, err := wire.ParseInitial(append([]byte(nil), body[:k]...), wire.MinInitialSize)
				if k < end-wire.LongHeaderLen {
					wantTruncated(t, fmt.Sprintf("%s: %d-byte body prefix", name, k), err)
				} else if err != nil || p != pt.p {
					t.Errorf("%s: %d-byte body prefix (padding cut): %+v, %v", name, k, p, err)
				}
			}
		}
	}
	// Appending continues after existing bytes and pads the new packet only.
	pkt := wire.AppendInitial([]byte{1, 2, 3}, longHeader(wire.TypeInitial), nil, &defaultParams)
	if len(pkt) != 3+wire.MinInitialSize || !bytes.Equal(pkt[:3], []byte{1, 2, 3}) {
		t.Errorf("AppendInitial after 3 bytes: %d bytes", len(pkt))
	}
}

func TestInitialInvalid(t *testing.T) {
	pad := func(b []byte) []byte { return append(b, make([]byte, wire.MinInitialSize)...) }
	tests := []struct {
		name string
		body []byte
	}{
		{"token 257", pad(append(wire.AppendVarint(nil, 257), seq(257)...))},
		{"token huge", pad(wire.AppendVarint(nil, wire.MaxVarint))},
		{"bad params", pad(append([]byte{0}, params(5, 100)...))},
	}
	for _, tt := range tests {
		_, _, err := wire.ParseInitial(tt.body, wire.LongHeaderLen+len(tt.body))
		wantFormatError(t, tt.name, err)
	}
}

func TestRetryRoundTrip(t *testing.T) {
	for _, token := range [][]byte{{0x42}, seq(24), seq(wire.MaxTokenLen)} {
		pkt := wire.AppendRetry([]byte{0xee}, longHeader(wire.TypeAccept), token)[1:] // type forced to Retry
		if len(pkt) >= wire.MinInitialSize {
			t.Errorf("Retry with %d-byte token has %d bytes, not smaller than an Initial", len(token), len(pkt))
		}
		body := parseLong(t, pkt, wire.TypeRetry)
		got, err := wire.ParseRetry(body)
		if err != nil || !bytes.Equal(got, token) {
			t.Errorf("ParseRetry = % x, %v; want % x", got, err, token)
		}
		for k := range len(body) {
			_, err := wire.ParseRetry(append([]byte(nil), body[:k]...))
			wantTruncated(t, fmt.Sprintf("token %d: %d-byte body prefix", len(token), k), err)
		}
	}
}

func TestRetryInvalid(t *testing.T) {
	for name, body := range map[string][]byte{
		"empty token": {0},
		"token 257":   append(wire.AppendVarint(nil, 257), seq(257)...),
		"token huge":  wire.AppendVarint(nil, wire.MaxVarint),
	} {
		_, err := wire.ParseRetry(body)
		wantFormatError(t, name, err)
	}
}

func TestAcceptRoundTrip(t *testing.T) {
	for _, pt := range paramsTests {
		pkt := wire.AppendAccept(nil, longHeader(wire.TypeInitial), &pt.p) // type forced to Accept
		if len(pkt) >= wire.MinInitialSize {
			t.Errorf("%s: Accept has %d bytes, not smaller than an Initial", pt.name, len(pkt))
		}
		body := parseLong(t, pkt, wire.TypeAccept)
		p, err := wire.ParseAccept(body)
		if err != nil || p != pt.p {
			t.Errorf("%s: ParseAccept = %+v, %v; want %+v", pt.name, p, err, pt.p)
		}
		for k := range len(body) {
			_, err := wire.ParseAccept(append([]byte(nil), body[:k]...))
			wantTruncated(t, fmt.Sprintf("%s: %d-byte body prefix", pt.name, k), err)
		}
	}
	_, err := wire.ParseAccept(params(6, 1<<21))
	wantFormatError(t, "Accept with max_ack_delay 2^21", err)
}

func TestVersionNegotiation(t *testing.T) {
	pkt := wire.AppendVersionNegotiation(nil, cidA, cidB)
	if len(pkt) >= wire.MinInitialSize {
		t.Errorf("VersionNegotiation has %d bytes, not smaller than an Initial", len(pkt))
	}
	h, n, err := wire.ParseLongHeader(pkt)
	if want := (wire.LongHeader{Type: wire.TypeVersionNegotiation, DstID: cidA, SrcID: cidB}); err != nil || h != want {
		t.Fatalf("header %+v, %v; want %+v (version 0)", h, err, want)
	}
	body := pkt[n:]
	got, err := wire.ParseVersionNegotiation([]uint32{7}, body)
	if err != nil || len(got) != 2 || got[0] != 7 || got[1] != wire.Version1 {
		t.Errorf("ParseVersionNegotiation = %x, %v; want [7 %x]", got, err, wire.Version1)
	}
	for k := range len(body) {
		_, err := wire.ParseVersionNegotiation(nil, append([]byte(nil), body[:k]...))
		wantTruncated(t, fmt.Sprintf("%d-byte body prefix", k), err)
	}
	// Several versions, in order.
	many := []byte{3, 0, 0, 0, 1, 0x52, 0x50, 0x54, 0x01, 0xff, 0xff, 0xff, 0xff}
	if got, err := wire.ParseVersionNegotiation(nil, many); err != nil || fmt.Sprint(got) != fmt.Sprint([]uint32{1, wire.Version1, 0xffffffff}) {
		t.Errorf("ParseVersionNegotiation(% x) = %x, %v", many, got, err)
	}
	for _, cnt := range []uint64{0, 17, wire.MaxVarint} {
		b := append(wire.AppendVarint(nil, cnt), make([]byte, 80)...)
		_, err := wire.ParseVersionNegotiation(nil, b)
		wantFormatError(t, fmt.Sprintf("version count %d", cnt), err)
	}
}

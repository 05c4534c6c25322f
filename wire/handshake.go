package wire

import "encoding/binary"

// MinInitialSize is the smallest datagram that may carry an Initial packet.
// Clients pad Initials to it so that no server reply (Retry, Accept,
// VersionNegotiation) is larger than the request: a spoofed source gains no
// amplification (docs/PROTOCOL.md §5).
const MinInitialSize = 1200

// MaxTokenLen bounds the stateless cookie carried by Retry and Initial.
const MaxTokenLen = 256

// Params are the transport parameters each side announces in its handshake
// packet (docs/PROTOCOL.md §5.4). Unknown parameter IDs are skipped, so new
// ones can be added without a version change.
type Params struct {
	InitialMaxData       uint64 // session-level receive window, bytes
	InitialMaxStreamData uint64 // per-stream receive window, bytes
	MaxStreams           uint64 // streams the peer may open (cumulative)
	IdleTimeoutMillis    uint64 // the sender closes a silent session after this
	MaxDatagramSize      uint64 // largest datagram the sender accepts
	MaxAckDelayMicros    uint64 // how long the sender may delay an ACK
}

// Parameter IDs (docs/PROTOCOL.md §5.4).
const (
	paramInitialMaxData       = 1
	paramInitialMaxStreamData = 2
	paramMaxStreams           = 3
	paramIdleTimeout          = 4
	paramMaxDatagramSize      = 5
	paramMaxAckDelay          = 6
	maxParams                 = 64
)

// Append appends the parameters as a count followed by (id, value) varint
// pairs. A parameter whose value is 0 is left out: an absent parameter parses
// as 0, and max_datagram_size may not be sent as 0.
func (p *Params) Append(b []byte) []byte {
	kvs := [...][2]uint64{
		{paramInitialMaxData, p.InitialMaxData},
		{paramInitialMaxStreamData, p.InitialMaxStreamData},
		{paramMaxStreams, p.MaxStreams},
		{paramIdleTimeout, p.IdleTimeoutMillis},
		{paramMaxDatagramSize, p.MaxDatagramSize},
		{paramMaxAckDelay, p.MaxAckDelayMicros},
	}
	n := 0
	for _, kv := range kvs {
		if kv[1] != 0 {
			n++
		}
	}
	b = AppendVarint(b, uint64(n))
	for _, kv := range kvs {
		if kv[1] != 0 {
			b = AppendVarint(AppendVarint(b, kv[0]), min(kv[1], MaxVarint))
		}
	}
	return b
}

// ParseParams parses parameters encoded by Params.Append.
func ParseParams(b []byte) (Params, int, error) {
	var p Params
	cnt, off, err := readVarintField(b, "parameter count")
	if err != nil {
		return p, 0, err
	}
	if cnt > maxParams {
		return p, 0, &FormatError{What: "parameter count", Value: cnt, Why: "more than 64"}
	}
	for i := uint64(0); i < cnt; i++ {
		id, n, err := readVarintField(b[off:], "parameter id")
		if err != nil {
			return p, 0, err
		}
		off += n
		v, n, err := readVarintField(b[off:], "parameter value")
		if err != nil {
			return p, 0, err
		}
		off += n
		switch id {
		case paramInitialMaxData:
			p.InitialMaxData = v
		case paramInitialMaxStreamData:
			p.InitialMaxStreamData = v
		case paramMaxStreams:
			p.MaxStreams = v
		case paramIdleTimeout:
			p.IdleTimeoutMillis = v
		case paramMaxDatagramSize:
			if v < 1200 || v > 65527 {
				return p, 0, &FormatError{What: "max_datagram_size parameter", Value: v, Why: "must be within 1200..65527"}
			}
			p.MaxDatagramSize = v
		case paramMaxAckDelay:
			if v > 1<<20 {
				return p, 0, &FormatError{What: "max_ack_delay parameter", Value: v, Why: "must be at most 2^20 µs"}
			}
			p.MaxAckDelayMicros = v
		}
	}
	return p, off, nil
}

// appendToken appends a length-prefixed token.
func appendToken(b, token []byte) []byte {
	b = AppendVarint(b, uint64(len(token)))
	return append(b, token...)
}

func parseToken(b []byte) ([]byte, int, error) {
	l, n, err := readVarintField(b, "token length")
	if err != nil {
		return nil, 0, err
	}
	if l > MaxTokenLen {
		return nil, 0, &FormatError{What: "token length", Value: l, Why: "more than 256 bytes"}
	}
	if uint64(len(b)-n) < l {
		return nil, 0, truncated("token", n+int(l), len(b))
	}
	return b[n : n+int(l)], n + int(l), nil
}

// AppendInitial appends a complete Initial packet, padded to MinInitialSize
// bytes (from the start of b's new content) with PADDING bytes.
func AppendInitial(b []byte, h LongHeader, token []byte, p *Params) []byte {
	start := len(b)
	h.Type = TypeInitial
	b = h.Append(b)
	b = appendToken(b, token)
	b = p.Append(b)
	for len(b)-start < MinInitialSize {
		b = append(b, 0)
	}
	return b
}

// ParseInitial parses the body of an Initial packet that follows its long
// header. The returned token aliases b. The whole datagram, header included,
// must be at least MinInitialSize bytes: datagramLen is its length.
func ParseInitial(body []byte, datagramLen int) (token []byte, p Params, err error) {
	if datagramLen < MinInitialSize {
		return nil, p, &FormatError{What: "Initial datagram size", Value: uint64(datagramLen), Why: "must be at least 1200 bytes"}
	}
	token, n, err := parseToken(body)
	if err != nil {
		return nil, p, err
	}
	p, _, err = ParseParams(body[n:])
	return token, p, err
}

// AppendRetry appends a Retry packet carrying a stateless cookie.
func AppendRetry(b []byte, h LongHeader, token []byte) []byte {
	h.Type = TypeRetry
	return appendToken(h.Append(b), token)
}

// ParseRetry parses the body of a Retry packet. The token aliases body.
func ParseRetry(body []byte) ([]byte, error) {
	token, _, err := parseToken(body)
	if err == nil && len(token) == 0 {
		err = &FormatError{What: "Retry token length", Value: 0, Why: "must not be empty"}
	}
	return token, err
}

// AppendAccept appends an Accept packet: the server's hello.
func AppendAccept(b []byte, h LongHeader, p *Params) []byte {
	h.Type = TypeAccept
	return p.Append(h.Append(b))
}

// ParseAccept parses the body of an Accept packet.
func ParseAccept(body []byte) (Params, error) {
	p, _, err := ParseParams(body)
	return p, err
}

// AppendVersionNegotiation appends a VersionNegotiation packet listing the
// versions this implementation supports. Its header version is 0.
func AppendVersionNegotiation(b []byte, dst, src ConnID) []byte {
	h := LongHeader{Type: TypeVersionNegotiation, DstID: dst, SrcID: src}
	b = h.Append(b)
	b = AppendVarint(b, 1)
	return binary.BigEndian.AppendUint32(b, Version1)
}

// ParseVersionNegotiation returns the versions listed in a
// VersionNegotiation packet body, appended to dst.
func ParseVersionNegotiation(dst []uint32, body []byte) ([]uint32, error) {
	cnt, n, err := readVarintField(body, "version count")
	if err != nil {
		return dst, err
	}
	if cnt == 0 || cnt > 16 {
		return dst, &FormatError{What: "version count", Value: cnt, Why: "must be 1..16"}
	}
	body = body[n:]
	if uint64(len(body)) < 4*cnt {
		return dst, truncated("version list", int(4*cnt), len(body))
	}
	for i := uint64(0); i < cnt; i++ {
		dst = append(dst, binary.BigEndian.Uint32(body[4*i:]))
	}
	return dst, nil
}

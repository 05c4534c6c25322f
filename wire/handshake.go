package wire

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
)

// MinInitialSize is the smallest datagram that may carry a client's Initial
// packet. Clients pad Initials to it so that no reply a server sends before
// the address is validated (Retry, VersionNegotiation) is larger than the
// request: a spoofed source gains no amplification (docs/PROTOCOL.md §5).
const MinInitialSize = 1200

// MaxTokenLen bounds the stateless cookie carried by Retry and Initial.
const MaxTokenLen = 256

// Params are the transport parameters each side announces in the TLS
// handshake's quic_transport_parameters extension, so the peer's TLS Finished
// authenticates them (docs/PROTOCOL.md §5.4). Unknown parameter IDs are skipped, so new
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

// AppendInitialHeader appends the start of an Initial packet: the long header
// and the token (empty from a server, or from a client without a cookie). The
// frames (CRYPTO, CLOSE, PADDING) follow in clear; a client pads the datagram
// to MinInitialSize with PadInitial (docs/PROTOCOL.md §5.1).
func AppendInitialHeader(b []byte, h LongHeader, token []byte) []byte {
	h.Type = TypeInitial
	return appendToken(h.Append(b), token)
}

// PadInitial pads the packet that starts at b[start] to MinInitialSize bytes
// with PADDING frames.
func PadInitial(b []byte, start int) []byte {
	for len(b)-start < MinInitialSize {
		b = append(b, byte(FramePadding))
	}
	return b
}

// ParseInitial parses the body of an Initial packet that follows its long
// header: the token and the frames. Both alias body.
func ParseInitial(body []byte) (token, frames []byte, err error) {
	token, n, err := parseToken(body)
	if err != nil {
		return nil, nil, err
	}
	return token, body[n:], nil
}

// AppendHandshakeHeader appends the header of a Handshake packet: the long
// header and the packet number. The payload that follows is sealed with the
// TLS handshake keys and the packet number is header-protected
// (docs/PROTOCOL.md §5.3, §6.2).
func AppendHandshakeHeader(b []byte, h LongHeader, pn uint64) []byte {
	h.Type = TypeHandshake
	return AppendVarint(h.Append(b), pn)
}

// Integrity protection of Retry and VersionNegotiation (docs/PROTOCOL.md §5.2,
// RFC 9001 §5.8): an AES-128-GCM tag, under a key and nonce fixed by this
// version, over the DstID of the Initial being answered followed by the
// packet. Only a party that saw that Initial can forge one.
var (
	retryKey   = [16]byte{0x37, 0x9e, 0x5f, 0x34, 0xce, 0xc9, 0x7e, 0x5c, 0xf5, 0x25, 0xbf, 0x5e, 0xd1, 0x5f, 0x16, 0x3f}
	retryNonce = [12]byte{0x88, 0xf1, 0xd1, 0xfd, 0xc6, 0x62, 0xdd, 0xe8, 0x56, 0xa0, 0x61, 0x40}
)

// IntegrityTagLen is the size of the tag ending Retry and VersionNegotiation.
const IntegrityTagLen = 16

func integrityTag(dst []byte, odcid ConnID, pkt []byte) []byte {
	blk, err := aes.NewCipher(retryKey[:])
	if err != nil {
		panic("raptor/wire: " + err.Error())
	}
	aead, err := cipher.NewGCM(blk)
	if err != nil {
		panic("raptor/wire: " + err.Error())
	}
	ad := make([]byte, 0, ConnIDLen+len(pkt))
	ad = append(append(ad, odcid[:]...), pkt...)
	return aead.Seal(dst, retryNonce[:], nil, ad)
}

func checkIntegrity(what string, pkt []byte, odcid ConnID) ([]byte, error) {
	if len(pkt) < LongHeaderLen+IntegrityTagLen {
		return nil, truncated(what, LongHeaderLen+IntegrityTagLen, len(pkt))
	}
	body := pkt[:len(pkt)-IntegrityTagLen]
	want := integrityTag(make([]byte, 0, IntegrityTagLen), odcid, body)
	if subtle.ConstantTimeCompare(want, pkt[len(body):]) != 1 {
		return nil, &FormatError{What: what + " integrity tag", Value: uint64(binary.BigEndian.Uint32(pkt[len(body):])), Why: "does not match (forged, or answers another Initial)"}
	}
	return body[LongHeaderLen:], nil
}

// AppendRetry appends a Retry packet carrying a stateless cookie, answering
// an Initial whose DstID was odcid, and its integrity tag.
func AppendRetry(b []byte, h LongHeader, token []byte, odcid ConnID) []byte {
	start := len(b)
	h.Type = TypeRetry
	b = appendToken(h.Append(b), token)
	return integrityTag(b, odcid, b[start:])
}

// ParseRetry checks the integrity tag of the whole Retry packet pkt (header
// included) against odcid, the DstID of the Initial it answers, and returns
// its token, which aliases pkt.
func ParseRetry(pkt []byte, odcid ConnID) ([]byte, error) {
	body, err := checkIntegrity("Retry", pkt, odcid)
	if err != nil {
		return nil, err
	}
	token, n, err := parseToken(body)
	if err == nil && len(token) == 0 {
		err = &FormatError{What: "Retry token length", Value: 0, Why: "must not be empty"}
	}
	if err == nil && n != len(body) {
		err = &FormatError{What: "Retry trailing bytes", Value: uint64(len(body) - n), Why: "must be none"}
	}
	return token, err
}

// AppendVersionNegotiation appends a VersionNegotiation packet listing the
// versions this implementation supports, answering an Initial whose SrcID was
// dst and whose DstID was src (echoed); its header version is 0 and an
// integrity tag over src ends it.
func AppendVersionNegotiation(b []byte, dst, src ConnID) []byte {
	start := len(b)
	h := LongHeader{Type: TypeVersionNegotiation, DstID: dst, SrcID: src}
	b = h.Append(b)
	b = AppendVarint(b, 1)
	b = binary.BigEndian.AppendUint32(b, Version1)
	return integrityTag(b, src, b[start:])
}

// ParseVersionNegotiation checks the integrity tag of the whole packet pkt
// against odcid (the DstID of the Initial it answers) and returns the versions
// it lists, appended to dst.
func ParseVersionNegotiation(dst []uint32, pkt []byte, odcid ConnID) ([]uint32, error) {
	body, err := checkIntegrity("VersionNegotiation", pkt, odcid)
	if err != nil {
		return dst, err
	}
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

// HandshakeFrameParser parses the frames of an Initial or Handshake packet:
// PADDING, CRYPTO and CLOSE, nothing else (docs/PROTOCOL.md §5.3). The frames
// it returns point into the parser and the packet, valid until the next call.
type HandshakeFrameParser struct {
	crypto CryptoFrame
	close  CloseFrame
}

// ParseNext parses the next frame at the start of b. PADDING bytes are
// skipped; if only padding remains, it returns a nil frame and len(b).
func (p *HandshakeFrameParser) ParseNext(b []byte) (Frame, int, error) {
	skip := 0
	for skip < len(b) && b[skip] == byte(FramePadding) {
		skip++
	}
	if skip == len(b) {
		return nil, skip, nil
	}
	b = b[skip:]
	var (
		f   Frame
		n   int
		err error
	)
	switch t := FrameType(b[0]); t {
	case FrameCrypto:
		n, err = p.crypto.parse(b)
		f = &p.crypto
	case FrameClose:
		n, err = p.close.parse(b)
		f = &p.close
	default:
		return nil, 0, &FormatError{What: "handshake packet frame type", Value: uint64(t), Why: "only PADDING, CRYPTO and CLOSE are allowed"}
	}
	if err != nil {
		return nil, 0, err
	}
	return f, skip + n, nil
}

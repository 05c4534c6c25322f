package wire

import "encoding/binary"

// Version1 is the protocol version this package implements (docs/PROTOCOL.md §4).
const Version1 uint32 = 0x52505401 // "RPT" 1

// ConnIDLen is the length of a connection ID in bytes.
const ConnIDLen = 8

// ConnID names one end of a session; the receiver of a packet is named by the
// packet's destination connection ID (docs/PROTOCOL.md §4.1).
type ConnID [ConnIDLen]byte

// Header bits of the first byte (docs/PROTOCOL.md §4).
const (
	headerLong    = 0x80 // long header: handshake packets
	headerFixed   = 0x40 // always set; a packet without it is not Raptor's
	longTypeMask  = 0x0f
	shortKeyPhase = 0x04 // key phase of a protected short header (docs/PROTOCOL.md §6.3)
	shortReserved = 0x3b // must be zero in a short header
)

// LongType is the type of a long-header (handshake) packet.
type LongType uint8

// Long-header packet types (docs/PROTOCOL.md §5).
const (
	TypeInitial            LongType = 0 // TLS Initial-level CRYPTO in clear; the client's carries the cookie
	TypeRetry              LongType = 1 // server's stateless cookie
	TypeHandshake          LongType = 2 // TLS Handshake-level CRYPTO, sealed with the handshake keys
	TypeVersionNegotiation LongType = 3 // server speaks none of the client's versions
)

func (t LongType) String() string {
	switch t {
	case TypeInitial:
		return "Initial"
	case TypeRetry:
		return "Retry"
	case TypeHandshake:
		return "Handshake"
	case TypeVersionNegotiation:
		return "VersionNegotiation"
	}
	return "LongType(?)"
}

// LongHeaderLen is the encoded size of a long header.
const LongHeaderLen = 1 + 4 + 2*ConnIDLen

// LongHeader starts every handshake packet.
type LongHeader struct {
	Type    LongType
	Version uint32
	DstID   ConnID
	SrcID   ConnID
}

// Append appends the header's encoding to b.
func (h *LongHeader) Append(b []byte) []byte {
	b = append(b, headerLong|headerFixed|byte(h.Type)&longTypeMask)
	b = binary.BigEndian.AppendUint32(b, h.Version)
	b = append(b, h.DstID[:]...)
	return append(b, h.SrcID[:]...)
}

// IsLongHeader reports whether the datagram b starts with a long header.
// It does not validate the rest of the packet.
func IsLongHeader(b []byte) bool { return len(b) > 0 && b[0]&headerLong != 0 }

// ParseLongHeader parses a long header from the start of b. The version is
// returned as sent; callers compare it against Version1 (a
// VersionNegotiation packet carries version 0).
func ParseLongHeader(b []byte) (LongHeader, int, error) {
	var h LongHeader
	if len(b) < LongHeaderLen {
		return h, 0, truncated("long header", LongHeaderLen, len(b))
	}
	if b[0]&(headerLong|headerFixed) != headerLong|headerFixed {
		return h, 0, &FormatError{What: "long header first byte", Value: uint64(b[0]), Why: "long and fixed bits must be set"}
	}
	if b[0]&0x30 != 0 {
		return h, 0, &FormatError{What: "long header first byte", Value: uint64(b[0]), Why: "reserved bits must be zero"}
	}
	h.Type = LongType(b[0] & longTypeMask)
	if h.Type > TypeVersionNegotiation {
		return h, 0, &FormatError{What: "long packet type", Value: uint64(h.Type), Why: "unknown type"}
	}
	h.Version = binary.BigEndian.Uint32(b[1:5])
	copy(h.DstID[:], b[5:5+ConnIDLen])
	copy(h.SrcID[:], b[5+ConnIDLen:LongHeaderLen])
	return h, LongHeaderLen, nil
}

// ShortHeader starts every packet of an established session: the receiver's
// connection ID and a packet number that is never reused (docs/PROTOCOL.md §6).
// On the wire the key phase bit and the packet number are header-protected;
// ParseShortHeader reads a header whose protection was removed.
type ShortHeader struct {
	DstID        ConnID
	PacketNumber uint64
	KeyPhase     bool // which of the two current 1-RTT key generations sealed the packet
}

// ShortPNOffset is where the packet number starts in a short header.
const ShortPNOffset = 1 + ConnIDLen

// MaxPacketNumber is the largest packet number a sender may use.
const MaxPacketNumber = MaxVarint

// Len returns the encoded size of the header.
func (h *ShortHeader) Len() int { return 1 + ConnIDLen + VarintLen(h.PacketNumber) }

// Append appends the header's encoding to b.
func (h *ShortHeader) Append(b []byte) []byte {
	first := byte(headerFixed)
	if h.KeyPhase {
		first |= shortKeyPhase
	}
	b = append(b, first)
	b = append(b, h.DstID[:]...)
	return AppendVarint(b, h.PacketNumber)
}

// ParseShortHeader parses a short header from the start of b.
func ParseShortHeader(b []byte) (ShortHeader, int, error) {
	var h ShortHeader
	if len(b) < 1+ConnIDLen+1 {
		return h, 0, truncated("short header", 1+ConnIDLen+1, len(b))
	}
	if b[0]&headerLong != 0 || b[0]&headerFixed == 0 {
		return h, 0, &FormatError{What: "short header first byte", Value: uint64(b[0]), Why: "long bit must be clear and fixed bit set"}
	}
	if b[0]&shortReserved != 0 {
		return h, 0, &FormatError{What: "short header first byte", Value: uint64(b[0]), Why: "reserved bits must be zero"}
	}
	h.KeyPhase = b[0]&shortKeyPhase != 0
	copy(h.DstID[:], b[1:1+ConnIDLen])
	pn, n, err := readVarintField(b[1+ConnIDLen:], "packet number")
	if err != nil {
		return h, 0, err
	}
	h.PacketNumber = pn
	return h, 1 + ConnIDLen + n, nil
}

// PeekDstID returns the destination connection ID of a datagram of either
// header form without parsing further, for routing to a session.
func PeekDstID(b []byte) (ConnID, bool) {
	var id ConnID
	switch {
	case len(b) == 0 || b[0]&headerFixed == 0:
		return id, false
	case b[0]&headerLong != 0:
		if len(b) < LongHeaderLen {
			return id, false
		}
		copy(id[:], b[5:5+ConnIDLen])
	default:
		if len(b) < 1+ConnIDLen {
			return id, false
		}
		copy(id[:], b[1:1+ConnIDLen])
	}
	return id, true
}

package wire

// FrameCrypto carries TLS handshake bytes (docs/PROTOCOL.md §7.10). It appears
// only in Initial and Handshake packets, never in a short-header packet.
const FrameCrypto FrameType = 0x0a

// MaxCryptoData bounds the handshake bytes of one level: a CRYPTO frame whose
// data would end beyond it is a protocol violation (a certificate chain of
// 64 KiB is already far larger than Raptor needs).
const MaxCryptoData = 1 << 16

// CryptoFrame carries the bytes Offset.. of the TLS handshake stream of its
// packet's level (Initial or Handshake), like QUIC's CRYPTO frame (RFC 9000
// §19.6). The receiver reassembles them in order; duplicates are harmless.
type CryptoFrame struct {
	Offset uint64
	Data   []byte // aliases the packet after parsing
}

// Append appends the frame: type, offset, length, data.
func (f *CryptoFrame) Append(b []byte) ([]byte, error) {
	if end := f.Offset + uint64(len(f.Data)); f.Offset > MaxCryptoData || end > MaxCryptoData {
		return b, &FormatError{What: "CRYPTO frame end", Value: end, Why: "beyond 65536 bytes"}
	}
	b = append(b, byte(FrameCrypto))
	b = AppendVarint(b, f.Offset)
	b = AppendVarint(b, uint64(len(f.Data)))
	return append(b, f.Data...), nil
}

// Length is the encoded size.
func (f *CryptoFrame) Length() int {
	return 1 + VarintLen(f.Offset) + VarintLen(uint64(len(f.Data))) + len(f.Data)
}

// CryptoFrameOverhead is the largest size of a CRYPTO frame's type, offset and
// length fields within MaxCryptoData.
const CryptoFrameOverhead = 1 + 4 + 4

func (f *CryptoFrame) parse(b []byte) (int, error) {
	var l uint64
	off, err := parseVarints(b, "CRYPTO frame", &f.Offset, &l)
	if err != nil {
		return 0, err
	}
	if f.Offset > MaxCryptoData || l > MaxCryptoData-f.Offset {
		return 0, &FormatError{What: "CRYPTO frame end", Value: f.Offset + l, Why: "beyond 65536 bytes"}
	}
	if uint64(len(b)-off) < l {
		return 0, truncated("CRYPTO frame data", off+int(l), len(b))
	}
	f.Data = b[off : off+int(l)]
	return off + int(l), nil
}

// ParseCryptoFrame parses a CRYPTO frame at the start of b. Data aliases b.
func ParseCryptoFrame(b []byte) (CryptoFrame, int, error) {
	var f CryptoFrame
	if len(b) == 0 || FrameType(b[0]) != FrameCrypto {
		if len(b) == 0 {
			return f, 0, truncated("CRYPTO frame", 1, 0)
		}
		return f, 0, &FormatError{What: "CRYPTO frame type", Value: uint64(b[0]), Why: "not 0x0a"}
	}
	n, err := f.parse(b)
	if err != nil {
		return CryptoFrame{}, 0, err
	}
	return f, n, nil
}

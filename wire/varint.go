package wire

// Variable-length integers (docs/PROTOCOL.md §3.1) use the encoding of
// RFC 9000 §16: the two most significant bits of the first byte give the
// length (1, 2, 4 or 8 bytes) and the remaining bits hold the value, big-endian.

// MaxVarint is the largest value a varint can hold (2^62-1).
const MaxVarint = 1<<62 - 1

// VarintLen returns the encoded length of v, or 0 if v exceeds MaxVarint.
func VarintLen(v uint64) int {
	switch {
	case v < 1<<6:
		return 1
	case v < 1<<14:
		return 2
	case v < 1<<30:
		return 4
	case v <= MaxVarint:
		return 8
	}
	return 0
}

// AppendVarint appends v in varint encoding. v must not exceed MaxVarint;
// larger values are clamped to MaxVarint (encoders check before calling).
func AppendVarint(b []byte, v uint64) []byte {
	switch {
	case v < 1<<6:
		return append(b, byte(v))
	case v < 1<<14:
		return append(b, byte(v>>8)|0x40, byte(v))
	case v < 1<<30:
		return append(b, byte(v>>24)|0x80, byte(v>>16), byte(v>>8), byte(v))
	}
	if v > MaxVarint {
		v = MaxVarint
	}
	return append(b, byte(v>>56)|0xc0, byte(v>>48), byte(v>>40), byte(v>>32),
		byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// ReadVarint decodes a varint from the start of b and returns it with the
// number of bytes it used. n == 0 means b is too short.
func ReadVarint(b []byte) (v uint64, n int) {
	if len(b) == 0 {
		return 0, 0
	}
	n = 1 << (b[0] >> 6)
	if len(b) < n {
		return 0, 0
	}
	v = uint64(b[0] & 0x3f)
	for i := 1; i < n; i++ {
		v = v<<8 | uint64(b[i])
	}
	return v, n
}

package schema

import (
	"encoding/binary"
	"fmt"
)

// MagicByte is byte 0 of every framed payload (Confluent wire format).
const MagicByte byte = 0

// HeaderSize is the length of the frame header: the magic byte and the
// big-endian 4-byte schema ID.
const HeaderSize = 5

// AppendHeader appends the frame header for schema id to dst. The msgpack
// body follows it.
func AppendHeader(dst []byte, id uint32) []byte {
	dst = append(dst, MagicByte)
	return binary.BigEndian.AppendUint32(dst, id)
}

// ParseHeader splits a framed payload into its schema ID and msgpack body.
// The body aliases b.
func ParseHeader(b []byte) (id uint32, body []byte, err error) {
	if len(b) < HeaderSize {
		return 0, nil, &FrameError{Reason: fmt.Sprintf("%d bytes, need at least %d", len(b), HeaderSize), Err: ErrTruncated}
	}
	if b[0] != MagicByte {
		return 0, nil, &FrameError{Reason: fmt.Sprintf("magic byte is 0x%02x, want 0x00", b[0])}
	}
	return binary.BigEndian.Uint32(b[1:5]), b[HeaderSize:], nil
}

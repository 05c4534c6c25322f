package schema

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Format is the body encoding of a framed payload, told apart by byte 0 of
// the frame so that no payload can be read in the wrong encoding
// (docs/SCHEMA.md, "Wire format").
type Format byte

const (
	// FormatAvro is Confluent's wire format: magic byte 0x00, the schema ID,
	// an Avro binary body. Confluent's serializers read and write it.
	FormatAvro Format = 0x00
	// FormatMsgpack is Raptor's msgpack framing: magic byte 0x4D ('M'), the
	// schema ID, a msgpack body. Confluent's deserializers reject it
	// ("Unknown magic byte").
	FormatMsgpack Format = 0x4D
)

// Formats lists the known formats.
var Formats = []Format{FormatAvro, FormatMsgpack}

// String names the format ("avro", "msgpack").
func (f Format) String() string {
	switch f {
	case FormatAvro:
		return "avro"
	case FormatMsgpack:
		return "msgpack"
	}
	return fmt.Sprintf("unknown(0x%02x)", byte(f))
}

// ParseFormat parses a format name ("avro" or "msgpack", any case).
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats {
		if strings.EqualFold(s, f.String()) {
			return f, nil
		}
	}
	return 0, fmt.Errorf("schema: unknown payload format %q (want avro or msgpack)", s)
}

// MagicByte is byte 0 of Confluent's wire format (FormatAvro).
const MagicByte = byte(FormatAvro)

// HeaderSize is the length of the frame header: the magic byte and the
// big-endian 4-byte schema ID.
const HeaderSize = 5

// AppendHeader appends Confluent's frame header (magic byte 0, for an Avro
// body) for schema id to dst.
func AppendHeader(dst []byte, id uint32) []byte { return AppendFrameHeader(dst, FormatAvro, id) }

// AppendFrameHeader appends the frame header of format f for schema id.
func AppendFrameHeader(dst []byte, f Format, id uint32) []byte {
	dst = append(dst, byte(f))
	return binary.BigEndian.AppendUint32(dst, id)
}

// ParseHeader splits a payload in Confluent's wire format (magic byte 0)
// into its schema ID and body. The body aliases b.
func ParseHeader(b []byte) (id uint32, body []byte, err error) {
	f, id, body, err := ParseFrame(b)
	if err == nil && f != FormatAvro {
		return 0, nil, &FormatError{Got: f, Accepted: []Format{FormatAvro}}
	}
	return id, body, err
}

// ParseFrame splits a framed payload into its format, schema ID and body.
// The body aliases b. A magic byte of no known format is a *FrameError.
func ParseFrame(b []byte) (f Format, id uint32, body []byte, err error) {
	if len(b) < HeaderSize {
		return 0, 0, nil, &FrameError{Reason: fmt.Sprintf("%d bytes, need at least %d", len(b), HeaderSize), Err: ErrTruncated}
	}
	f = Format(b[0])
	if f != FormatAvro && f != FormatMsgpack {
		return 0, 0, nil, &FrameError{Reason: fmt.Sprintf("magic byte is 0x%02x, want 0x00 (avro) or 0x4d (msgpack)", b[0])}
	}
	return f, binary.BigEndian.Uint32(b[1:5]), b[HeaderSize:], nil
}

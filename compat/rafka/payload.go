package rafka

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// PayloadBase64Prefix marks a ConsumeResponse payload whose Kafka value is
// not valid UTF-8 (or is text that itself begins with the marker): the
// payload is the marker followed by the value in standard base64 (RFC 4648
// §4, padded). Every other value is sent as is. The mapping is one to one,
// so [DecodePayload] recovers the exact Kafka bytes; see docs/RAFKA.md,
// "Bytes and strings".
const PayloadBase64Prefix = "base64:"

// EncodePayload maps a Kafka record value to the proto string of a
// ConsumeResponse payload: as is when it is valid UTF-8 not starting with
// [PayloadBase64Prefix], else the prefix and the value in base64. proto3
// requires string fields to be valid UTF-8, so a raw binary value would
// make a client's decoder fail the stream.
func EncodePayload(v []byte) string {
	if utf8.Valid(v) && !strings.HasPrefix(string(v), PayloadBase64Prefix) {
		return string(v)
	}
	return PayloadBase64Prefix + base64.StdEncoding.EncodeToString(v)
}

// DecodePayload returns the Kafka value a ConsumeResponse payload stands
// for (the inverse of [EncodePayload]).
func DecodePayload(p string) ([]byte, error) {
	rest, ok := strings.CutPrefix(p, PayloadBase64Prefix)
	if !ok {
		return []byte(p), nil
	}
	v, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("rafka: payload %.40q after %q is not base64: %w", p, PayloadBase64Prefix, err)
	}
	return v, nil
}

// MessageID is the message_id of the record at partition and offset, as
// Publish answers it and Consume sends it: "<partition>-<offset>", for
// example "3-1042". Acknowledge reads it back with [ParseMessageID].
func MessageID(partition int32, offset int64) string {
	return strconv.FormatInt(int64(partition), 10) + "-" + strconv.FormatInt(offset, 10)
}

// ParseMessageID parses a message_id made by [MessageID].
func ParseMessageID(id string) (partition int32, offset int64, err error) {
	ps, os, ok := strings.Cut(id, "-")
	if !ok {
		return 0, 0, &InvalidArgumentError{Field: "message_id", Value: id, Reason: `want "<partition>-<offset>" as Publish and Consume give it`}
	}
	p, err := strconv.ParseInt(ps, 10, 32)
	if err != nil || p < 0 || ps != strconv.FormatInt(p, 10) {
		return 0, 0, &InvalidArgumentError{Field: "message_id", Value: id, Reason: fmt.Sprintf("partition %q is not a number from 0 to 2147483647", ps)}
	}
	o, err := strconv.ParseInt(os, 10, 64)
	if err != nil || o < 0 || os != strconv.FormatInt(o, 10) {
		return 0, 0, &InvalidArgumentError{Field: "message_id", Value: id, Reason: fmt.Sprintf("offset %q is not a non-negative number", os)}
	}
	return int32(p), o, nil
}

// errShortBatch is returned by firstTimestamp for a truncated header.
var errShortBatch = errors.New("rafka: record batch shorter than its 61-byte header")

// firstTimestamp reads the FirstTimestamp (milliseconds since the epoch) of
// the first Kafka record batch in b (magic 2, KIP-98: baseOffset int64,
// batchLength int32, partitionLeaderEpoch int32, magic int8, crc uint32,
// attributes int16, lastOffsetDelta int32, firstTimestamp int64, ...).
func firstTimestamp(b []byte) (int64, error) {
	const header = 61
	if len(b) < header {
		return 0, errShortBatch
	}
	if magic := b[16]; magic != 2 {
		return 0, fmt.Errorf("rafka: record batch magic %d, want 2", magic)
	}
	if n := int32(binary.BigEndian.Uint32(b[8:12])); n < header-12 {
		return 0, fmt.Errorf("rafka: record batch length %d is shorter than its header", n)
	}
	return int64(binary.BigEndian.Uint64(b[27:35])), nil
}

package schema

import (
	"errors"
	"fmt"
	"strings"
)

// ErrTruncated is wrapped by every DecodeError and FrameError caused by input
// that ends before the value it announces.
var ErrTruncated = errors.New("truncated input")

// ParseError reports a schema text that is not a valid Avro schema.
type ParseError struct {
	// Reason says what is wrong, as reported by the Avro parser.
	Reason string
	// Err is the parser's error, if any.
	Err error
}

// Error implements error.
func (e *ParseError) Error() string { return "schema: invalid Avro schema: " + e.Reason }

// Unwrap returns the parser's error.
func (e *ParseError) Unwrap() error { return e.Err }

// FrameError reports a payload that is not a valid Confluent frame.
type FrameError struct {
	// Reason says what is wrong with the frame.
	Reason string
	// Err is ErrTruncated for short input, else nil.
	Err error
}

// Error implements error.
func (e *FrameError) Error() string { return "schema: invalid frame: " + e.Reason }

// Unwrap returns ErrTruncated for short input.
func (e *FrameError) Unwrap() error { return e.Err }

// FormatError reports a payload framed in a format the decoder does not
// accept, for example a msgpack record given to a decoder of Avro only.
type FormatError struct {
	// Got is the payload's format, from its magic byte.
	Got Format
	// Accepted lists the formats the decoder takes.
	Accepted []Format
}

// Error implements error.
func (e *FormatError) Error() string {
	names := make([]string, len(e.Accepted))
	for i, f := range e.Accepted {
		names[i] = fmt.Sprintf("%s (magic byte 0x%02x)", f, byte(f))
	}
	return fmt.Sprintf("schema: payload is %s-framed (magic byte 0x%02x), this decoder accepts only %s", e.Got, byte(e.Got), strings.Join(names, ", "))
}

// DecodeError reports a msgpack body that does not match its writer schema.
type DecodeError struct {
	// Path is the dotted path of the failing value, for example "User.address.zip".
	Path string
	// Offset is the byte offset in the body where decoding failed.
	Offset int
	// Reason says what is wrong.
	Reason string
	// Err is ErrTruncated for short input, or the underlying msgpack error.
	Err error
}

// Error implements error.
func (e *DecodeError) Error() string {
	return fmt.Sprintf("schema: decode %s at byte %d: %s", orRoot(e.Path), e.Offset, e.Reason)
}

// Unwrap returns the underlying cause.
func (e *DecodeError) Unwrap() error { return e.Err }

// EncodeError reports a Go value that does not match the writer schema.
type EncodeError struct {
	// Path is the dotted path of the failing value.
	Path string
	// Reason says what is wrong.
	Reason string
}

// Error implements error.
func (e *EncodeError) Error() string {
	return fmt.Sprintf("schema: encode %s: %s", orRoot(e.Path), e.Reason)
}

// ResolveError reports a writer/reader pair that cannot be resolved.
type ResolveError struct {
	// Path is the dotted path of the field that cannot be resolved.
	Path string
	// Reason says why, naming the writer and reader types.
	Reason string
}

// Error implements error.
func (e *ResolveError) Error() string {
	return fmt.Sprintf("schema: cannot resolve %s: %s", orRoot(e.Path), e.Reason)
}

// IncompatibleError reports a schema rejected by a compatibility level.
type IncompatibleError struct {
	// Level is the level that was enforced.
	Level Level
	// Messages name each incompatibility, with the version it was found against.
	Messages []string
}

// Error implements error.
func (e *IncompatibleError) Error() string {
	return fmt.Sprintf("schema: incompatible under %s: %s", e.Level, strings.Join(e.Messages, "; "))
}

// LevelError reports an unknown compatibility level name.
type LevelError struct {
	// Value is the rejected name.
	Value string
}

// Error implements error.
func (e *LevelError) Error() string {
	return fmt.Sprintf("schema: unknown compatibility level %q (want one of %s)", e.Value, strings.Join(levelNames(), ", "))
}

func orRoot(path string) string {
	if path == "" {
		return "<root>"
	}
	return path
}

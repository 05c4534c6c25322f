// Package wire is Raptor's datagram format: packet headers, handshake packets
// and frames, specified byte by byte in docs/PROTOCOL.md.
//
// Everything here is pure: append-style encoders (Append(b []byte) ([]byte, error)
// on each frame, AppendX helpers for headers) and parsers that return the
// value, the number of bytes consumed and an error. Parsing never panics on
// any input and allocates nothing on the hot path; truncated input yields an
// error that wraps ErrTruncated, and other malformed input a *FormatError.
package wire

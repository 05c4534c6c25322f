package wire

import (
	"errors"
	"fmt"
)

// ErrTruncated is wrapped by every error caused by input that ends before the
// structure being parsed does.
var ErrTruncated = errors.New("raptor/wire: truncated")

// TruncatedError reports which structure ended early.
type TruncatedError struct {
	What string // e.g. "STREAM frame data"
	Need int    // bytes the structure needs at least
	Have int    // bytes that were left
}

func (e *TruncatedError) Error() string {
	return fmt.Sprintf("raptor/wire: truncated %s: need %d bytes, have %d", e.What, e.Need, e.Have)
}

// Unwrap makes errors.Is(err, ErrTruncated) true.
func (e *TruncatedError) Unwrap() error { return ErrTruncated }

// FormatError is a protocol violation found while parsing: a value out of its
// allowed range, an unknown frame type, a reserved bit set.
type FormatError struct {
	What  string // the field or structure
	Value uint64 // the offending value
	Why   string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("raptor/wire: invalid %s (%d): %s", e.What, e.Value, e.Why)
}

// UnsupportedVersionError is returned for a long-header packet whose version
// this implementation does not speak.
type UnsupportedVersionError struct{ Version uint32 }

func (e *UnsupportedVersionError) Error() string {
	return fmt.Sprintf("raptor/wire: unsupported protocol version 0x%08x (supported: 0x%08x)", e.Version, Version1)
}

func truncated(what string, need, have int) error {
	return &TruncatedError{What: what, Need: need, Have: have}
}

// readVarintField reads a varint named what from b, reporting truncation.
func readVarintField(b []byte, what string) (uint64, int, error) {
	v, n := ReadVarint(b)
	if n == 0 {
		need := 1
		if len(b) > 0 {
			need = 1 << (b[0] >> 6)
		}
		return 0, 0, truncated(what, need, len(b))
	}
	return v, n, nil
}

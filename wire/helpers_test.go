package wire_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/raptormq/raptor/wire"
)

// show renders a frame's semantic value. Byte slices print the same whether
// nil or empty, so a parsed frame and the frame it was encoded from compare
// equal; the string is taken at once because parsed frames are reused.
func show(f wire.Frame) string { return fmt.Sprintf("%T%+v", f, f) }

func wantTruncated(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, wire.ErrTruncated) {
		t.Errorf("%s: err = %v, want one wrapping ErrTruncated", what, err)
	}
	var te *wire.TruncatedError
	if err != nil && !errors.As(err, &te) {
		t.Errorf("%s: err = %T, want *TruncatedError", what, err)
	}
}

func wantFormatError(t *testing.T, what string, err error) {
	t.Helper()
	var fe *wire.FormatError
	if !errors.As(err, &fe) {
		t.Errorf("%s: err = %v (%T), want *FormatError", what, err, err)
	}
}

func mustAppend(t testing.TB, f wire.Frame, b []byte) []byte {
	t.Helper()
	b, err := f.Append(b)
	if err != nil {
		t.Fatalf("%s.Append: %v", show(f), err)
	}
	return b
}

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 1)
	}
	return b
}

// ackRanges builds n descending ranges of width 2 separated by a gap of 3.
func ackRanges(n int) []wire.AckRange {
	r := make([]wire.AckRange, n)
	hi := uint64(5 * n)
	for i := range r {
		r[i] = wire.AckRange{Smallest: hi - 1, Largest: hi}
		hi -= 5
	}
	return r
}

// nakRanges builds n ascending ranges.
func nakRanges(n int) []wire.AckRange {
	r := make([]wire.AckRange, n)
	for i := range r {
		r[i] = wire.AckRange{Smallest: uint64(10 * i), Largest: uint64(10*i + i%3)}
	}
	return r
}

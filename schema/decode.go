package schema

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"unicode/utf8"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// MaxDepth bounds the nesting of records, arrays, maps and unions in one
// payload, so a hostile body cannot exhaust the stack through a recursive
// schema.
const MaxDepth = 64

// kind is the msgpack family of a value, as told by its first byte.
type kind uint8

const (
	kBad kind = iota
	kNil
	kBool
	kInt
	kFloat
	kStr
	kBin
	kArray
	kMap
	numKinds
)

var kindNames = [numKinds]string{"ext or reserved", "nil", "bool", "integer", "float", "str", "bin", "array", "map"}

// String names the msgpack family.
func (k kind) String() string { return kindNames[k] }

func classify(c byte) kind {
	switch {
	case msgpcode.IsFixedNum(c):
		return kInt
	case msgpcode.IsFixedMap(c):
		return kMap
	case msgpcode.IsFixedArray(c):
		return kArray
	case msgpcode.IsFixedString(c):
		return kStr
	}
	switch c {
	case msgpcode.Nil:
		return kNil
	case msgpcode.True, msgpcode.False:
		return kBool
	case msgpcode.Uint8, msgpcode.Uint16, msgpcode.Uint32, msgpcode.Uint64,
		msgpcode.Int8, msgpcode.Int16, msgpcode.Int32, msgpcode.Int64:
		return kInt
	case msgpcode.Float, msgpcode.Double:
		return kFloat
	case msgpcode.Str8, msgpcode.Str16, msgpcode.Str32:
		return kStr
	case msgpcode.Bin8, msgpcode.Bin16, msgpcode.Bin32:
		return kBin
	case msgpcode.Array16, msgpcode.Array32:
		return kArray
	case msgpcode.Map16, msgpcode.Map32:
		return kMap
	}
	return kBad
}

// dec reads one msgpack body. Every length prefix is checked against the bytes
// left before anything is allocated for it.
type dec struct {
	r     bytes.Reader
	m     *msgpack.Decoder
	body  []byte
	n     int
	depth int
}

func (d *dec) off() int { return d.n - d.r.Len() }

func (d *dec) fail(path, reason string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = ErrTruncated
	}
	return &DecodeError{Path: path, Offset: d.off(), Reason: reason, Err: err}
}

func (d *dec) peek(path string) (kind, byte, error) {
	c, err := d.m.PeekCode()
	if err != nil {
		return kBad, 0, d.fail(path, "input ends before the value", err)
	}
	return classify(c), c, nil
}

func (d *dec) expect(path string, want kind) (byte, error) {
	k, c, err := d.peek(path)
	if err != nil {
		return 0, err
	}
	if k != want {
		return 0, d.fail(path, fmt.Sprintf("want msgpack %s, got %s (0x%02x)", want, k, c), nil)
	}
	return c, nil
}

func (d *dec) enter(path string) error {
	d.depth++
	if d.depth > MaxDepth {
		return d.fail(path, fmt.Sprintf("nesting deeper than %d", MaxDepth), nil)
	}
	return nil
}

func (d *dec) leave() { d.depth-- }

func (d *dec) readNil(path string) error {
	if _, err := d.expect(path, kNil); err != nil {
		return err
	}
	if err := d.m.DecodeNil(); err != nil {
		return d.fail(path, "bad nil", err)
	}
	return nil
}

func (d *dec) readBool(path string) (bool, error) {
	if _, err := d.expect(path, kBool); err != nil {
		return false, err
	}
	v, err := d.m.DecodeBool()
	if err != nil {
		return false, d.fail(path, "bad bool", err)
	}
	return v, nil
}

func (d *dec) readInt(path string) (int64, error) {
	c, err := d.expect(path, kInt)
	if err != nil {
		return 0, err
	}
	if c == msgpcode.Uint64 {
		u, err := d.m.DecodeUint64()
		if err != nil {
			return 0, d.fail(path, "bad uint64", err)
		}
		if u > math.MaxInt64 {
			return 0, d.fail(path, fmt.Sprintf("integer %d overflows a long", u), nil)
		}
		return int64(u), nil
	}
	v, err := d.m.DecodeInt64()
	if err != nil {
		return 0, d.fail(path, "bad integer", err)
	}
	return v, nil
}

// readFloat accepts msgpack floats and integers (many encoders write integral
// floats as integers).
func (d *dec) readFloat(path string) (float64, error) {
	k, c, err := d.peek(path)
	if err != nil {
		return 0, err
	}
	switch k {
	case kInt:
		v, err := d.readInt(path)
		return float64(v), err
	case kFloat:
		v, err := d.m.DecodeFloat64()
		if err != nil {
			return 0, d.fail(path, "bad float", err)
		}
		return v, nil
	}
	return 0, d.fail(path, fmt.Sprintf("want msgpack float or integer, got %s (0x%02x)", k, c), nil)
}

// readFloat32Bits reads a value for an Avro float: a msgpack float32 keeps
// its exact bits (a NaN's payload too, which a trip through float64 would
// change), anything else readFloat accepts is narrowed.
func (d *dec) readFloat32Bits(path string) (uint32, error) {
	k, c, err := d.peek(path)
	if err != nil {
		return 0, err
	}
	if k == kFloat && c == msgpcode.Float {
		v, err := d.m.DecodeFloat32()
		if err != nil {
			return 0, d.fail(path, "bad float", err)
		}
		return math.Float32bits(v), nil
	}
	v, err := d.readFloat(path)
	return math.Float32bits(float32(v)), err
}

// readBytes reads a str or bin value into a fresh slice, after checking its
// length prefix against the input left.
func (d *dec) readBytes(path string) ([]byte, error) {
	k, c, err := d.peek(path)
	if err != nil {
		return nil, err
	}
	if k != kStr && k != kBin {
		return nil, d.fail(path, fmt.Sprintf("want msgpack str or bin, got %s (0x%02x)", k, c), nil)
	}
	n, err := d.m.DecodeBytesLen()
	if err != nil {
		return nil, d.fail(path, "bad length prefix", err)
	}
	if n < 0 || n > d.r.Len() {
		return nil, d.fail(path, fmt.Sprintf("length prefix %d exceeds the %d bytes left", n, d.r.Len()), ErrTruncated)
	}
	b := make([]byte, n)
	if err := d.m.ReadFull(b); err != nil {
		return nil, d.fail(path, "short str/bin", err)
	}
	return b, nil
}

func (d *dec) readString(path string) (string, error) {
	b, err := d.readBytes(path)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return "", d.fail(path, "string is not valid UTF-8", nil)
	}
	if len(b) == 0 {
		return "", nil
	}
	// b was allocated for this string alone and is not referenced elsewhere.
	return unsafe.String(&b[0], len(b)), nil
}

// readKey returns a str value as a sub-slice of the body, without copying:
// for record field names, which are only looked up.
func (d *dec) readKey(path string) ([]byte, error) {
	if _, err := d.expect(path, kStr); err != nil {
		return nil, err
	}
	n, err := d.m.DecodeBytesLen()
	if err != nil {
		return nil, d.fail(path, "bad length prefix", err)
	}
	if n < 0 || n > d.r.Len() {
		return nil, d.fail(path, fmt.Sprintf("length prefix %d exceeds the %d bytes left", n, d.r.Len()), ErrTruncated)
	}
	start := d.off()
	if _, err := d.r.Seek(int64(n), io.SeekCurrent); err != nil {
		return nil, d.fail(path, "seek past key", err)
	}
	return d.body[start : start+n], nil
}

// readLen reads an array or map header. Every element takes at least one byte
// (a map entry two), so a count above that bound is rejected unallocated.
func (d *dec) readLen(path string, k kind) (int, error) {
	if _, err := d.expect(path, k); err != nil {
		return 0, err
	}
	var n, per int
	var err error
	if k == kMap {
		n, err = d.m.DecodeMapLen()
		per = 2
	} else {
		n, err = d.m.DecodeArrayLen()
		per = 1
	}
	if err != nil {
		return 0, d.fail(path, "bad length prefix", err)
	}
	if n < 0 || n > d.r.Len()/per {
		return 0, d.fail(path, fmt.Sprintf("%s of %d elements cannot fit in the %d bytes left", k, n, d.r.Len()), ErrTruncated)
	}
	return n, nil
}

// sizeHint caps preallocation: the length was already checked against the
// input, but a small body can still announce many one-byte elements.
func sizeHint(n int) int { return min(n, 256) }

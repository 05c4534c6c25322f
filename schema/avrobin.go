package schema

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/hamba/avro/v2"
	"github.com/vmihailenco/msgpack/v5"
)

// Avro binary encoding (Avro specification, "Binary Encoding"), the body of
// Confluent's wire format. Raptor keeps one value model: the encoder writes
// msgpack (schema.AppendEncode), and these transcoders turn that body into
// Avro binary and back, walking the writer schema, so that Avro payloads
// decode, resolve and validate exactly as msgpack ones do.

// maxZeroWidthItems bounds the array and map items of a payload whose
// encoding takes no bytes (null, empty records, zero-size fixed): a block
// count cannot be checked against the input left for them.
const maxZeroWidthItems = 1 << 16

// AppendAvro appends the Avro binary encoding of v, written with schema s,
// to dst. v is what AppendEncode accepts. Errors are *EncodeError.
func (s *Schema) AppendAvro(dst []byte, v any) ([]byte, error) {
	mp, err := s.AppendEncode(nil, v)
	if err != nil {
		return dst, err
	}
	out, err := s.MsgpackToAvro(dst, mp)
	if err != nil {
		return dst, &EncodeError{Reason: "transcoding to Avro binary: " + err.Error()}
	}
	return out, nil
}

// DecodeAvro decodes an Avro binary body written with s itself (full
// validation against s, no resolution); see Resolver for the values.
func (s *Schema) DecodeAvro(body []byte) (any, error) {
	mp, err := s.AvroToMsgpack(nil, body)
	if err != nil {
		return nil, err
	}
	return s.Decode(mp)
}

// AvroToMsgpack appends to dst the msgpack body (as AppendEncode writes it)
// of an Avro binary body written with s. Every length and count is checked
// against the input left before anything is allocated for it, nesting is
// bounded by MaxDepth, and the whole body must be consumed. Errors are
// *DecodeError naming the field path and the byte offset.
func (s *Schema) AvroToMsgpack(dst []byte, body []byte) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	t := avroReader{b: body, out: msgpack.GetEncoder()}
	t.out.Reset(buf)
	defer msgpack.PutEncoder(t.out)
	if err := t.value(s.avro, ""); err != nil {
		return dst, err
	}
	if t.pos != len(body) {
		return dst, t.fail("", fmt.Sprintf("%d trailing bytes after the value", len(body)-t.pos), nil)
	}
	return buf.Bytes(), nil
}

type avroReader struct {
	b     []byte
	pos   int
	depth int
	zero  int // zero-width items seen
	out   *msgpack.Encoder
}

func (t *avroReader) fail(path, reason string, err error) error {
	return &DecodeError{Path: path, Offset: t.pos, Reason: "avro: " + reason, Err: err}
}

func (t *avroReader) left() int { return len(t.b) - t.pos }

// long reads a zig-zag varint of at most 10 bytes.
func (t *avroReader) long(path string) (int64, error) {
	var u uint64
	for i := 0; ; i++ {
		if t.pos >= len(t.b) {
			return 0, t.fail(path, "input ends inside a varint", ErrTruncated)
		}
		c := t.b[t.pos]
		t.pos++
		if i == 9 && c > 1 {
			return 0, t.fail(path, "varint overflows 64 bits", nil)
		}
		u |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			break
		}
	}
	return int64(u>>1) ^ -int64(u&1), nil
}

func (t *avroReader) int(path string) (int32, error) {
	v, err := t.long(path)
	if err != nil {
		return 0, err
	}
	if v < math.MinInt32 || v > math.MaxInt32 {
		return 0, t.fail(path, fmt.Sprintf("int %d out of 32-bit range", v), nil)
	}
	return int32(v), nil
}

func (t *avroReader) fixed(path string, n int) ([]byte, error) {
	if n > t.left() {
		return nil, t.fail(path, fmt.Sprintf("%d bytes announced, %d left", n, t.left()), ErrTruncated)
	}
	b := t.b[t.pos : t.pos+n]
	t.pos += n
	return b, nil
}

func (t *avroReader) bytes(path string) ([]byte, error) {
	n, err := t.long(path)
	if err != nil {
		return nil, err
	}
	if n < 0 || n > int64(t.left()) {
		return nil, t.fail(path, fmt.Sprintf("length %d out of range, %d bytes left", n, t.left()), ErrTruncated)
	}
	return t.fixed(path, int(n))
}

func (t *avroReader) enter(path string) error {
	t.depth++
	if t.depth > MaxDepth {
		return t.fail(path, fmt.Sprintf("nesting deeper than %d", MaxDepth), nil)
	}
	return nil
}

// block reads a block count of an array or map; a negative count is
// followed by the block's size in bytes (skipped: the items are read anyway).
func (t *avroReader) block(path string, width int) (int, error) {
	n, err := t.long(path)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		if n == math.MinInt64 {
			return 0, t.fail(path, "block count out of range", nil)
		}
		n = -n
		if _, err := t.long(path); err != nil {
			return 0, err
		}
	}
	if width == 0 {
		t.zero += int(min(n, maxZeroWidthItems+1))
		if t.zero > maxZeroWidthItems {
			return 0, t.fail(path, fmt.Sprintf("more than %d items of zero width", maxZeroWidthItems), nil)
		}
	} else if n > int64(t.left()/width) {
		return 0, t.fail(path, fmt.Sprintf("block of %d items cannot fit in the %d bytes left", n, t.left()), ErrTruncated)
	}
	return int(n), nil
}

// blocks reads all the blocks of an array or map, calling item for each.
func (t *avroReader) blocks(path string, width int, item func() error) (int, []byte, error) {
	// Items are written to a side buffer: msgpack needs the total count first.
	saved := t.out
	var side bytes.Buffer
	t.out = msgpack.GetEncoder()
	t.out.Reset(&side)
	defer func() { msgpack.PutEncoder(t.out); t.out = saved }()
	total := 0
	for {
		n, err := t.block(path, width)
		if err != nil {
			return 0, nil, err
		}
		if n == 0 {
			return total, side.Bytes(), nil
		}
		for range n {
			if err := item(); err != nil {
				return 0, nil, err
			}
		}
		total += n
	}
}

func (t *avroReader) value(s avro.Schema, path string) error {
	s = deref(s)
	switch s.Type() {
	case avro.Null:
		return t.out.EncodeNil()
	case avro.Boolean:
		b, err := t.fixed(path, 1)
		if err != nil {
			return err
		}
		if b[0] > 1 {
			t.pos--
			return t.fail(path, fmt.Sprintf("boolean byte 0x%02x, want 0 or 1", b[0]), nil)
		}
		return t.out.EncodeBool(b[0] == 1)
	case avro.Int:
		v, err := t.int(path)
		if err != nil {
			return err
		}
		return t.out.EncodeInt(int64(v))
	case avro.Long:
		v, err := t.long(path)
		if err != nil {
			return err
		}
		return t.out.EncodeInt(v)
	case avro.Float:
		b, err := t.fixed(path, 4)
		if err != nil {
			return err
		}
		return t.out.EncodeFloat32(math.Float32frombits(binary.LittleEndian.Uint32(b)))
	case avro.Double:
		b, err := t.fixed(path, 8)
		if err != nil {
			return err
		}
		return t.out.EncodeFloat64(math.Float64frombits(binary.LittleEndian.Uint64(b)))
	case avro.String:
		b, err := t.bytes(path)
		if err != nil {
			return err
		}
		if !utf8.Valid(b) {
			return t.fail(path, "string is not valid UTF-8", nil)
		}
		return t.out.EncodeString(string(b))
	case avro.Bytes:
		b, err := t.bytes(path)
		if err != nil {
			return err
		}
		return t.out.EncodeBytes(b)
	case avro.Fixed:
		b, err := t.fixed(path, s.(*avro.FixedSchema).Size())
		if err != nil {
			return err
		}
		return t.out.EncodeBytes(b)
	case avro.Enum:
		es := s.(*avro.EnumSchema)
		i, err := t.int(path)
		if err != nil {
			return err
		}
		if i < 0 || int(i) >= len(es.Symbols()) {
			return t.fail(path, fmt.Sprintf("enum index %d out of range for %s (%d symbols)", i, es.FullName(), len(es.Symbols())), nil)
		}
		return t.out.EncodeString(es.Symbols()[i])
	case avro.Array:
		items := s.(*avro.ArraySchema).Items()
		if err := t.enter(path); err != nil {
			return err
		}
		defer func() { t.depth-- }()
		n, body, err := t.blocks(path, minWidth(items, 0), func() error { return t.value(items, path+"[]") })
		if err != nil {
			return err
		}
		if err := t.out.EncodeArrayLen(n); err != nil {
			return err
		}
		_, err = t.writeRaw(body)
		return err
	case avro.Map:
		values := s.(*avro.MapSchema).Values()
		if err := t.enter(path); err != nil {
			return err
		}
		defer func() { t.depth-- }()
		seen := map[string]struct{}{}
		n, body, err := t.blocks(path, 1, func() error {
			k, err := t.bytes(path + "{key}")
			if err != nil {
				return err
			}
			if !utf8.Valid(k) {
				return t.fail(path+"{key}", "map key is not valid UTF-8", nil)
			}
			if _, dup := seen[string(k)]; dup {
				return t.fail(path, fmt.Sprintf("duplicate map key %q", k), nil)
			}
			seen[string(k)] = struct{}{}
			if err := t.out.EncodeString(string(k)); err != nil {
				return err
			}
			return t.value(values, path+"{}")
		})
		if err != nil {
			return err
		}
		if err := t.out.EncodeMapLen(n); err != nil {
			return err
		}
		_, err = t.writeRaw(body)
		return err
	case avro.Record, avro.Error:
		rs := s.(*avro.RecordSchema)
		if err := t.enter(path); err != nil {
			return err
		}
		defer func() { t.depth-- }()
		if err := t.out.EncodeMapLen(len(rs.Fields())); err != nil {
			return err
		}
		for _, f := range rs.Fields() {
			if err := t.out.EncodeString(f.Name()); err != nil {
				return err
			}
			if err := t.value(f.Type(), joinPath(path, f.Name())); err != nil {
				return err
			}
		}
		return nil
	case avro.Union:
		us := s.(*avro.UnionSchema)
		i, err := t.long(path)
		if err != nil {
			return err
		}
		if i < 0 || i >= int64(len(us.Types())) {
			return t.fail(path, fmt.Sprintf("union branch %d out of range for %s", i, typeName(us)), nil)
		}
		if err := t.enter(path); err != nil {
			return err
		}
		defer func() { t.depth-- }()
		if bare, _ := unionLayout(us); !bare {
			if err := t.out.EncodeArrayLen(2); err != nil {
				return err
			}
			if err := t.out.EncodeInt(i); err != nil {
				return err
			}
		}
		return t.value(us.Types()[i], path)
	}
	return t.fail(path, "unsupported type "+string(s.Type()), nil)
}

// writeRaw copies already encoded msgpack to the output.
func (t *avroReader) writeRaw(b []byte) (int, error) {
	return t.out.Writer().Write(b)
}

// minWidth is the fewest bytes an Avro value of s takes: 0 for null, empty
// records and zero-size fixed, else at least 1. Recursion through named
// types is cut at depth 8 (treated as 1: a recursive record always holds a
// union or an array, which take at least one byte).
func minWidth(s avro.Schema, depth int) int {
	if depth > 8 {
		return 1
	}
	s = deref(s)
	switch s.Type() {
	case avro.Null:
		return 0
	case avro.Fixed:
		return min(s.(*avro.FixedSchema).Size(), 1)
	case avro.Record, avro.Error:
		for _, f := range s.(*avro.RecordSchema).Fields() {
			if minWidth(f.Type(), depth+1) > 0 {
				return 1
			}
		}
		return 0
	}
	return 1
}

// MsgpackToAvro appends to dst the Avro binary encoding of a msgpack body
// written with s (as AppendEncode writes it, or any body s.Decode accepts).
// Errors are *DecodeError.
func (s *Schema) MsgpackToAvro(dst []byte, body []byte) ([]byte, error) {
	d := dec{n: len(body), body: body}
	d.r.Reset(body)
	d.m = msgpack.GetDecoder()
	d.m.Reset(&d.r)
	defer msgpack.PutDecoder(d.m)
	out, err := d.toAvro(dst, s.avro, "")
	if err != nil {
		return dst, err
	}
	if d.r.Len() != 0 {
		return dst, d.fail("", fmt.Sprintf("%d trailing bytes after the value", d.r.Len()), nil)
	}
	return out, nil
}

func appendLong(b []byte, v int64) []byte {
	return binary.AppendUvarint(b, uint64(v<<1)^uint64(v>>63))
}

func appendAvroBytes(b, v []byte) []byte {
	return append(appendLong(b, int64(len(v))), v...)
}

func (d *dec) toAvro(b []byte, s avro.Schema, path string) ([]byte, error) {
	s = deref(s)
	switch s.Type() {
	case avro.Null:
		return b, d.readNil(path)
	case avro.Boolean:
		v, err := d.readBool(path)
		if v {
			return append(b, 1), err
		}
		return append(b, 0), err
	case avro.Int, avro.Long:
		v, err := d.readInt(path)
		if err != nil {
			return nil, err
		}
		if s.Type() == avro.Int && (v < math.MinInt32 || v > math.MaxInt32) {
			return nil, d.fail(path, fmt.Sprintf("integer %d overflows an int", v), nil)
		}
		return appendLong(b, v), nil
	case avro.Float:
		bits, err := d.readFloat32Bits(path)
		return binary.LittleEndian.AppendUint32(b, bits), err
	case avro.Double:
		v, err := d.readFloat(path)
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(v)), err
	case avro.String:
		v, err := d.readString(path)
		return appendAvroBytes(b, []byte(v)), err
	case avro.Bytes:
		v, err := d.readBytes(path)
		return appendAvroBytes(b, v), err
	case avro.Fixed:
		v, err := d.readBytes(path)
		if err != nil {
			return nil, err
		}
		if size := s.(*avro.FixedSchema).Size(); len(v) != size {
			return nil, d.fail(path, fmt.Sprintf("fixed of %d bytes, want %d", len(v), size), nil)
		}
		return append(b, v...), nil
	case avro.Enum:
		es := s.(*avro.EnumSchema)
		v, err := d.readString(path)
		if err != nil {
			return nil, err
		}
		for i, sym := range es.Symbols() {
			if sym == v {
				return appendLong(b, int64(i)), nil
			}
		}
		return nil, d.fail(path, fmt.Sprintf("symbol %q is not in enum %s", v, es.FullName()), nil)
	case avro.Array:
		l, err := d.readLen(path, kArray)
		if err != nil {
			return nil, err
		}
		if err := d.enter(path); err != nil {
			return nil, err
		}
		defer d.leave()
		if l > 0 {
			b = appendLong(b, int64(l))
			for range l {
				if b, err = d.toAvro(b, s.(*avro.ArraySchema).Items(), path+"[]"); err != nil {
					return nil, err
				}
			}
		}
		return append(b, 0), nil
	case avro.Map:
		l, err := d.readLen(path, kMap)
		if err != nil {
			return nil, err
		}
		if err := d.enter(path); err != nil {
			return nil, err
		}
		defer d.leave()
		if l > 0 {
			b = appendLong(b, int64(l))
			seen := make(map[string]struct{}, sizeHint(l))
			for range l {
				k, err := d.readString(path + "{key}")
				if err != nil {
					return nil, err
				}
				if _, dup := seen[k]; dup {
					return nil, d.fail(path, fmt.Sprintf("duplicate map key %q", k), nil)
				}
				seen[k] = struct{}{}
				b = appendAvroBytes(b, []byte(k))
				if b, err = d.toAvro(b, s.(*avro.MapSchema).Values(), path+"{}"); err != nil {
					return nil, err
				}
			}
		}
		return append(b, 0), nil
	case avro.Record, avro.Error:
		rs := s.(*avro.RecordSchema)
		l, err := d.readLen(path, kMap)
		if err != nil {
			return nil, err
		}
		if l != len(rs.Fields()) {
			return nil, d.fail(path, fmt.Sprintf("record %s has %d fields, body has %d", rs.FullName(), len(rs.Fields()), l), nil)
		}
		if err := d.enter(path); err != nil {
			return nil, err
		}
		defer d.leave()
		// Fields may come in any order in msgpack; Avro wants schema order.
		parts := make([][]byte, l)
		for range l {
			k, err := d.readKey(path)
			if err != nil {
				return nil, err
			}
			i := -1
			for j, f := range rs.Fields() {
				if f.Name() == string(k) {
					i = j
					break
				}
			}
			if i < 0 {
				return nil, d.fail(path, fmt.Sprintf("field %q is not in record %s", k, rs.FullName()), nil)
			}
			if parts[i] != nil {
				return nil, d.fail(joinPath(path, string(k)), fmt.Sprintf("field %q appears twice", k), nil)
			}
			if parts[i], err = d.toAvro([]byte{}, rs.Fields()[i].Type(), joinPath(path, string(k))); err != nil {
				return nil, err
			}
		}
		for _, p := range parts {
			b = append(b, p...)
		}
		return b, nil
	case avro.Union:
		us := s.(*avro.UnionSchema)
		bare, byKind := unionLayout(us)
		var i int
		if bare {
			k, c, err := d.peek(path)
			if err != nil {
				return nil, err
			}
			if i = byKind[k]; i < 0 {
				return nil, d.fail(path, fmt.Sprintf("msgpack %s (0x%02x) matches no branch of %s", k, c, typeName(us)), nil)
			}
		} else {
			l, err := d.readLen(path, kArray)
			if err != nil {
				return nil, err
			}
			if l != 2 {
				return nil, d.fail(path, fmt.Sprintf("tagged union is an array of %d elements, want [branch, value]", l), nil)
			}
			v, err := d.readInt(path)
			if err != nil {
				return nil, err
			}
			if v < 0 || v >= int64(len(us.Types())) {
				return nil, d.fail(path, fmt.Sprintf("branch %d out of range for %s", v, typeName(us)), nil)
			}
			i = int(v)
		}
		if err := d.enter(path); err != nil {
			return nil, err
		}
		defer d.leave()
		return d.toAvro(appendLong(b, int64(i)), us.Types()[i], path)
	}
	return nil, d.fail(path, "unsupported type "+string(s.Type()), nil)
}
